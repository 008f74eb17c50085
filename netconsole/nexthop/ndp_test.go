package nexthop

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/mdlayher/ndp"
	"golang.org/x/net/ipv6"
)

var (
	target6 = netip.MustParseAddr("fd00::1")
	other6  = netip.MustParseAddr("fd00::9")
)

func na(target netip.Addr, mac net.HardwareAddr) *ndp.NeighborAdvertisement {
	m := &ndp.NeighborAdvertisement{Solicited: true, Override: true, TargetAddress: target}
	if mac != nil {
		m.Options = []ndp.Option{&ndp.LinkLayerAddress{Direction: ndp.Target, Addr: mac}}
	}
	return m
}

// fakeNDP answers the n-th solicitation (1-based) with answers[n] and
// records what was sent; reads with nothing queued wait for the deadline.
type fakeNDP struct {
	mu       sync.Mutex
	sent     []*ndp.NeighborSolicitation
	dsts     []netip.Addr
	answers  map[int][]ndp.Message
	sendErr  map[int]error
	queue    []ndp.Message
	deadline time.Time
}

func (c *fakeNDP) WriteTo(m ndp.Message, _ *ipv6.ControlMessage, dst netip.Addr) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	ns, ok := m.(*ndp.NeighborSolicitation)
	if !ok {
		return errors.New("not a solicitation")
	}
	c.sent = append(c.sent, ns)
	c.dsts = append(c.dsts, dst)
	if err := c.sendErr[len(c.sent)]; err != nil {
		return err
	}
	c.queue = append(c.queue, c.answers[len(c.sent)]...)
	return nil
}

func (c *fakeNDP) ReadRaw(b []byte) (int, *ipv6.ControlMessage, netip.Addr, error) {
	c.mu.Lock()
	if len(c.queue) > 0 {
		m := c.queue[0]
		c.queue = c.queue[1:]
		c.mu.Unlock()
		raw, err := ndp.MarshalMessage(m)
		if err != nil {
			return 0, nil, netip.Addr{}, err
		}
		return copy(b, raw), nil, netip.Addr{}, nil
	}
	d := c.deadline
	c.mu.Unlock()
	time.Sleep(time.Until(d))
	return 0, nil, netip.Addr{}, os.ErrDeadlineExceeded
}

func (c *fakeNDP) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	c.deadline = t
	c.mu.Unlock()
	return nil
}

func TestResolveNDP(t *testing.T) {
	tests := []struct {
		name      string
		conn      *fakeNDP
		linger    time.Duration
		want      net.HardwareAddr
		wantErr   error
		conflicts int
	}{
		{name: "first answer", conn: &fakeNDP{answers: map[int][]ndp.Message{1: {na(target6, macA)}}}, want: macA},
		{name: "third attempt", conn: &fakeNDP{answers: map[int][]ndp.Message{3: {na(target6, macA)}}}, want: macA},
		{name: "silence", conn: &fakeNDP{}, wantErr: ErrNoAnswer},
		{name: "other target ignored", conn: &fakeNDP{answers: map[int][]ndp.Message{1: {na(other6, macB)}, 2: {na(target6, macA)}}}, want: macA},
		{name: "no target lla ignored", conn: &fakeNDP{answers: map[int][]ndp.Message{1: {na(target6, nil), na(target6, macA)}}}, want: macA},
		{name: "solicitation ignored", conn: &fakeNDP{answers: map[int][]ndp.Message{1: {&ndp.NeighborSolicitation{TargetAddress: target6}, na(target6, macA)}}}, want: macA},
		{name: "multicast mac ignored", conn: &fakeNDP{answers: map[int][]ndp.Message{1: {na(target6, net.HardwareAddr{0x33, 0x33, 0, 0, 0, 1}), na(target6, macB)}}}, want: macB},
		{name: "send error retried", conn: &fakeNDP{sendErr: map[int]error{1: errors.New("network is down")}, answers: map[int][]ndp.Message{2: {na(target6, macA)}}}, want: macA},
		{name: "conflict", conn: &fakeNDP{answers: map[int][]ndp.Message{1: {na(target6, macA), na(target6, macB)}}}, linger: 50 * time.Millisecond, want: macA, conflicts: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			conflicts := 0
			r := Resolver{Retry: 50 * time.Millisecond, Linger: tt.linger, Logf: t.Logf,
				OnConflict: func(netip.Addr, net.HardwareAddr, net.HardwareAddr) { conflicts++ }}
			got, err := r.ResolveNDP(ctx, tt.conn, ours, target6)
			if !errors.Is(err, tt.wantErr) || !bytes.Equal(got, tt.want) {
				t.Fatalf("ResolveNDP = %v, %v; want %v, %v", got, err, tt.want, tt.wantErr)
			}
			if conflicts != tt.conflicts {
				t.Errorf("%d conflicts, want %d", conflicts, tt.conflicts)
			}
			tt.conn.mu.Lock()
			defer tt.conn.mu.Unlock()
			if len(tt.conn.sent) == 0 {
				t.Fatal("no solicitation sent")
			}
			snm, _ := ndp.SolicitedNodeMulticast(target6)
			ns := tt.conn.sent[0]
			if ns.TargetAddress != target6 || tt.conn.dsts[0] != snm {
				t.Errorf("solicitation for %v to %v, want %v to %v", ns.TargetAddress, tt.conn.dsts[0], target6, snm)
			}
			if len(ns.Options) != 1 || !bytes.Equal(ns.Options[0].(*ndp.LinkLayerAddress).Addr, ours) {
				t.Errorf("solicitation options %v, want our source link-layer address %v", ns.Options, ours)
			}
		})
	}
}

func TestResolveNDPNotIPv6(t *testing.T) {
	for _, ip := range []string{"10.0.0.1", "::ffff:10.0.0.1"} {
		if _, err := (Resolver{}).ResolveNDP(context.Background(), &fakeNDP{}, ours, netip.MustParseAddr(ip)); err == nil {
			t.Errorf("ResolveNDP(%s) succeeded, want an error", ip)
		}
	}
}

// advertised is ParseAdvertisement by way of ndp's full parser: the
// reference the fuzz test compares against.
func advertised(b []byte) (netip.Addr, net.HardwareAddr, bool) {
	m, err := ndp.ParseMessage(b)
	if err != nil || len(b) < 2 || b[1] != 0 {
		return netip.Addr{}, nil, false
	}
	na, isNA := m.(*ndp.NeighborAdvertisement)
	if !isNA {
		return netip.Addr{}, nil, false
	}
	for _, o := range na.Options {
		if lla, isLLA := o.(*ndp.LinkLayerAddress); isLLA && lla.Direction == ndp.Target {
			return na.TargetAddress, lla.Addr, true
		}
	}
	return netip.Addr{}, nil, false
}

func TestParseAdvertisement(t *testing.T) {
	raw := func(m ndp.Message) []byte {
		b, err := ndp.MarshalMessage(m)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	good := raw(na(target6, macA))
	mtu := raw(&ndp.NeighborAdvertisement{TargetAddress: target6, Options: []ndp.Option{ndp.NewMTU(1500), &ndp.LinkLayerAddress{Direction: ndp.Target, Addr: macB}}})
	for _, tt := range []struct {
		name string
		b    []byte
		ok   bool
		mac  net.HardwareAddr
	}{
		{"answer", good, true, macA},
		{"after another option", mtu, true, macB},
		{"no target lla", raw(na(target6, nil)), false, nil},
		{"solicitation", raw(&ndp.NeighborSolicitation{TargetAddress: target6, Options: []ndp.Option{&ndp.LinkLayerAddress{Direction: ndp.Source, Addr: macA}}}), false, nil},
		{"code 1", append([]byte{136, 1}, good[2:]...), false, nil},
		{"truncated", good[:23], false, nil},
		{"option cut", good[:len(good)-1], false, nil},
		{"zero-length option", append(raw(na(target6, nil)), 5, 0, 0, 0, 0, 0, 0, 0), false, nil},
		{"empty", nil, false, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ip, mac, ok := ParseAdvertisement(tt.b)
			if ok != tt.ok || !bytes.Equal(mac, tt.mac) || (ok && ip != target6) {
				t.Errorf("ParseAdvertisement = %v, %v, %v; want %v, %v, %v", ip, mac, ok, target6, tt.mac, tt.ok)
			}
		})
	}
}

// FuzzParseAdvertisement compares ParseAdvertisement with ndp's parser:
// every advertisement ndp accepts with a target link-layer address must give
// the same target and MAC; what ParseAdvertisement accepts must carry its
// target at bytes 8..24 and a MAC that ndp, when it parses the message at
// all, agrees with. It must never panic.
func FuzzParseAdvertisement(f *testing.F) {
	seed := func(m ndp.Message) []byte {
		b, err := ndp.MarshalMessage(m)
		if err != nil {
			f.Fatal(err)
		}
		return b
	}
	f.Add(seed(na(target6, macA)))                                                             // the normal answer
	f.Add(seed(na(target6, nil)))                                                              // no target LLA option
	f.Add(seed(&ndp.NeighborSolicitation{TargetAddress: target6}))                             // a solicitation
	f.Add(seed(&ndp.RouterSolicitation{}))                                                     // another type
	f.Add([]byte{136, 0, 0, 0, 0x60, 0, 0, 0})                                                 // truncated NA
	f.Add(append(seed(na(target6, macA)), 2, 0))                                               // zero-length option
	f.Add(append(seed(na(target6, nil)), 2, 1, 0xff, 0xff, 0, 0, 0, 0))                        // target LLA option
	f.Add(append(seed(na(target6, nil)), 2, 2, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14)) // 16-byte LLA option
	f.Fuzz(func(t *testing.T, b []byte) {
		ip, mac, ok := ParseAdvertisement(b)
		rip, rmac, rok := advertised(b)
		if rok && (!ok || ip != rip || !bytes.Equal(mac, rmac)) {
			t.Fatalf("ParseAdvertisement = %v %v %v, ndp says %v %v", ip, mac, ok, rip, rmac)
		}
		if !ok {
			return
		}
		if len(mac) != 6 || ip != netip.AddrFrom16([16]byte(b[8:24])) || b[0] != 136 {
			t.Fatalf("accepted %v %v from % x", ip, mac, b)
		}
		if _, err := ndp.ParseMessage(b); err == nil && !rok {
			t.Fatalf("ndp parses % x but finds no target link-layer address; ParseAdvertisement found %v", b, mac)
		}
	})
}
