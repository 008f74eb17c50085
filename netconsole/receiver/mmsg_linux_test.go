package receiver

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"
)

// TestMmsgReader reads real sockets with the recvmmsg reader: every
// datagram comes back whole and in order, a batch at a time, with its
// sender's address and port as the sender's own socket names them (IPv4
// senders on a dual-stack socket unmapped, as sourceKey has them), and a
// datagram longer than the buffer is marked truncated.
func TestMmsgReader(t *testing.T) {
	for _, tt := range []struct{ name, listen, to string }{
		{"ipv4", "127.0.0.1:0", "127.0.0.1"},
		{"ipv6", "[::1]:0", "::1"},
		{"ipv4 on a dual-stack socket", "[::]:0", "127.0.0.1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			conns, err := ListenUDP(tt.listen, 1, 0)
			if err != nil {
				t.Skipf("ListenUDP(%s): %v", tt.listen, err)
			}
			defer conns[0].Close()
			port := conns[0].LocalAddr().(*net.UDPAddr).Port
			c, err := net.Dial("udp", net.JoinHostPort(tt.to, fmt.Sprint(port)))
			if err != nil {
				t.Skipf("dial %s: %v", tt.to, err)
			}
			defer c.Close()
			want := c.LocalAddr().(*net.UDPAddr).AddrPort()
			want = netip.AddrPortFrom(want.Addr().Unmap(), want.Port())
			const size, batch = 64, 4
			var sent []string
			for i := range 10 {
				d := fmt.Sprintf("datagram %d", i)
				if i == 7 {
					d = strings.Repeat("z", size+10)
				}
				if _, err := c.Write([]byte(d)); err != nil {
					t.Fatal(err)
				}
				sent = append(sent, d)
			}
			r, err := newMmsgReader(conns[0], batch, size)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for reads := 0; len(got) < len(sent) && reads < 20; reads++ {
				conns[0].SetReadDeadline(time.Now().Add(2 * time.Second))
				n, err := r.read()
				if err != nil {
					t.Fatalf("read: %v", err)
				}
				if n < 1 || n > batch {
					t.Fatalf("read = %d datagrams, want 1 to %d", n, batch)
				}
				for i := range n {
					key, b, trunc, ok := r.datagram(i)
					if !ok || key != want {
						t.Errorf("datagram %d from %v (ok %v), want %v", len(got), key, ok, want)
					}
					if long := len(got) == 7; trunc != long || long && len(b) != size {
						t.Errorf("datagram %d: truncated %v, %d bytes; want truncated only for the long one, at %d bytes", len(got), trunc, len(b), size)
					}
					if !trunc && string(b) != sent[len(got)] {
						t.Errorf("datagram %d = %q, want %q", len(got), b, sent[len(got)])
					}
					got = append(got, string(b))
				}
			}
			if len(got) != len(sent) {
				t.Fatalf("read %d datagrams, want %d", len(got), len(sent))
			}
			conns[0].SetReadDeadline(time.Now().Add(20 * time.Millisecond))
			if n, err := r.read(); n != 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Errorf("read with nothing sent = %d, %v; want 0, deadline exceeded", n, err)
			}
		})
	}
}
