package receiver

import (
	"context"
	"fmt"
	"github.com/lastgasp/lastgasp/store"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/lastgasp/lastgasp/netconsole/wire"
)

// serveConns runs srv on conns until the test ends and returns a stop
// function that waits for it and closes the store.
func serveConns(t *testing.T, srv *Server, conns []*net.UDPConn) func() {
	t.Helper()
	if srv.Store == nil {
		srv.Store = &store.Store{Root: t.TempDir()}
	}
	pcs := make([]net.PacketConn, len(conns))
	for i, c := range conns {
		pcs[i] = c
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.ServeConns(ctx, pcs...) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("ServeConns = %v, want nil after cancel", err)
			}
			if err := srv.Store.Close(); err != nil {
				t.Errorf("Store.Close = %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func TestListenUDPReusePort(t *testing.T) {
	for _, tt := range []struct{ name, addr string }{
		{"ipv4", "127.0.0.1:0"},
		{"ipv6", "[::1]:0"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			conns, err := ListenUDP(tt.addr, 2, 1<<20)
			if err != nil {
				if tt.name == "ipv6" {
					t.Skipf("no IPv6 loopback: %v", err)
				}
				t.Fatalf("ListenUDP: %v", err)
			}
			if len(conns) != 2 || conns[0].LocalAddr().String() != conns[1].LocalAddr().String() {
				t.Fatalf("ListenUDP = %v, want 2 sockets on one port", conns)
			}
			srv := &Server{AnnounceTimeout: time.Minute, Logf: t.Logf}
			stop := serveConns(t, srv, conns)
			const senders, msgs = 16, 20
			for i := range senders {
				c, err := net.Dial("udp", conns[0].LocalAddr().String())
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				c.Write([]byte(ext(1, fmt.Sprintf("lastgasp: armed host=h%d boot=b", i))))
				for seq := uint64(2); seq < msgs+2; seq++ {
					c.Write([]byte(ext(seq, "hello")))
				}
			}
			waitFor(t, "all messages", func() bool { return srv.Stats().Messages == senders*(msgs+1) })
			stop()
			for i := range senders {
				if got := readLog(t, srv.Store, fmt.Sprintf("h%d", i), "b"); len(got) != msgs+1 {
					t.Errorf("h%d: %d lines, want %d", i, len(got), msgs+1)
				}
			}
			if st := srv.Stats(); st.Lost != 0 || st.Dropped != 0 || st.Active != 0 || st.PendingBytes != 0 {
				t.Errorf("Stats() = %+v, want no loss and nothing held after stop", st)
			}
		})
	}
}

func TestServeMemoryBound(t *testing.T) {
	const bound = 5000
	ts := startServer(t, &Server{MaxMemory: bound, AnnounceTimeout: time.Minute})
	s := ts.dial(t)
	s.send(ext(1, announceLine))
	// First halves of messages that never complete: each holds ~2 KiB.
	for seq := uint64(2); seq < 12; seq++ {
		s.send(fmt.Sprintf("6,%d,%d,-,ncfrag=0/2000;%s", seq, 1_000_000+seq*1000, strings.Repeat("x", 1000)))
	}
	ts.waitStats(t, "datagrams", func(st Stats) bool { return st.Datagrams == 11 })
	st := ts.srv.Stats()
	if st.DroppedMemory == 0 || st.PendingBytes > bound {
		t.Errorf("Stats() = %+v, want memory drops and at most %d bytes pending", st, bound)
	}
	ts.stop()
	if got := ts.srv.Stats().PendingBytes; got != 0 {
		t.Errorf("PendingBytes after stop = %d, want 0", got)
	}
}

func TestServeTruncated(t *testing.T) {
	ts := startServer(t, &Server{DatagramSize: 100})
	s := ts.dial(t)
	s.send(ext(1, strings.Repeat("y", 200)), ext(2, "short"))
	ts.waitStats(t, "datagrams", func(st Stats) bool { return st.Datagrams == 2 })
	if st := ts.srv.Stats(); st.Truncated != 1 || st.Messages != 1 {
		t.Errorf("Stats() = %+v, want 1 truncated, 1 message", st)
	}
}

func TestServeForward(t *testing.T) {
	var mu sync.Mutex
	var got []string
	ts := startServer(t, &Server{AnnounceTimeout: time.Minute, Forward: func(f Forwarded) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, fmt.Sprintf("%s/%s %d %s", f.Host, f.Boot, f.Message.Seq, f.Message.Text))
	}})
	s := ts.dial(t)
	s.send(ext(1, "before"), ext(2, "lastgasp: armed host=h boot=b"), ext(3, "after"))
	ts.waitStats(t, "forwarded", func(st Stats) bool { return st.Forwarded == 3 })
	ts.stop()
	mu.Lock()
	defer mu.Unlock()
	want := []string{"h/b 1 before", "h/b 2 lastgasp: armed host=h boot=b", "h/b 3 after"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("forwarded mismatch (-want +got):\n%s", diff)
	}
}

func BenchmarkIngest(b *testing.B) {
	srv := &Server{Store: &store.Store{Root: b.TempDir()}}
	in := srv.newIngest()
	addrs := make([]*net.UDPAddr, 256)
	for i := range addrs {
		addrs[i] = &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 10000 + i}
		in.datagram(time.Now(), addrs[i], wire.Format(wire.Packet{Extended: true, Level: 6, Seq: 0, Text: fmt.Sprintf("lastgasp: armed host=h%d boot=b", i)}), false)
	}
	d := make([][]byte, 1024)
	for i := range d {
		d[i] = wire.Format(wire.Packet{Extended: true, Level: 6, Seq: uint64(i + 1), TimestampUsec: uint64(i) * 1000,
			Text: "virtio_net virtio0 eth0: a typical kernel message of some length here"})
	}
	i := 0
	for b.Loop() {
		h, m := i%256, i/256
		in.datagram(time.Now(), addrs[h], d[m%1024], false)
		i++
		if m%1024 == 1023 && h == 255 {
			b.StopTimer()
			in.shutdown(time.Now())
			b.StartTimer()
		}
	}
	in.shutdown(time.Now())
	srv.Store.Close()
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, _ := os.ReadFile(path)
	return string(b)
}
