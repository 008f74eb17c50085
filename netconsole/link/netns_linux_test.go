package link

// Tests against real network stacks: every interface, address, route and
// socket here lives in network namespaces the test creates (netnstest); the
// initial namespace is never touched, and no file outside t.TempDir() is
// written.

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/server4"
	"github.com/lastgasp/lastgasp/netconsole/link/netnstest"
	"github.com/vishvananda/netlink"
)

// pair makes a client and a server namespace joined by a veth pair; the
// server end has 10.7.0.1/24.
func pair(t *testing.T) (client *netnstest.NS, cif string, server *netnstest.NS, sif string) {
	t.Helper()
	client, server = netnstest.New(t), netnstest.New(t)
	cif, sif = netnstest.Ifname("lgc"), netnstest.Ifname("lgs")
	netnstest.Veth(t, client, cif, server, sif)
	server.Addr(t, sif, "10.7.0.1/24")
	return client, cif, server, sif
}

// serve runs s with server4 on ifname inside ns.
func serve(t *testing.T, ns *netnstest.NS, ifname string, s *testServer) {
	t.Helper()
	var srv *server4.Server
	if err := ns.Do(func() (err error) {
		srv, err = server4.NewServer(ifname, nil, s.handle)
		return err
	}); err != nil {
		t.Fatalf("server4 in namespace: %v", err)
	}
	go srv.Serve()
	t.Cleanup(func() { srv.Close() })
}

// dhcpIn runs DHCP for ifname inside ns.
func dhcpIn(ctx context.Context, ns *netnstest.NS, ifname string, opts ...DHCPOption) (*Lease, error) {
	var l *Lease
	err := ns.Do(func() (err error) {
		l, err = DHCP(ctx, ifname, opts...)
		return err
	})
	return l, err
}

func TestNetnsDHCPServer4(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(*testServer)
		msgs  string
	}{
		{name: "lease", msgs: "DISCOVER,REQUEST"},
		{name: "NAK then lease", setup: func(s *testServer) { s.naks = 1 }, msgs: "DISCOVER,REQUEST,DISCOVER,REQUEST"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			client, cif, server, sif := pair(t)
			s := newTestServer()
			s.options = []dhcpv4.Modifier{
				dhcpv4.WithRouter(ip4("10.7.0.254")), // ignored: option 121 is present
				dhcpv4.WithOption(dhcpv4.OptGeneric(dhcpv4.OptionClasslessStaticRoute, []byte{
					16, 10, 50, 10, 7, 0, 1, // 10.50.0.0/16 via 10.7.0.1
					24, 10, 60, 0, 0, 0, 0, 0, // 10.60.0.0/24 on-link
					0, 10, 60, 0, 1, // default via 10.60.0.1 (reachable through the on-link route)
				})),
				dhcpv4.WithOption(dhcpv4.OptGeneric(dhcpv4.OptionInterfaceMTU, []byte{0x05, 0x78})),
				dhcpv4.WithOption(dhcpv4.OptGeneric(dhcpv4.OptionLogServer, []byte{10, 7, 0, 9})),
				dhcpv4.WithOption(dhcpv4.OptDNS(ip4("10.7.0.53"))),
			}
			if tc.setup != nil {
				tc.setup(s)
			}
			serve(t, server, sif, s)
			var logs logBuf
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			t0 := time.Now()
			l, err := dhcpIn(ctx, client, cif, WithLogf(logs.logf(t)))
			if err != nil {
				t.Fatalf("DHCP: %v", err)
			}
			t.Logf("lease after %v: %s", time.Since(t0).Round(time.Millisecond), l)
			if got := s.messages(); got != tc.msgs {
				t.Errorf("server saw %s, want %s", got, tc.msgs)
			}
			if tc.setup != nil && !strings.Contains(logs.String(), "NAK from 10.7.0.1") {
				t.Errorf("NAK not logged:\n%s", logs.String())
			}
			if !l.Address.IP.Equal(ip4("10.7.0.50")) || !l.Router.Equal(ip4("10.60.0.1")) || l.MTU != 1400 ||
				len(l.Routes) != 3 || len(l.LogServers) != 1 || !l.LogServers[0].Equal(ip4("10.7.0.9")) {
				t.Fatalf("lease %s: want 10.7.0.50, router 10.60.0.1, 3 routes, mtu 1400, log server 10.7.0.9", l)
			}
			checkReplySource(t, l, server, sif)

			// Apply it, with the resolv.conf path in a temp dir.
			resolv := filepath.Join(t.TempDir(), "resolv.conf")
			if err := client.Do(func() error { return Apply(l, WithResolvConf(resolv)) }); err != nil {
				t.Fatalf("Apply: %v", err)
			}
			checkApplied(t, client, cif, l)
			if b, err := os.ReadFile(resolv); err != nil || !strings.Contains(string(b), "nameserver 10.7.0.53\n") {
				t.Errorf("resolv.conf = %q, %v; want nameserver 10.7.0.53", b, err)
			}
			// Apply is idempotent (a renewal applies the same lease again).
			if err := client.Do(func() error { return Apply(l) }); err != nil {
				t.Fatalf("second Apply: %v", err)
			}
		})
	}
}

// checkReplySource checks that the lease names the server's own address
// (10.7.0.1, see pair) and the MAC of its end of the veth as the ACK's
// sender.
func checkReplySource(t *testing.T, l *Lease, server *netnstest.NS, sif string) {
	t.Helper()
	if want := server.MAC(t, sif); l.ReplyFrom != netip.MustParseAddr("10.7.0.1") || l.ReplyMAC.String() != want.String() {
		t.Errorf("ACK from %v at %v, want 10.7.0.1 at %v", l.ReplyFrom, l.ReplyMAC, want)
	}
}

// checkApplied reads back what Apply configured in ns.
func checkApplied(t *testing.T, ns *netnstest.NS, ifname string, l *Lease) {
	t.Helper()
	lk := ns.Link(t, ifname)
	if l.MTU != 0 && lk.Attrs().MTU != l.MTU {
		t.Errorf("%s mtu = %d, want %d", ifname, lk.Attrs().MTU, l.MTU)
	}
	addrs, err := ns.NL.AddrList(lk, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, a := range addrs {
		found = found || a.IPNet.String() == l.Address.String()
	}
	if !found {
		t.Errorf("%s addresses %v, want %s", ifname, addrs, l.Address.String())
	}
	routes, err := ns.NL.RouteList(lk, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, r := range routes {
		dst := "0.0.0.0/0"
		if r.Dst != nil {
			dst = r.Dst.String()
		}
		have[dst+" via "+r.Gw.String()] = true
	}
	want := l.Routes
	if len(want) == 0 && l.Router != nil {
		want = []Route{{Dest: cidr("0.0.0.0/0"), Gateway: l.Router}}
	}
	for _, r := range want {
		k := r.Dest.String() + " via " + r.Gateway.String()
		if r.OnLink() {
			k = r.Dest.String() + " via <nil>"
		}
		if !have[k] {
			t.Errorf("route %s missing; have %v", k, have)
		}
	}
}

func TestNetnsDHCPSilent(t *testing.T) {
	client, cif, _, _ := pair(t)
	const deadline = 1500 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	t0 := time.Now()
	l, err := dhcpIn(ctx, client, cif, WithLogf(t.Logf), WithBackoff(200*time.Millisecond, time.Second))
	took := time.Since(t0)
	if !errors.Is(err, ErrNoLease) {
		t.Fatalf("DHCP on a silent network = %v, %v; want ErrNoLease", l, err)
	}
	if took > deadline+300*time.Millisecond {
		t.Errorf("DHCP gave up after %v with a %v deadline", took, deadline)
	}
	t.Logf("after %v: %v", took.Round(time.Millisecond), err)
}

func TestNetnsDHCPDnsmasq(t *testing.T) {
	dnsmasq, err := exec.LookPath("dnsmasq")
	if err != nil {
		t.Skip("dnsmasq not installed (Debian: dnsmasq-base)")
	}
	client, cif, server, sif := pair(t)
	dir := t.TempDir()
	cmd := exec.Command(dnsmasq, "-d", "--no-ping", "--no-resolv", "--no-hosts", "--leasefile-ro",
		"--pid-file="+filepath.Join(dir, "dnsmasq.pid"), "--conf-file=/dev/null", "--port=0",
		"--user=root", "--group=root", "--log-dhcp",
		"--interface="+sif, "--bind-interfaces", "--except-interface=lo",
		"--dhcp-range=10.7.0.50,10.7.0.60,255.255.255.0,1h",
		"--dhcp-option=7,10.7.0.9",
		"--dhcp-option=224,10.7.0.77", // a site-specific log server option
		"--dhcp-option=26,1400",
		"--dhcp-option=121,10.50.0.0/16,10.7.0.1,0.0.0.0/0,10.7.0.1",
	)
	var out logBuf
	w := logWriter{&out, t}
	cmd.Stdout, cmd.Stderr = w, w
	server.Start(t, cmd)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	t0 := time.Now()
	l, err := dhcpIn(ctx, client, cif, WithLogf(t.Logf))
	if err != nil {
		t.Fatalf("DHCP from dnsmasq: %v\ndnsmasq:\n%s", err, out.String())
	}
	t.Logf("lease from dnsmasq after %v: %s", time.Since(t0).Round(time.Millisecond), l)
	if len(l.LogServers) != 1 || !l.LogServers[0].Equal(ip4("10.7.0.9")) {
		t.Errorf("log servers %v, want [10.7.0.9] (option 7)", l.LogServers)
	}
	if l.MTU != 1400 || len(l.Routes) != 2 || !l.Router.Equal(ip4("10.7.0.1")) {
		t.Errorf("lease %s: want mtu 1400, 2 routes, router 10.7.0.1", l)
	}
	checkReplySource(t, l, server, sif)
	if err := client.Do(func() error { return Apply(l) }); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	checkApplied(t, client, cif, l)

	// The site option instead of option 7: asked for in the parameter
	// request list (dnsmasq sends a non-standard option only when asked).
	l, err = dhcpIn(ctx, client, cif, WithLogServerOption(224))
	if err != nil {
		t.Fatalf("DHCP with option 224: %v\ndnsmasq:\n%s", err, out.String())
	}
	if len(l.LogServers) != 1 || !l.LogServers[0].Equal(ip4("10.7.0.77")) || l.LogServerOption != 224 {
		t.Errorf("log servers %v from option %d, want [10.7.0.77] from option 224", l.LogServers, l.LogServerOption)
	}
}

// TestNetnsFirstLease: three NICs, the first without carrier, the second on
// a network without a DHCP server, the third with one.
func TestNetnsFirstLease(t *testing.T) {
	client := netnstest.New(t)
	dead, silent, server := netnstest.New(t), netnstest.New(t), netnstest.New(t)
	c1, c2, c3 := netnstest.Ifname("lga"), netnstest.Ifname("lgb"), netnstest.Ifname("lgc")
	netnstest.Veth(t, client, c1, dead, "peer0")
	netnstest.Veth(t, client, c2, silent, "peer0")
	netnstest.Veth(t, client, c3, server, "peer0")
	if err := dead.NL.LinkSetDown(dead.Link(t, "peer0")); err != nil { // c1 loses carrier
		t.Fatal(err)
	}
	server.Addr(t, "peer0", "10.7.0.1/24")
	s := newTestServer()
	serve(t, server, "peer0", s)

	// sysfs shows the initial namespace's interfaces, so the candidates'
	// sysfs entries are faked; carrier comes from netlink in the namespace.
	sys := fakeSysfs(t, map[string]string{c1: "", c2: "", c3: ""}, nil)
	b := Bringup{
		SysClassNet: sys,
		CarrierWait: 500 * time.Millisecond,
		Up:          func(n string) error { return client.Do(func() error { return Up(n) }) },
		Carrier:     client.Carrier,
		Logf:        t.Logf,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	t0 := time.Now()
	l, err := b.FirstLease(ctx, []string{c1, c2, c3}, func(ctx context.Context, ifname string) (*Lease, error) {
		return dhcpIn(ctx, client, ifname, WithLogf(t.Logf))
	})
	if err != nil {
		t.Fatalf("FirstLease: %v", err)
	}
	t.Logf("FirstLease after %v: %s", time.Since(t0).Round(time.Millisecond), l)
	if l.Interface != c3 || !l.Address.IP.Equal(ip4("10.7.0.50")) {
		t.Errorf("FirstLease = %s, want 10.7.0.50 on %s", l, c3)
	}
	if time.Since(t0) > 5*time.Second {
		t.Errorf("FirstLease took %v", time.Since(t0))
	}

	// The NIC without carrier alone: a clear error after the carrier wait.
	t0 = time.Now()
	_, err = b.FirstLease(ctx, []string{c1}, func(ctx context.Context, ifname string) (*Lease, error) {
		t.Errorf("DHCP started on %s without carrier", ifname)
		return nil, ErrNoLease
	})
	if !errors.Is(err, ErrNoCarrier) {
		t.Errorf("FirstLease(no carrier) = %v, want ErrNoCarrier", err)
	}
	if d := time.Since(t0); d > time.Second {
		t.Errorf("FirstLease(no carrier) took %v with a 500ms carrier wait", d)
	}
}

type logWriter struct {
	b *logBuf
	t *testing.T
}

func (w logWriter) Write(p []byte) (int, error) {
	w.b.mu.Lock()
	w.b.b.Write(p)
	w.b.mu.Unlock()
	return len(p), nil
}

// TestNetnsApplyStatic applies an ip= configuration whose gateway lies
// outside its /32 subnet: the default route needs the onlink flag.
func TestNetnsApplyStatic(t *testing.T) {
	client, cif, _, _ := pair(t)
	c, err := ParseIPArg("10.9.0.5::192.168.77.1:255.255.255.255:box:" + cif + ":off")
	if err != nil {
		t.Fatal(err)
	}
	if c.Method != IPStatic {
		t.Fatalf("ParseIPArg: %v, want static", c.Method)
	}
	if err := client.Do(func() error { return Apply(c.Static) }); err != nil {
		t.Fatalf("Apply(%s): %v", c.Static, err)
	}
	checkApplied(t, client, cif, c.Static)
}
