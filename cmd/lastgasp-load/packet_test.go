package main

import (
	"encoding/hex"
	"errors"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/net/ipv4"
)

func TestSum16(t *testing.T) {
	for _, tt := range []struct {
		name string
		in   []byte
		want uint16
	}{
		// RFC 1071 section 3: "00 01 f2 03 f4 f5 f6 f7" sums to ddf2.
		{"rfc1071 example", []byte{0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7}, 0xddf2},
		{"odd length pads with zero", []byte{0x00, 0x01, 0xf2}, 0xf201},
		{"carry wraps around", []byte{0xff, 0xff, 0x00, 0x02}, 0x0002},
		{"empty", nil, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := fold(sum16(0, tt.in)); got != tt.want {
				t.Errorf("fold(sum16(% x)) = %#04x, want %#04x", tt.in, got, tt.want)
			}
		})
	}
}

// TestIPv4HeaderChecksum checks a header against a published one (the
// example of Wikipedia's "Internet checksum" and IPv4 pages:
// 4500 0073 0000 4000 4011 b861 c0a8 0001 c0a8 00c7, a 115-byte UDP
// datagram from 192.168.0.1 to 192.168.0.199, checksum b861).
func TestIPv4HeaderChecksum(t *testing.T) {
	payload := make([]byte, 0x73-ipv4HeaderLen-udpHeaderLen)
	b := appendUDP4(nil, netip.MustParseAddrPort("192.168.0.1:1"), netip.MustParseAddrPort("192.168.0.199:2"), payload)
	want, _ := hex.DecodeString("450000730000400040" + "11b861c0a80001c0a800c7")
	if diff := cmp.Diff(want, b[:ipv4HeaderLen]); diff != "" {
		t.Errorf("IPv4 header (-want +got):\n%s", diff)
	}
	if len(b) != 0x73 {
		t.Errorf("datagram length = %d, want %d", len(b), 0x73)
	}
}

// captured is a datagram the kernel (6.x) built for a UDP socket bound to
// 10.9.0.1:6665 sending "hello\n" to 10.9.0.2:6666, read from a TUN device
// without checksum offload in a network namespace of its own (so the UDP
// checksum, 73ce, is the kernel's, computed in full). Its IP
// identification is 27d4 (ours is 0, filled in by the kernel on send), so
// its header checksum differs from ours.
const captured = "4500002227d440004011fee20a0900010a090002" + "1a091a0a000e73ce68656c6c6f0a"

func TestAppendUDP4MatchesKernel(t *testing.T) {
	want, _ := hex.DecodeString(captured)
	got := appendUDP4([]byte("prefix"), netip.MustParseAddrPort("10.9.0.1:6665"), netip.MustParseAddrPort("10.9.0.2:6666"), []byte("hello\n"))
	if string(got[:6]) != "prefix" {
		t.Fatalf("appendUDP4 overwrote what it appended to: %q", got[:6])
	}
	got = got[6:]
	if len(got) != len(want) {
		t.Fatalf("appendUDP4 = % x, want % x", got, want)
	}
	// All but identification (4:6) and header checksum (10:12).
	for _, r := range [][2]int{{0, 4}, {6, 10}, {12, len(want)}} {
		if diff := cmp.Diff(want[r[0]:r[1]], got[r[0]:r[1]]); diff != "" {
			t.Errorf("bytes %d-%d (-kernel +appendUDP4):\n%s", r[0], r[1], diff)
		}
	}
	// With the kernel's identification, the header checksum is the kernel's.
	copy(got[4:6], want[4:6])
	got[10], got[11] = 0, 0
	c := ^fold(sum16(0, got[:ipv4HeaderLen]))
	if got := []byte{byte(c >> 8), byte(c)}; string(got) != string(want[10:12]) {
		t.Errorf("header checksum with identification 27d4 = % x, want % x", got, want[10:12])
	}
}

func TestUDPChecksumZeroIsSentAsFFFF(t *testing.T) {
	// RFC 768: a computed checksum of zero is transmitted as all ones.
	// Pseudo header 127.0.0.1 -> 127.0.0.1, UDP, length 10 sums to
	// 0x7f00+0x0001+0x7f00+0x0001+0x0011+0x000a = 0xfe1d; the header
	// (ports 0 -> 0, length 10: 0x000a) and a payload word 0x01d8 make the
	// sum 0xffff, whose complement is 0.
	seg := []byte{0, 0, 0, 0, 0, 10, 0, 0, 0x01, 0xd8}
	lo := [4]byte{127, 0, 0, 1}
	if got := udpChecksum(lo, lo, seg); got != 0xffff {
		t.Errorf("udpChecksum = %#04x, want 0xffff", got)
	}
}

func TestSourceAddr(t *testing.T) {
	base := netip.MustParseAddr("127.1.0.0")
	for _, tt := range []struct {
		name string
		base netip.Addr
		i    int
		want string // "" means an error
	}{
		{"first", base, 0, "127.1.0.0:6665"},
		{"carries into the next octet", base, 256, "127.1.1.0:6665"},
		{"65536th", base, 65535, "127.1.255.255:6665"},
		{"a million", base, 1 << 20, "127.17.0.0:6665"},
		{"last of 127/8", netip.MustParseAddr("127.255.255.254"), 1, "127.255.255.255:6665"},
		{"past 127/8", netip.MustParseAddr("127.255.255.255"), 1, ""},
		{"base outside loopback", netip.MustParseAddr("10.0.0.1"), 0, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := sourceAddr(tt.base, tt.i)
			if tt.want == "" {
				if !errors.Is(err, errNotLoopback) {
					t.Errorf("sourceAddr(%s, %d) = %s, %v; want errNotLoopback", tt.base, tt.i, got, err)
				}
				return
			}
			if err != nil || got.String() != tt.want {
				t.Errorf("sourceAddr(%s, %d) = %s, %v; want %s", tt.base, tt.i, got, err, tt.want)
			}
		})
	}
}

// rawOrSkip opens the real raw socket, skipping without CAP_NET_RAW.
func rawOrSkip(t *testing.T) *ipv4.RawConn {
	t.Helper()
	rc, err := dialRaw()
	if errors.Is(err, os.ErrPermission) {
		t.Skipf("raw socket needs CAP_NET_RAW: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	return rc
}

// TestRawEmitterKernelDelivers sends forged datagrams on a real raw socket
// to a real UDP socket on 127.0.0.1: the kernel delivers them with the
// forged source address (so their checksums passed its check), and drops
// one whose checksum was broken.
func TestRawEmitterKernelDelivers(t *testing.T) {
	rc := rawOrSkip(t)
	pc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	dst := pc.LocalAddr().(*net.UDPAddr).AddrPort()
	e := newRawEmitter(rc, dst)
	defer e.close()
	var r Result
	for i, payload := range []string{"first", "second, odd", ""} {
		src, _ := sourceAddr(DefaultSourceBase, 1000*i+7)
		e.emit(&host{src: src}, []byte(payload), &r)
	}
	e.flush(&r)
	// A broken checksum: built by hand, sent on the same socket.
	bad := appendUDP4(nil, netip.MustParseAddrPort("127.1.2.3:6665"), dst, []byte("broken"))
	bad[ipv4HeaderLen+6] ^= 0x5a
	if _, err := rc.WriteBatch([]ipv4.Message{{Buffers: [][]byte{bad}, Addr: &net.IPAddr{IP: net.IPv4(127, 0, 0, 1)}}}, 0); err != nil {
		t.Fatal(err)
	}
	if r.Errors != 0 || r.Datagrams != 3 {
		t.Errorf("Result = %+v, want 3 datagrams, no errors", r)
	}
	type got struct{ From, Payload string }
	var gots []got
	buf := make([]byte, 2048)
	for {
		pc.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		n, from, err := pc.ReadFromUDPAddrPort(buf)
		if err != nil {
			break
		}
		gots = append(gots, got{from.String(), string(buf[:n])})
	}
	want := []got{{"127.1.0.7:6665", "first"}, {"127.1.3.239:6665", "second, odd"}, {"127.1.7.215:6665", ""}}
	if diff := cmp.Diff(want, gots); diff != "" {
		t.Errorf("received (-want +got):\n%s", diff)
	}
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }
