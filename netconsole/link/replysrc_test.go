package link

import (
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
)

// bootFrame builds an IPv4/UDP frame from src, sport -> dport, with a
// BOOTP header of op and xid.
func bootFrame(src string, sport, dport uint16, op byte, xid uint32) []byte {
	f := make([]byte, 20+8+240)
	f[0] = 0x45
	f[9] = 17
	a := netip.MustParseAddr(src).As4()
	copy(f[12:16], a[:])
	binary.BigEndian.PutUint16(f[20:], sport)
	binary.BigEndian.PutUint16(f[22:], dport)
	f[28] = op
	binary.BigEndian.PutUint32(f[32:], xid)
	return f
}

func TestBootReplySource(t *testing.T) {
	withOptions := bootFrame("10.0.2.2", 67, 68, 2, 7)
	withOptions[0] = 0x46 // a 24-byte header: the UDP header moves
	withOptions = append(withOptions[:20], append([]byte{1, 1, 1, 1}, withOptions[20:]...)...)
	fragment := bootFrame("10.0.2.2", 67, 68, 2, 7)
	binary.BigEndian.PutUint16(fragment[6:], 185) // offset 1480: no UDP header here
	for _, tc := range []struct {
		name  string
		frame []byte
		xid   uint32
		src   string // "" = not a BOOTP reply
	}{
		{name: "reply", frame: bootFrame("10.0.2.2", 67, 68, 2, 0xdeadbeef), xid: 0xdeadbeef, src: "10.0.2.2"},
		{name: "IP options", frame: withOptions, xid: 7, src: "10.0.2.2"},
		{name: "request (op 1)", frame: bootFrame("10.0.2.15", 67, 68, 1, 1)},
		{name: "client to server", frame: bootFrame("10.0.2.15", 68, 67, 2, 1)},
		{name: "other UDP", frame: bootFrame("10.0.2.2", 53, 68, 2, 1)},
		{name: "later fragment", frame: fragment},
		{name: "short", frame: bootFrame("10.0.2.2", 67, 68, 2, 1)[:30]},
		{name: "IPv6 version", frame: func() []byte { f := bootFrame("10.0.2.2", 67, 68, 2, 1); f[0] = 0x65; return f }()},
		{name: "TCP", frame: func() []byte { f := bootFrame("10.0.2.2", 67, 68, 2, 1); f[9] = 6; return f }()},
		{name: "header length 4", frame: func() []byte { f := bootFrame("10.0.2.2", 67, 68, 2, 1); f[0] = 0x41; return f }()},
		{name: "empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			xid, src, ok := bootReplySource(tc.frame)
			if tc.src == "" {
				if ok {
					t.Fatalf("= %#x %v, want not a reply", xid, src)
				}
				return
			}
			if !ok || xid != tc.xid || src != netip.MustParseAddr(tc.src) {
				t.Fatalf("= %#x %v %v, want %#x %s", xid, src, ok, tc.xid, tc.src)
			}
		})
	}
}

func TestReplyLog(t *testing.T) {
	var r replyLog
	mac := net.HardwareAddr{0x52, 0x55, 0x0a, 0, 2, 2}
	r.note(bootFrame("10.0.2.2", 67, 68, 2, 1), mac)
	r.note(bootFrame("10.0.2.3", 67, 68, 1, 2), mac)                 // a request: not noted
	r.note(bootFrame("10.0.2.4", 67, 68, 2, 3), net.HardwareAddr{1}) // not Ethernet
	if s, ok := r.source(1); !ok || s.ip != netip.MustParseAddr("10.0.2.2") || s.mac.String() != mac.String() {
		t.Fatalf("source(1) = %v %v", s, ok)
	}
	for _, xid := range []uint32{2, 3} {
		if s, ok := r.source(xid); ok {
			t.Errorf("source(%d) = %v, want none", xid, s)
		}
	}
	mac[0] = 0xff // the log keeps its own copy
	if s, _ := r.source(1); s.mac[0] != 0x52 {
		t.Errorf("noted MAC aliases the caller's buffer: %v", s.mac)
	}
	// A flood of replies does not grow it past its bound.
	for xid := uint32(100); xid < 1100; xid++ {
		r.note(bootFrame("10.0.2.9", 67, 68, 2, xid), mac)
	}
	if n := len(r.seen); n > maxReplySources {
		t.Errorf("%d sources kept, bound %d", n, maxReplySources)
	}
	if _, ok := r.source(1099); !ok {
		t.Errorf("latest reply not kept")
	}
}

func FuzzBootReplySource(f *testing.F) {
	f.Add(bootFrame("10.0.2.2", 67, 68, 2, 1))
	f.Add([]byte{0x4f})
	f.Fuzz(func(t *testing.T, b []byte) {
		xid, src, ok := bootReplySource(b)
		if !ok {
			return
		}
		// What it accepts is a reply it can build again.
		ihl := int(b[0]&0x0f) * 4
		if !src.Is4() || b[ihl+8] != 2 || binary.BigEndian.Uint32(b[ihl+12:]) != xid {
			t.Fatalf("accepted %x as a reply from %v xid %#x", b, src, xid)
		}
	})
}
