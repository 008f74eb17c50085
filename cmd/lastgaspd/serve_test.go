package main

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lastgasp/lastgasp/netconsole/forward"
	"github.com/lastgasp/lastgasp/netconsole/wire"
)

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T, network string) string {
	t.Helper()
	if network == "udp" {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.LocalAddr().String()
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestServeForwardsAndListsCrashes runs the collector with a syslog
// forward to a loopback TCP server, sends it a netconsole panic and checks
// the forwarded message, /metrics and /crashes.
func TestServeForwardsAndListsCrashes(t *testing.T) {
	syslog, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer syslog.Close()
	var mu sync.Mutex
	var frames []string
	go func() {
		for {
			c, err := syslog.Accept()
			if err != nil {
				return
			}
			go func() {
				r := bufio.NewReader(c)
				for {
					m, err := forward.ReadFrame(r)
					if err != nil {
						return
					}
					mu.Lock()
					frames = append(frames, string(m))
					mu.Unlock()
				}
			}()
		}
	}()
	udp, httpAddr := freePort(t, "udp"), freePort(t, "tcp")
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	var logs strings.Builder
	go func() {
		done <- run(ctx, []string{"-netconsole", udp, "-http", httpAddr, "-store", t.TempDir(), "-sockets", "2",
			"-forward", "tcp://" + syslog.Addr().String()}, io.Discard, &syncWriter{w: &logs})
	}()
	get := getter(httpAddr)
	deadline := time.Now().Add(10 * time.Second)
	for get("/metrics") == "" && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	c, err := net.Dial("udp", udp)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i, text := range []string{"lastgasp: netconsole armed host=box1 boot=b1", "Kernel panic - not syncing: sysrq triggered crash"} {
		c.Write(wire.Format(wire.Packet{Extended: true, Seq: uint64(100 + i), TimestampUsec: uint64(3_000_000 + i), Text: text}))
	}
	for {
		mu.Lock()
		n := len(frames)
		mu.Unlock()
		if n >= 2 && strings.Contains(get("/crashes"), "box1") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out: %d frames forwarded, /crashes:\n%s\nlog:\n%s", n, get("/crashes"), logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if m := get("/metrics"); !strings.Contains(m, "lastgaspd_forward_sent_total 2") || !strings.Contains(m, "lastgaspd_netconsole_messages_total 2") {
		t.Errorf("/metrics:\n%s", m)
	}
	mu.Lock()
	if want := `box1 kernel - netconsole [lastgasp@32473 seq="101" ts="3.000001" boot="b1"] Kernel panic - not syncing: sysrq triggered crash`; !strings.Contains(frames[1], want) {
		t.Errorf("forwarded %q, want it to contain %q", frames[1], want)
	}
	mu.Unlock()
	if cr := get("/crashes"); !strings.Contains(cr, "Kernel panic - not syncing: sysrq triggered crash") || !strings.Contains(cr, "b1/kernel.log seq=101") {
		t.Errorf("/crashes:\n%s", cr)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("run = %v, want nil after cancel", err)
	}
}

// getter returns a GET of a path on the collector at addr: the body, or
// "" while it does not answer.
func getter(addr string) func(path string) string {
	return func(path string) string {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			return ""
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
}

type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(b)
}
