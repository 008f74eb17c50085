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

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
)

var (
	target = netip.MustParseAddr("10.0.0.1")
	macA   = net.HardwareAddr{0x02, 0, 0, 0, 0, 0xa}
	macB   = net.HardwareAddr{0x02, 0, 0, 0, 0, 0xb}
	ours   = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x1}
)

func reply(from net.HardwareAddr, ip netip.Addr) *arp.Packet {
	p, err := arp.NewPacket(arp.OperationReply, from, ip, ours, netip.MustParseAddr("10.0.0.2"))
	if err != nil {
		panic(err)
	}
	return p
}

// fakeConn answers the n-th request (1-based) with answers[n]; reads with
// nothing queued wait for the read deadline, as a socket does.
type fakeConn struct {
	mu       sync.Mutex
	requests int
	answers  map[int][]*arp.Packet
	sendErr  map[int]error
	queue    []*arp.Packet
	deadline time.Time
	closed   bool
}

func (c *fakeConn) Request(ip netip.Addr) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return net.ErrClosed
	}
	c.requests++
	if err := c.sendErr[c.requests]; err != nil {
		return err
	}
	c.queue = append(c.queue, c.answers[c.requests]...)
	return nil
}

func (c *fakeConn) Read() (*arp.Packet, *ethernet.Frame, error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, nil, net.ErrClosed
	}
	if len(c.queue) > 0 {
		p := c.queue[0]
		c.queue = c.queue[1:]
		c.mu.Unlock()
		return p, &ethernet.Frame{}, nil
	}
	d := c.deadline
	c.mu.Unlock()
	time.Sleep(time.Until(d))
	return nil, nil, os.ErrDeadlineExceeded
}

func (c *fakeConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	c.deadline = t
	c.mu.Unlock()
	return nil
}

func TestResolve(t *testing.T) {
	other := netip.MustParseAddr("10.0.0.9")
	request, _ := arp.NewPacket(arp.OperationRequest, macB, target, ours, other)
	for _, tc := range []struct {
		name      string
		conn      *fakeConn
		r         Resolver
		want      net.HardwareAddr
		wantErr   error
		conflicts int
		requests  int
	}{
		{name: "first answer", conn: &fakeConn{answers: map[int][]*arp.Packet{1: {reply(macA, target)}}}, want: macA, requests: 1},
		{name: "third request answered", conn: &fakeConn{answers: map[int][]*arp.Packet{3: {reply(macA, target)}}}, want: macA, requests: 3},
		{
			name: "noise ignored",
			conn: &fakeConn{answers: map[int][]*arp.Packet{1: {
				reply(macB, other), request, reply(net.HardwareAddr{0, 0, 0, 0, 0, 0}, target),
				reply(net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, target), reply(net.HardwareAddr{0x01, 0, 0x5e, 0, 0, 1}, target),
				reply(macA, target),
			}}},
			want: macA, requests: 1,
		},
		{
			name: "conflict seen while lingering",
			conn: &fakeConn{answers: map[int][]*arp.Packet{1: {reply(macA, target), reply(macA, target), reply(macB, target)}}},
			r:    Resolver{Linger: 50 * time.Millisecond}, want: macA, conflicts: 1, requests: 1,
		},
		{
			name: "no linger: the first answer ends it",
			conn: &fakeConn{answers: map[int][]*arp.Packet{1: {reply(macA, target), reply(macB, target)}}},
			want: macA, conflicts: 0, requests: 1,
		},
		{
			name: "send errors are retried",
			conn: &fakeConn{sendErr: map[int]error{1: errors.New("network is down")}, answers: map[int][]*arp.Packet{2: {reply(macA, target)}}},
			want: macA, requests: 2,
		},
		{name: "silence", conn: &fakeConn{}, wantErr: ErrNoAnswer},
		{name: "closed", conn: &fakeConn{closed: true}, wantErr: net.ErrClosed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var conflicts [][2]net.HardwareAddr
			r := tc.r
			r.Retry = 20 * time.Millisecond
			r.Logf = t.Logf
			r.OnConflict = func(ip netip.Addr, first, other net.HardwareAddr) {
				if ip != target {
					t.Errorf("conflict reported for %v", ip)
				}
				conflicts = append(conflicts, [2]net.HardwareAddr{first, other})
			}
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			t0 := time.Now()
			got, err := r.Resolve(ctx, tc.conn, target)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("Resolve = %v, %v; want %v", got, err, tc.wantErr)
				}
				if d := time.Since(t0); d > 400*time.Millisecond {
					t.Errorf("Resolve failed after %v with a 300ms deadline", d)
				}
				return
			}
			if err != nil || !bytes.Equal(got, tc.want) {
				t.Fatalf("Resolve = %v, %v; want %v", got, err, tc.want)
			}
			if len(conflicts) != tc.conflicts {
				t.Errorf("%d conflicts reported (%v), want %d", len(conflicts), conflicts, tc.conflicts)
			}
			for _, c := range conflicts {
				if !bytes.Equal(c[0], macA) || !bytes.Equal(c[1], macB) {
					t.Errorf("conflict %v, want first %v other %v", c, macA, macB)
				}
			}
			if tc.conn.requests != tc.requests {
				t.Errorf("%d requests sent, want %d", tc.conn.requests, tc.requests)
			}
		})
	}
}

// TestResolveLingerShorterThanRetry: lingering after the first answer lasts
// Linger, not until the next retry is due.
func TestResolveLingerShorterThanRetry(t *testing.T) {
	c := &fakeConn{answers: map[int][]*arp.Packet{1: {reply(macA, target)}}}
	r := Resolver{Retry: 500 * time.Millisecond, Linger: 20 * time.Millisecond, Logf: t.Logf}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	t0 := time.Now()
	got, err := r.Resolve(ctx, c, target)
	if err != nil || !bytes.Equal(got, macA) {
		t.Fatalf("Resolve = %v, %v; want %v", got, err, macA)
	}
	if d := time.Since(t0); d > 250*time.Millisecond {
		t.Errorf("Resolve took %v with an immediate answer, 20ms linger and 500ms retry", d)
	}
}

// TestResolveOnAnswerBeforeLinger: OnAnswer gets the first MAC once, while
// Resolve is still lingering, and a later conflicting answer is still
// reported to OnConflict (the agent arms on OnAnswer).
func TestResolveOnAnswerBeforeLinger(t *testing.T) {
	c := &fakeConn{answers: map[int][]*arp.Packet{1: {reply(macA, target), reply(macB, target)}}}
	answered := make(chan net.HardwareAddr, 2)
	var conflicts int
	r := Resolver{Retry: 20 * time.Millisecond, Linger: 150 * time.Millisecond, Logf: t.Logf,
		OnAnswer:   func(mac net.HardwareAddr) { answered <- mac },
		OnConflict: func(netip.Addr, net.HardwareAddr, net.HardwareAddr) { conflicts++ },
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := r.Resolve(ctx, c, target)
		done <- err
	}()
	select {
	case mac := <-answered:
		if !bytes.Equal(mac, macA) {
			t.Errorf("OnAnswer(%v), want the first answer %v", mac, macA)
		}
	case <-done:
		t.Fatal("Resolve returned before OnAnswer was called")
	}
	select {
	case <-done:
		t.Error("Resolve returned right after the first answer: it must linger for conflicts")
	case <-time.After(30 * time.Millisecond):
	}
	if err := <-done; err != nil {
		t.Fatalf("Resolve: %v", err)
	}
	if len(answered) != 0 {
		t.Error("OnAnswer called more than once")
	}
	if conflicts != 1 {
		t.Errorf("%d conflicts reported, want 1", conflicts)
	}
}

func TestResolveNotIPv4(t *testing.T) {
	if _, err := Resolve(context.Background(), &fakeConn{}, netip.MustParseAddr("fe80::1"), time.Millisecond); err == nil {
		t.Error("Resolve(fe80::1) succeeded")
	}
}

// frameConn returns the frames it holds, parsed the way arp.Client.Read
// parses them, then cancels the resolve (the fuzz input is exhausted).
type frameConn struct {
	frames [][]byte
	cancel func()
}

func (c *frameConn) Request(netip.Addr) error        { return nil }
func (c *frameConn) SetReadDeadline(time.Time) error { return nil }
func (c *frameConn) Read() (*arp.Packet, *ethernet.Frame, error) {
	for len(c.frames) > 0 {
		b := c.frames[0]
		c.frames = c.frames[1:]
		f := new(ethernet.Frame)
		if err := f.UnmarshalBinary(b); err != nil {
			return nil, nil, err
		}
		if f.EtherType != ethernet.EtherTypeARP {
			continue
		}
		p := new(arp.Packet)
		if err := p.UnmarshalBinary(f.Payload); err != nil {
			return nil, nil, err
		}
		return p, f, nil
	}
	c.cancel()
	return nil, nil, os.ErrDeadlineExceeded
}

func frame(p *arp.Packet) []byte {
	pb, err := p.MarshalBinary()
	if err != nil {
		panic(err)
	}
	b, err := (&ethernet.Frame{Destination: ours, Source: p.SenderHardwareAddr, EtherType: ethernet.EtherTypeARP, Payload: pb}).MarshalBinary()
	if err != nil {
		panic(err)
	}
	return b
}

// FuzzResolve feeds arbitrary frames (each prefixed with its length byte)
// as ARP answers: Resolve must not panic, and any MAC it returns is the
// first valid reply from the target; any further MAC is a reported conflict.
func FuzzResolve(f *testing.F) {
	join := func(frames ...[]byte) []byte {
		var out []byte
		for _, fr := range frames {
			out = append(out, byte(len(fr)))
			out = append(out, fr...)
		}
		return out
	}
	req, _ := arp.NewPacket(arp.OperationRequest, macB, target, ours, target)
	f.Add(join(frame(reply(macA, target))))
	f.Add(join(frame(reply(macA, target)), frame(reply(macB, target))))
	f.Add(join(frame(req), frame(reply(macB, netip.MustParseAddr("10.0.0.3"))), []byte{1, 2, 3}))
	f.Add(join(frame(reply(net.HardwareAddr{1, 2, 3, 4, 5, 6}, target))))
	f.Fuzz(func(t *testing.T, in []byte) {
		var frames [][]byte
		for len(in) > 0 {
			n := int(in[0])
			in = in[1:]
			n = min(n, len(in))
			frames = append(frames, in[:n])
			in = in[n:]
		}
		// What Resolve should pick, from an independent reading.
		var valid []net.HardwareAddr
		for _, b := range frames {
			fr := new(ethernet.Frame)
			if fr.UnmarshalBinary(b) != nil || fr.EtherType != ethernet.EtherTypeARP {
				continue
			}
			p := new(arp.Packet)
			if p.UnmarshalBinary(fr.Payload) != nil {
				continue
			}
			m := p.SenderHardwareAddr
			if p.Operation == arp.OperationReply && p.SenderIP == target && len(m) == 6 && m[0]&1 == 0 && !bytes.Equal(m, make([]byte, 6)) {
				valid = append(valid, m)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		var conflicts []net.HardwareAddr
		r := Resolver{Retry: time.Second, Linger: time.Second, OnConflict: func(_ netip.Addr, _, other net.HardwareAddr) {
			conflicts = append(conflicts, other)
		}}
		got, err := r.Resolve(ctx, &frameConn{frames: frames, cancel: cancel}, target)
		if len(valid) == 0 {
			if err == nil {
				t.Fatalf("Resolve = %v from no valid reply", got)
			}
			return
		}
		if err != nil || !bytes.Equal(got, valid[0]) {
			t.Fatalf("Resolve = %v, %v; want %v", got, err, valid[0])
		}
		for _, c := range conflicts {
			if bytes.Equal(c, got) {
				t.Errorf("conflict reported with the winning MAC %v", c)
			}
		}
	})
}
