package receiver

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/lastgasp/lastgasp/store"
)

// overflowed sends sent datagrams to a socket with a small receive buffer
// before anything reads it, then serves it; c writes to it, cancel stops
// the server and done has Serve's error.
func overflowed(t *testing.T, sent int) (srv *Server, c net.Conn, cancel context.CancelFunc, done chan error) {
	t.Helper()
	conns, err := ListenUDP("127.0.0.1:0", 1, 4096)
	if err != nil {
		t.Fatal(err)
	}
	c, err = net.Dial("udp", conns[0].LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	for i := range sent {
		c.Write([]byte(ext(uint64(i), "a line that fills the receive buffer quickly")))
	}
	srv = &Server{Store: &store.Store{Root: t.TempDir()}, Logf: t.Logf}
	ctx, cancel := context.WithCancel(t.Context())
	done = make(chan error, 1)
	go func() { done <- srv.Serve(ctx, conns[0]) }()
	return srv, c, cancel, done
}

// TestKernelDropsCounted overflows a real socket's receive buffer before
// anything reads it: the datagrams the kernel dropped are counted through
// SO_RXQ_OVFL, so received + kernel drops = sent.
func TestKernelDropsCounted(t *testing.T) {
	const sent = 2000
	srv, c, cancel, done := overflowed(t, sent)
	// The counter comes with the next datagram queued after the drops.
	time.Sleep(200 * time.Millisecond)
	c.Write([]byte(ext(sent, "last")))
	waitFor(t, "every datagram read or counted", func() bool {
		st := srv.Stats()
		return st.Datagrams+st.KernelDrops == sent+1
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if st := srv.Stats(); st.KernelDrops == 0 || st.Datagrams == 0 {
		t.Errorf("Datagrams %d KernelDrops %d: want both > 0 (the buffer holds a few)", st.Datagrams, st.KernelDrops)
	}
}

// TestKernelDropsAfterLastDatagram: drops after the last datagram a socket
// queued are counted too. SO_RXQ_OVFL reports them only with a datagram
// queued after them, and a stream that stops (a host whose last messages,
// trailer and all, the kernel dropped) sends none; the receiver reads the
// socket's own counter as well.
func TestKernelDropsAfterLastDatagram(t *testing.T) {
	const sent = 2000
	srv, c, cancel, done := overflowed(t, sent)
	waitFor(t, "every datagram read or counted, with nothing sent after the drops", func() bool {
		st := srv.Stats()
		return st.Datagrams+st.KernelDrops == sent
	})
	// Nothing is counted twice once later datagrams report the same drops.
	c.Write([]byte(ext(sent, "last")))
	waitFor(t, "the last datagram read", func() bool { return srv.Stats().Datagrams+srv.Stats().KernelDrops >= sent+1 })
	time.Sleep(250 * time.Millisecond)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if st := srv.Stats(); st.KernelDrops == 0 || st.Datagrams+st.KernelDrops != sent+1 {
		t.Errorf("Datagrams %d KernelDrops %d: want drops, and %d in all", st.Datagrams, st.KernelDrops, sent+1)
	}
}

// TestOvflCounterAdvance: readings of the kernel's u32 drop counter, from
// datagrams (the counter when each was queued) and from the socket (the
// counter now), in the order the receiver sees them: the first reading is
// what was dropped since the socket opened, an older reading after a newer
// one adds nothing, and the counter wraps at 2^32.
func TestOvflCounterAdvance(t *testing.T) {
	for _, tt := range []struct {
		name     string
		readings []uint32
		want     []uint64
	}{
		{"first is since open", []uint32{7}, []uint64{7}},
		{"increments", []uint32{0, 3, 3, 10}, []uint64{0, 3, 0, 7}},
		{"socket ahead of datagrams read after it", []uint32{5, 40, 12, 40, 41}, []uint64{5, 35, 0, 0, 1}},
		{"wraps", []uint32{0xffff_fffe, 1}, []uint64{0xffff_fffe, 3}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var o ovflCounter
			for i, c := range tt.readings {
				if got := o.advance(c); got != tt.want[i] {
					t.Errorf("reading %d (%d): advance = %d, want %d", i, c, got, tt.want[i])
				}
			}
		})
	}
}
