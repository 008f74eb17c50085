package link

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/server4"
)

// testServer is a small scripted DHCP server for server4: it offers one
// address and can ignore the first DISCOVERs, NAK the first REQUESTs or
// send an unusable ACK first.
type testServer struct {
	id, offer net.IP
	mask      net.IPMask
	options   []dhcpv4.Modifier

	mu            sync.Mutex
	dropDiscovers int // ignore this many DISCOVERs
	naks          int // NAK this many REQUESTs
	badACKs       int // ACK this many REQUESTs with an unusable lease
	seen          []string
}

func (s *testServer) handle(conn net.PacketConn, peer net.Addr, m *dhcpv4.DHCPv4) {
	s.mu.Lock()
	s.seen = append(s.seen, m.MessageType().String())
	mods := []dhcpv4.Modifier{
		dhcpv4.WithServerIP(s.id),
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(s.id)),
		dhcpv4.WithYourIP(s.offer),
		dhcpv4.WithOption(dhcpv4.OptSubnetMask(s.mask)),
		dhcpv4.WithLeaseTime(600),
	}
	switch m.MessageType() {
	case dhcpv4.MessageTypeDiscover:
		if s.dropDiscovers > 0 {
			s.dropDiscovers--
			s.mu.Unlock()
			return
		}
		mods = append(mods, dhcpv4.WithMessageType(dhcpv4.MessageTypeOffer))
	case dhcpv4.MessageTypeRequest:
		switch {
		case s.naks > 0:
			s.naks--
			mods = []dhcpv4.Modifier{
				dhcpv4.WithServerIP(s.id),
				dhcpv4.WithOption(dhcpv4.OptServerIdentifier(s.id)),
				dhcpv4.WithMessageType(dhcpv4.MessageTypeNak),
				dhcpv4.WithOption(dhcpv4.OptMessage("address not on this network")),
			}
		case s.badACKs > 0:
			s.badACKs--
			mods = append(mods, dhcpv4.WithMessageType(dhcpv4.MessageTypeAck))
			mods = append(mods, s.options...)
			mods = append(mods, dhcpv4.WithOption(dhcpv4.OptGeneric(dhcpv4.OptionInterfaceMTU, []byte{1})))
			s.mu.Unlock()
			reply, err := dhcpv4.NewReplyFromRequest(m, mods...)
			if err == nil {
				conn.WriteTo(reply.ToBytes(), peer)
			}
			return
		default:
			mods = append(mods, dhcpv4.WithMessageType(dhcpv4.MessageTypeAck))
		}
	default:
		s.mu.Unlock()
		return
	}
	mods = append(mods, s.options...)
	s.mu.Unlock()
	reply, err := dhcpv4.NewReplyFromRequest(m, mods...)
	if err != nil {
		return
	}
	conn.WriteTo(reply.ToBytes(), peer)
}

func (s *testServer) messages() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.seen, ",")
}

// loopbackDHCP runs s on 127.0.0.1 and returns DHCP options that make the
// client talk to it over another loopback socket (no privileges needed).
func loopbackDHCP(t *testing.T, s *testServer) []DHCPOption {
	t.Helper()
	sc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server4.NewServer("", nil, s.handle, server4.WithConn(sc))
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve()
	t.Cleanup(func() { srv.Close() })
	cc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	hw := net.HardwareAddr{0x02, 0, 0, 0, 0, 0x42}
	return []DHCPOption{WithConn(cc, hw, sc.LocalAddr().(*net.UDPAddr)), WithLogf(t.Logf)}
}

func newTestServer() *testServer {
	return &testServer{id: ip4("10.7.0.1"), offer: ip4("10.7.0.50"), mask: net.CIDRMask(24, 32)}
}

func TestDHCPLoopback(t *testing.T) {
	routes := []byte{16, 10, 50, 10, 7, 0, 1, 0, 10, 7, 0, 1}
	for _, tc := range []struct {
		name     string
		setup    func(*testServer)
		timeout  time.Duration
		wantMsgs string
		wantLog  string
	}{
		{name: "plain", wantMsgs: "DISCOVER,REQUEST"},
		{name: "first discover lost", setup: func(s *testServer) { s.dropDiscovers = 1 }, wantMsgs: "DISCOVER,DISCOVER,REQUEST", wantLog: "no OFFER"},
		{name: "NAK restarts discovery", setup: func(s *testServer) { s.naks = 1 }, wantMsgs: "DISCOVER,REQUEST,DISCOVER,REQUEST", wantLog: "NAK from 10.7.0.1"},
		{name: "two NAKs", setup: func(s *testServer) { s.naks = 2 }, wantMsgs: "DISCOVER,REQUEST,DISCOVER,REQUEST,DISCOVER,REQUEST", wantLog: "address not on this network"},
		{name: "unusable ACK", setup: func(s *testServer) { s.badACKs = 1 }, wantMsgs: "DISCOVER,REQUEST,DISCOVER,REQUEST", wantLog: "option 26"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newTestServer()
			s.options = []dhcpv4.Modifier{
				dhcpv4.WithOption(dhcpv4.OptGeneric(dhcpv4.OptionClasslessStaticRoute, routes)),
				dhcpv4.WithOption(dhcpv4.OptGeneric(dhcpv4.OptionLogServer, []byte{10, 7, 0, 9})),
				dhcpv4.WithOption(dhcpv4.OptGeneric(dhcpv4.OptionInterfaceMTU, []byte{0x05, 0x78})),
			}
			if tc.setup != nil {
				tc.setup(s)
			}
			var logs logBuf
			opts := append(loopbackDHCP(t, s), WithBackoff(100*time.Millisecond, 400*time.Millisecond), WithLogf(logs.logf(t)))
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			l, err := DHCP(ctx, "lo-test", opts...)
			if err != nil {
				t.Fatalf("DHCP: %v", err)
			}
			want := &Lease{
				Interface: "lo-test", Address: net.IPNet{IP: ip4("10.7.0.50"), Mask: net.CIDRMask(24, 32)},
				Router: ip4("10.7.0.1"), ServerID: ip4("10.7.0.1"), MTU: 1400, LogServers: []net.IP{ip4("10.7.0.9")}, LogServerOption: 7,
				Routes:   []Route{{Dest: cidr("10.50.0.0/16"), Gateway: ip4("10.7.0.1")}, {Dest: cidr("0.0.0.0/0"), Gateway: ip4("10.7.0.1")}},
				Duration: 10 * time.Minute,
			}
			if diff := cmp.Diff(want, l, cmpAddr); diff != "" {
				t.Errorf("DHCP lease (-want +got):\n%s", diff)
			}
			if got := s.messages(); got != tc.wantMsgs {
				t.Errorf("server saw %s, want %s", got, tc.wantMsgs)
			}
			if !strings.Contains(logs.String(), tc.wantLog) {
				t.Errorf("log does not mention %q:\n%s", tc.wantLog, logs.String())
			}
		})
	}
}

// TestDHCPLoopbackSiteOption: the site log server option replaces option 7
// when asked for; a malformed one costs the option, not the lease.
func TestDHCPLoopbackSiteOption(t *testing.T) {
	for _, tc := range []struct {
		name    string
		value   []byte
		want    []net.IP
		wantErr bool
	}{
		{name: "good", value: []byte{10, 7, 0, 77}, want: []net.IP{ip4("10.7.0.77")}},
		{name: "malformed", value: []byte{10, 7, 0}, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newTestServer()
			s.options = []dhcpv4.Modifier{
				dhcpv4.WithOption(dhcpv4.OptGeneric(dhcpv4.OptionLogServer, []byte{10, 7, 0, 9})),
				dhcpv4.WithOption(dhcpv4.OptGeneric(dhcpv4.GenericOptionCode(224), tc.value)),
			}
			var logs logBuf
			opts := append(loopbackDHCP(t, s), WithBackoff(100*time.Millisecond, 400*time.Millisecond), WithLogf(logs.logf(t)), WithLogServerOption(224))
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			l, err := DHCP(ctx, "lo-test", opts...)
			if err != nil {
				t.Fatalf("DHCP: %v", err)
			}
			if got := s.messages(); got != "DISCOVER,REQUEST" {
				t.Errorf("server saw %s, want one exchange", got)
			}
			if l.LogServerOption != 224 || !cmp.Equal(tc.want, l.LogServers) || (l.LogServersErr != nil) != tc.wantErr {
				t.Errorf("lease %s: log servers %v (option %d, error %v), want %v from 224, error %v", l, l.LogServers, l.LogServerOption, l.LogServersErr, tc.want, tc.wantErr)
			}
			if tc.wantErr && !strings.Contains(logs.String(), "keeping the lease without log servers") {
				t.Errorf("bad option not logged:\n%s", logs.String())
			}
		})
	}
}

func TestDHCPLoopbackFailsWell(t *testing.T) {
	for _, tc := range []struct {
		name    string
		setup   func(*testServer)
		wantErr string
	}{
		{name: "silent", setup: func(s *testServer) { s.dropDiscovers = 1 << 30 }, wantErr: "no OFFER"},
		{name: "only NAKs", setup: func(s *testServer) { s.naks = 1 << 30 }, wantErr: "server rejected request with Nak"},
		{name: "only unusable ACKs", setup: func(s *testServer) { s.badACKs = 1 << 30 }, wantErr: "option 26"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newTestServer()
			tc.setup(s)
			opts := append(loopbackDHCP(t, s), WithBackoff(50*time.Millisecond, 200*time.Millisecond))
			const deadline = 800 * time.Millisecond
			ctx, cancel := context.WithTimeout(context.Background(), deadline)
			defer cancel()
			t0 := time.Now()
			l, err := DHCP(ctx, "lo-test", opts...)
			took := time.Since(t0)
			if !errors.Is(err, ErrNoLease) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("DHCP = %v, %v; want ErrNoLease mentioning %q", l, err, tc.wantErr)
			}
			if took > deadline+200*time.Millisecond {
				t.Errorf("DHCP returned %v after a %v deadline", took, deadline)
			}
			t.Logf("error after %v: %v", took.Round(time.Millisecond), err)
			// Retransmissions back off: far fewer than one per 50ms.
			if n := strings.Count(s.messages(), "DISCOVER"); n < 2 || n > 12 {
				t.Errorf("%d DISCOVERs in %v, want between 2 and 12", n, deadline)
			}
		})
	}
}

func TestJitter(t *testing.T) {
	for i := 0; i < 1000; i++ {
		if d := jitter(time.Second); d < 875*time.Millisecond || d > 1125*time.Millisecond {
			t.Fatalf("jitter(1s) = %v", d)
		}
	}
	if d := jitter(0); d != 0 {
		t.Errorf("jitter(0) = %v", d)
	}
}

// logBuf collects log lines and passes them on to t.Logf.
type logBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuf) logf(t testing.TB) func(string, ...any) {
	return func(format string, args ...any) {
		t.Helper()
		l.mu.Lock()
		fmt.Fprintf(&l.b, format+"\n", args...)
		l.mu.Unlock()
		t.Logf(format, args...)
	}
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestLinkByName: the link Up and Apply work on carries the kernel's index,
// name and MTU for the interface (read from loopback, nothing changed),
// and an interface that does not exist is an error naming it.
func TestLinkByName(t *testing.T) {
	l, err := linkByName("lo")
	if err != nil {
		t.Fatalf("linkByName(lo): %v", err)
	}
	a := l.Attrs()
	if a.Index != 1 || a.Name != "lo" || a.MTU <= 0 {
		t.Errorf("linkByName(lo) = index %d name %q mtu %d; want index 1 (loopback is always 1), lo, an MTU", a.Index, a.Name, a.MTU)
	}
	if _, err := linkByName("lgnosuch0"); err == nil || !strings.Contains(err.Error(), "lgnosuch0") {
		t.Errorf("linkByName(lgnosuch0) = %v, want an error naming it", err)
	}
}
