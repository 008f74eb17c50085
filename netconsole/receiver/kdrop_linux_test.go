package receiver

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/lastgasp/lastgasp/store"
)

// TestKernelDropsCounted overflows a real socket's receive buffer before
// anything reads it: the datagrams the kernel dropped are counted through
// SO_RXQ_OVFL, so received + kernel drops = sent.
func TestKernelDropsCounted(t *testing.T) {
	conns, err := ListenUDP("127.0.0.1:0", 1, 4096)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("udp", conns[0].LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const sent = 2000
	for i := range sent {
		c.Write([]byte(ext(uint64(i), "a line that fills the receive buffer quickly")))
	}
	srv := &Server{Store: &store.Store{Root: t.TempDir()}, Logf: t.Logf}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, conns[0]) }()
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
