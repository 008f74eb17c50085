package link

// DHCPv6 against real network stacks: an in-process server6 and dnsmasq, in
// network namespaces the tests create (netnstest), joined by veth pairs. The
// initial namespace is never touched, no sysctl is written anywhere, and no
// file outside t.TempDir() is written. The loopback tests at the top need
// no privileges.

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/insomniacslk/dhcp/dhcpv6/server6"
	"github.com/insomniacslk/dhcp/iana"
	"github.com/lastgasp/lastgasp/netconsole/link/netnstest"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// testServer6 is a small scripted DHCPv6 server for server6: it offers one
// address in an IA_NA, the log server option when asked for it, and can
// ignore the first Solicits, refuse to offer (NoAddrsAvail), refuse the
// first Requests or send a malformed log server option first.
type testServer6 struct {
	id         dhcpv6.DUID
	addr       net.IP
	logServers []byte // testLogCode6's value, sent when asked for
	dns        []net.IP

	mu           sync.Mutex
	dropSolicits int  // ignore this many Solicits
	refuse       bool // Advertise NoAddrsAvail
	replyNoAddrs int  // answer this many Requests with NoAddrsAvail
	badLogs      int  // send this many Replies with a malformed log server option
	seen         []string
	unasked      int // messages whose ORO lacked testLogCode6
}

func newTestServer6() *testServer6 {
	return &testServer6{
		id:         testServerID6,
		addr:       net.ParseIP("fd00:66::150"),
		logServers: netip.MustParseAddr("fd00:66::1").AsSlice(),
		dns:        []net.IP{net.ParseIP("fd00:66::53")},
	}
}

func (s *testServer6) handle(conn net.PacketConn, peer net.Addr, d dhcpv6.DHCPv6) {
	m, ok := d.(*dhcpv6.Message)
	if !ok {
		return
	}
	s.mu.Lock()
	s.seen = append(s.seen, m.MessageType.String())
	if !m.IsOptionRequested(testLogCode6) {
		s.unasked++
	}
	ia := m.Options.OneIANA()
	if ia == nil {
		s.mu.Unlock()
		return
	}
	mods := []dhcpv6.Modifier{dhcpv6.WithServerID(s.id)}
	noAddrs := dhcpv6.WithOption(&dhcpv6.OptStatusCode{StatusCode: iana.StatusNoAddrsAvail, StatusMessage: "no addresses for you"})
	offer := dhcpv6.WithOption(&dhcpv6.OptIANA{IaId: ia.IaId, T1: 30 * time.Minute, T2: 48 * time.Minute,
		Options: dhcpv6.IdentityOptions{Options: dhcpv6.Options{&dhcpv6.OptIAAddress{
			IPv6Addr: s.addr, PreferredLifetime: 30 * time.Minute, ValidLifetime: time.Hour}}}})
	logs := s.logServers
	var (
		reply *dhcpv6.Message
		err   error
	)
	switch m.MessageType {
	case dhcpv6.MessageTypeSolicit:
		switch {
		case s.dropSolicits > 0:
			s.dropSolicits--
			s.mu.Unlock()
			return
		case s.refuse:
			mods = append(mods, noAddrs)
		default:
			mods = append(mods, offer)
		}
		s.mu.Unlock()
		reply, err = dhcpv6.NewAdvertiseFromSolicit(m, mods...)
	case dhcpv6.MessageTypeRequest:
		switch {
		case s.replyNoAddrs > 0:
			s.replyNoAddrs--
			mods = append(mods, noAddrs)
		default:
			mods = append(mods, offer)
			if s.badLogs > 0 {
				s.badLogs--
				logs = []byte{10, 7, 0, 9}
			}
		}
		s.mu.Unlock()
		reply, err = dhcpv6.NewReplyFromMessage(m, mods...)
	default:
		s.mu.Unlock()
		return
	}
	if err != nil {
		return
	}
	if m.IsOptionRequested(testLogCode6) && logs != nil {
		reply.AddOption(&dhcpv6.OptionGeneric{OptionCode: testLogCode6, OptionData: logs})
	}
	if s.dns != nil {
		reply.AddOption(dhcpv6.OptDNS(s.dns...))
	}
	conn.WriteTo(reply.ToBytes(), peer)
}

func (s *testServer6) messages() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.seen, ",")
}

func (s *testServer6) checkAsked(t *testing.T) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.unasked > 0 {
		t.Errorf("%d of the client's messages did not ask for option %d", s.unasked, testLogCode6)
	}
}

// loopbackDHCPv6 runs s on [::1] and returns DHCPv6 options that make the
// client talk to it over another loopback socket (no privileges needed).
func loopbackDHCPv6(t *testing.T, s *testServer6) []DHCPv6Option {
	t.Helper()
	sc, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6loopback})
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	srv, err := server6.NewServer("", nil, s.handle, server6.WithConn(sc))
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve()
	t.Cleanup(func() { srv.Close() })
	cc, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6loopback})
	if err != nil {
		t.Fatal(err)
	}
	return []DHCPv6Option{withConn6(cc, testHW6, sc.LocalAddr().(*net.UDPAddr)), WithLogServerOption6(testLogCode6)}
}

func TestDHCPv6Loopback(t *testing.T) {
	for _, tc := range []struct {
		name     string
		setup    func(*testServer6)
		wantMsgs string
		wantLog  string
	}{
		{name: "plain", wantMsgs: "SOLICIT,REQUEST", wantLog: "REPLY"},
		{name: "first solicit lost", setup: func(s *testServer6) { s.dropSolicits = 1 }, wantMsgs: "SOLICIT,SOLICIT,REQUEST", wantLog: "no Advertise within"},
		{name: "reply NoAddrsAvail", setup: func(s *testServer6) { s.replyNoAddrs = 1 }, wantMsgs: "SOLICIT,REQUEST,SOLICIT,REQUEST", wantLog: `NoAddrsAvail ("no addresses for you"); soliciting again`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newTestServer6()
			if tc.setup != nil {
				tc.setup(s)
			}
			var logs logBuf
			opts := append(loopbackDHCPv6(t, s), WithBackoff6(100*time.Millisecond, 400*time.Millisecond), WithLogf6(logs.logf(t)))
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			l, err := DHCPv6(ctx, "lo-test", opts...)
			if err != nil {
				t.Fatalf("DHCPv6: %v", err)
			}
			want := &Lease6{Interface: "lo-test", Address: netip.MustParseAddr("fd00:66::150"), Preferred: 30 * time.Minute, Valid: time.Hour,
				ServerID: testServerStr6, LogServers: addrs6("fd00:66::1"), DNS: addrs6("fd00:66::53")}
			if diff := cmp.Diff(want, l, cmpAddr); diff != "" {
				t.Errorf("DHCPv6 lease (-want +got):\n%s", diff)
			}
			if got := s.messages(); got != tc.wantMsgs {
				t.Errorf("server saw %s, want %s", got, tc.wantMsgs)
			}
			s.checkAsked(t)
			if !strings.Contains(logs.String(), tc.wantLog) {
				t.Errorf("log does not mention %q:\n%s", tc.wantLog, logs.String())
			}
		})
	}
}

func TestDHCPv6LoopbackFailsWell(t *testing.T) {
	const deadline = 800 * time.Millisecond
	for _, tc := range []struct {
		name     string
		setup    func(*testServer6)
		wantErr  string
		solicits [2]int        // how many Solicits, at least and at most
		within   time.Duration // DHCPv6 must return this early
	}{
		{name: "silent", setup: func(s *testServer6) { s.dropSolicits = 1 << 30 }, wantErr: "no Advertise", solicits: [2]int{2, 12}, within: deadline + 200*time.Millisecond},
		{name: "NoAddrsAvail advertised", setup: func(s *testServer6) { s.refuse = true }, wantErr: `no address offered: server ` + testServerStr6 + `: NoAddrsAvail ("no addresses for you")`, solicits: [2]int{1, 1}, within: 300 * time.Millisecond},
		{name: "only NoAddrsAvail replies", setup: func(s *testServer6) { s.replyNoAddrs = 1 << 30 }, wantErr: "NoAddrsAvail", solicits: [2]int{2, 12}, within: deadline + 200*time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newTestServer6()
			tc.setup(s)
			opts := append(loopbackDHCPv6(t, s), WithBackoff6(50*time.Millisecond, 200*time.Millisecond), WithLogf6(t.Logf))
			ctx, cancel := context.WithTimeout(context.Background(), deadline)
			defer cancel()
			t0 := time.Now()
			l, err := DHCPv6(ctx, "lo-test", opts...)
			took := time.Since(t0)
			if !errors.Is(err, ErrNoLease) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("DHCPv6 = %v, %v; want ErrNoLease mentioning %q", l, err, tc.wantErr)
			}
			if took > tc.within {
				t.Errorf("DHCPv6 returned after %v, want within %v (deadline %v)", took, tc.within, deadline)
			}
			t.Logf("error after %v: %v", took.Round(time.Millisecond), err)
			if n := strings.Count(s.messages(), "SOLICIT"); n < tc.solicits[0] || n > tc.solicits[1] {
				t.Errorf("%d Solicits in %v, want between %d and %d", n, took, tc.solicits[0], tc.solicits[1])
			}
		})
	}
}

func TestApplyV6Rejects(t *testing.T) {
	for _, tc := range []struct {
		name string
		l    *Lease6
		want string
	}{
		{name: "nil", want: "no usable address"},
		{name: "no address", l: &Lease6{Interface: "eth0", Valid: time.Hour}, want: "no usable address"},
		{name: "multicast", l: &Lease6{Interface: "eth0", Address: netip.MustParseAddr("ff02::1"), Valid: time.Hour}, want: "no usable address"},
		{name: "valid 0", l: &Lease6{Interface: "eth0", Address: netip.MustParseAddr("fd00:66::150")}, want: "bad lifetimes"},
		{name: "preferred above valid", l: &Lease6{Interface: "eth0", Address: netip.MustParseAddr("fd00:66::150"), Preferred: 2 * time.Hour, Valid: time.Hour}, want: "bad lifetimes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := ApplyV6(tc.l); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ApplyV6(%v) = %v, want error mentioning %q", tc.l, err, tc.want)
			}
		})
	}
}

func TestSeconds6(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want uint32
	}{
		{0, 0}, {time.Second, 1}, {1500 * time.Millisecond, 2}, {time.Hour, 3600},
		{infinite6 - time.Second, 0xfffffffe}, {infinite6, 0xffffffff}, {1 << 62, 0xffffffff},
	} {
		if got := uint32(seconds6(tc.d)); got != tc.want {
			t.Errorf("seconds6(%v) = %d, want %d", tc.d, got, tc.want)
		}
	}
}

// pair6 makes a client and a server namespace joined by a veth pair. The
// server end has link-local fe80::1 and fd00:66::1/64, both usable at once
// (no duplicate address detection). With dad the client end keeps the
// kernel's link-local address, tentative for a second or so; without, it
// has fe80::2, usable at once, and the server knows its MAC. Both ends are
// operationally up, so that no test loses its first packet to the kernel's
// link watcher.
func pair6(t *testing.T, dad bool) (client *netnstest.NS, cif string, server *netnstest.NS, sif string) {
	t.Helper()
	client, server = netnstest.New(t), netnstest.New(t)
	cif, sif = netnstest.Ifname("lgc"), netnstest.Ifname("lgs")
	netnstest.Veth(t, client, cif, server, sif)
	server.LinkLocal(t, sif, "fe80::1")
	server.AddrNoDAD(t, sif, "fd00:66::1/64")
	if !dad {
		client.LinkLocal(t, cif, "fe80::2")
		// The kernel joins fe80::2's solicited-node group some time
		// after the link comes back up, and drops neighbor
		// solicitations for it until then; the server knowing the
		// client's MAC keeps its first answer from waiting a second
		// for a retransmitted solicitation. (With duplicate address
		// detection, as in real life, the group is joined before the
		// address is usable.)
		server.Neighbor(t, sif, "fe80::2", client.MAC(t, cif))
	}
	client.WaitOperUp(t, cif, 3*time.Second)
	server.WaitOperUp(t, sif, 3*time.Second)
	return client, cif, server, sif
}

// serve6 runs s with server6 on ifname inside ns.
func serve6(t *testing.T, ns *netnstest.NS, ifname string, s *testServer6) {
	t.Helper()
	var srv *server6.Server
	if err := ns.Do(func() (err error) {
		srv, err = server6.NewServer(ifname, nil, s.handle)
		return err
	}); err != nil {
		t.Fatalf("server6 in namespace: %v", err)
	}
	go srv.Serve()
	t.Cleanup(func() { srv.Close() })
}

// dhcpv6In runs DHCPv6 for ifname inside ns.
func dhcpv6In(ctx context.Context, ns *netnstest.NS, ifname string, opts ...DHCPv6Option) (*Lease6, error) {
	var l *Lease6
	err := ns.Do(func() (err error) {
		l, err = DHCPv6(ctx, ifname, opts...)
		return err
	})
	return l, err
}

func TestNetnsDHCPv6Server6(t *testing.T) {
	for _, tc := range []struct {
		name    string
		dad     bool
		setup   func(*testServer6)
		msgs    string
		wantLog []string
	}{
		{name: "lease", msgs: "SOLICIT,REQUEST"},
		{name: "tentative link-local", dad: true, msgs: "SOLICIT,REQUEST", wantLog: []string{"is tentative (duplicate address detection); waiting", "listening on [fe80::"}},
		{name: "NoAddrsAvail reply then lease", setup: func(s *testServer6) { s.replyNoAddrs = 1 }, msgs: "SOLICIT,REQUEST,SOLICIT,REQUEST", wantLog: []string{"NoAddrsAvail"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			client, cif, server, sif := pair6(t, tc.dad)
			s := newTestServer6()
			if tc.setup != nil {
				tc.setup(s)
			}
			serve6(t, server, sif, s)
			var logs logBuf
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			t0 := time.Now()
			l, err := dhcpv6In(ctx, client, cif, WithLogf6(logs.logf(t)), WithLogServerOption6(testLogCode6))
			if err != nil {
				t.Fatalf("DHCPv6: %v", err)
			}
			t.Logf("lease after %v: %s", time.Since(t0).Round(time.Millisecond), l)
			want := &Lease6{Interface: cif, Address: netip.MustParseAddr("fd00:66::150"), Preferred: 30 * time.Minute, Valid: time.Hour,
				ServerID: testServerStr6, LogServers: addrs6("fd00:66::1"), DNS: addrs6("fd00:66::53")}
			if diff := cmp.Diff(want, l, cmpAddr); diff != "" {
				t.Errorf("DHCPv6 lease (-want +got):\n%s", diff)
			}
			// A Solicit the client sent again after waiting out its
			// first Advertise (a loaded host) is a retransmission, not
			// a step: each must match a "no Advertise" line of the
			// client's.
			got, resent := collapseResent(s.messages())
			if got != tc.msgs {
				t.Errorf("server saw %s, want %s", s.messages(), tc.msgs)
			}
			if n := strings.Count(logs.String(), "no Advertise within"); n != resent {
				t.Errorf("server saw %d resent Solicits, the client timed out %d times:\n%s", resent, n, logs.String())
			}
			s.checkAsked(t)
			for _, w := range tc.wantLog {
				if !strings.Contains(logs.String(), w) {
					t.Errorf("log does not mention %q:\n%s", w, logs.String())
				}
			}
			applyV6In(t, client, l)
		})
	}
}

// collapseResent folds each run of identical messages ("SOLICIT,SOLICIT")
// into one and counts the repeats folded.
func collapseResent(msgs string) (string, int) {
	var out []string
	n := 0
	for _, m := range strings.Split(msgs, ",") {
		if len(out) > 0 && out[len(out)-1] == m {
			n++
			continue
		}
		out = append(out, m)
	}
	return strings.Join(out, ","), n
}

// applyV6In applies l in ns twice (the second time as a renewal would) and
// checks the address and its lifetimes.
func applyV6In(t *testing.T, ns *netnstest.NS, l *Lease6) {
	t.Helper()
	for i := 0; i < 2; i++ {
		if err := ns.Do(func() error { return ApplyV6(l) }); err != nil {
			t.Fatalf("ApplyV6 #%d: %v", i+1, err)
		}
	}
	addrs, err := ns.NL.AddrList(ns.Link(t, l.Interface), netlink.FAMILY_V6)
	if err != nil {
		t.Fatal(err)
	}
	found := 0
	for _, a := range addrs {
		if a.IP.Equal(l.Address.AsSlice()) {
			found++
			ones, _ := a.Mask.Size()
			if ones != 128 || a.ValidLft <= 0 || time.Duration(a.ValidLft)*time.Second > l.Valid ||
				a.PreferedLft <= 0 || time.Duration(a.PreferedLft)*time.Second > l.Preferred {
				t.Errorf("%s: %s/%d valid %ds preferred %ds; want /128, valid ≤ %v, preferred ≤ %v",
					l.Interface, a.IP, ones, a.ValidLft, a.PreferedLft, l.Valid, l.Preferred)
			}
		}
	}
	if found != 1 {
		t.Errorf("%s has %s %d times, want once: %v", l.Interface, l.Address, found, addrs)
	}
}

func TestNetnsDHCPv6Silent(t *testing.T) {
	client, cif, _, _ := pair6(t, false)
	const deadline = 1500 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	t0 := time.Now()
	l, err := dhcpv6In(ctx, client, cif, WithLogf6(t.Logf), WithBackoff6(200*time.Millisecond, time.Second))
	took := time.Since(t0)
	if !errors.Is(err, ErrNoLease) || !strings.Contains(err.Error(), "no Advertise") {
		t.Fatalf("DHCPv6 on a silent network = %v, %v; want ErrNoLease, no Advertise", l, err)
	}
	if took > deadline+300*time.Millisecond {
		t.Errorf("DHCPv6 gave up after %v with a %v deadline", took, deadline)
	}
	t.Logf("after %v: %v", took.Round(time.Millisecond), err)
}

func TestNetnsDHCPv6NoAddrsAvail(t *testing.T) {
	client, cif, server, sif := pair6(t, false)
	s := newTestServer6()
	s.refuse = true
	serve6(t, server, sif, s)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	t0 := time.Now()
	l, err := dhcpv6In(ctx, client, cif, WithLogf6(t.Logf))
	took := time.Since(t0)
	if !errors.Is(err, ErrNoLease) || !strings.Contains(err.Error(), "NoAddrsAvail") {
		t.Fatalf("DHCPv6 from a server without addresses = %v, %v; want ErrNoLease, NoAddrsAvail", l, err)
	}
	if took > 2*time.Second {
		t.Errorf("DHCPv6 gave up after %v, want it at once (one Solicit window)", took)
	}
	t.Logf("after %v: %v", took.Round(time.Millisecond), err)
}

// TestNetnsDHCPv6LinkLocalTaken: the server end already has the client's
// link-local address, so the client's duplicate address detection fails;
// DHCPv6 says so at once instead of waiting for the deadline.
func TestNetnsDHCPv6LinkLocalTaken(t *testing.T) {
	client, cif, server, sif := pair6(t, true)
	ll := client.WaitLinkLocal(t, cif, 5*time.Second)
	if err := client.NL.LinkSetDown(client.Link(t, cif)); err != nil { // drops ll
		t.Fatal(err)
	}
	server.AddrNoDAD(t, sif, ll.String()+"/64")
	client.LinkUp(t, cif)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	t0 := time.Now()
	l, err := dhcpv6In(ctx, client, cif, WithLogf6(t.Logf))
	took := time.Since(t0)
	if err == nil || errors.Is(err, ErrNoLease) || !strings.Contains(err.Error(), "failed duplicate address detection") {
		t.Fatalf("DHCPv6 with a duplicate link-local = %v, %v; want a duplicate address error", l, err)
	}
	if took > 5*time.Second {
		t.Errorf("DHCPv6 took %v to notice", took)
	}
	t.Logf("after %v: %v", took.Round(time.Millisecond), err)
	if _, flags, err := client.LinkLocalState(cif); err != nil || flags&unix.IFA_F_DADFAILED == 0 {
		t.Errorf("%s link-local flags %#x, %v; want dadfailed", cif, flags, err)
	}
}

// dnsmasq6 starts dnsmasq on ifname in ns with DHCPv6 options args.
func dnsmasq6(t *testing.T, ns *netnstest.NS, ifname string, args ...string) *logBuf {
	t.Helper()
	dnsmasq, err := exec.LookPath("dnsmasq")
	if err != nil {
		t.Skip("dnsmasq not installed (Debian: dnsmasq-base)")
	}
	cmd := exec.Command(dnsmasq, append([]string{"-d", "--no-resolv", "--no-hosts", "--leasefile-ro",
		"--pid-file=" + filepath.Join(t.TempDir(), "dnsmasq.pid"), "--conf-file=/dev/null", "--port=0",
		"--user=root", "--group=root", "--log-dhcp",
		"--interface=" + ifname, "--bind-interfaces", "--except-interface=lo"}, args...)...)
	var out logBuf
	w := logWriter{&out, t}
	cmd.Stdout, cmd.Stderr = w, w
	ns.Start(t, cmd)
	return &out
}

func TestNetnsDHCPv6Dnsmasq(t *testing.T) {
	client, cif, server, sif := pair6(t, false)
	out := dnsmasq6(t, server, sif,
		"--dhcp-range=fd00:66::100,fd00:66::1ff,64,1h",
		"--dhcp-option=option6:65001,[fd00:66::1]",
		"--dhcp-option=option6:dns-server,[fd00:66::53]")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	t0 := time.Now()
	l, err := dhcpv6In(ctx, client, cif, WithLogf6(t.Logf), WithLogServerOption6(testLogCode6))
	if err != nil {
		t.Fatalf("DHCPv6 from dnsmasq: %v\ndnsmasq:\n%s", err, out.String())
	}
	t.Logf("lease from dnsmasq after %v: %s", time.Since(t0).Round(time.Millisecond), l)
	lo, hi := netip.MustParseAddr("fd00:66::100"), netip.MustParseAddr("fd00:66::1ff")
	if l.Address.Less(lo) || hi.Less(l.Address) {
		t.Errorf("address %s outside dnsmasq's range %s-%s", l.Address, lo, hi)
	}
	if diff := cmp.Diff(addrs6("fd00:66::1"), l.LogServers, cmpAddr); diff != "" {
		t.Errorf("log servers (option 65001) (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(addrs6("fd00:66::53"), l.DNS, cmpAddr); diff != "" {
		t.Errorf("dns (-want +got):\n%s", diff)
	}
	if l.Valid != time.Hour || l.Preferred <= 0 || l.Preferred > l.Valid || !strings.HasPrefix(l.ServerID, "00:") {
		t.Errorf("lease %s: want valid 1h, 0 < preferred ≤ valid, a server DUID", l)
	}
	applyV6In(t, client, l)
}

// TestNetnsDHCPv6DnsmasqNoAddrs: dnsmasq with only a static range and no
// host for us refuses to offer an address.
func TestNetnsDHCPv6DnsmasqNoAddrs(t *testing.T) {
	client, cif, server, sif := pair6(t, false)
	out := dnsmasq6(t, server, sif, "--dhcp-range=fd00:66::,static,64,1h")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	t0 := time.Now()
	l, err := dhcpv6In(ctx, client, cif, WithLogf6(t.Logf))
	took := time.Since(t0)
	if !errors.Is(err, ErrNoLease) || !strings.Contains(err.Error(), "NoAddrsAvail") {
		t.Fatalf("DHCPv6 from dnsmasq without addresses = %v, %v; want ErrNoLease, NoAddrsAvail\ndnsmasq:\n%s", l, err, out.String())
	}
	if took > 2*time.Second {
		t.Errorf("DHCPv6 gave up after %v, want it at once (one Solicit window)", took)
	}
	t.Logf("after %v: %v", took.Round(time.Millisecond), err)
}

// TestDHCPv6LoopbackBadLogOption: a Reply whose log server option is
// malformed still gives the address, at the first exchange.
func TestDHCPv6LoopbackBadLogOption(t *testing.T) {
	s := newTestServer6()
	s.badLogs = 1 << 30
	opts := append(loopbackDHCPv6(t, s), WithBackoff6(100*time.Millisecond, 400*time.Millisecond), WithLogf6(t.Logf))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	l, err := DHCPv6(ctx, "lo-test", opts...)
	if err != nil {
		t.Fatalf("DHCPv6: %v", err)
	}
	if l.Address != netip.MustParseAddr("fd00:66::150") || len(l.LogServers) != 0 || !errors.Is(l.LogServersErr, ErrBadOption6) {
		t.Errorf("lease %s (log servers error %v): want fd00:66::150, no log servers, ErrBadOption6", l, l.LogServersErr)
	}
	if got := s.messages(); got != "SOLICIT,REQUEST" {
		t.Errorf("server saw %s, want SOLICIT,REQUEST", got)
	}
}

// TestNetnsDHCPv6InfoDnsmasq: stateless DHCPv6 (dnsmasq ra-stateless: SLAAC
// addresses, options by Information-request). DHCPv6 is refused; DHCPv6Info
// gets the log server option.
func TestNetnsDHCPv6InfoDnsmasq(t *testing.T) {
	client, cif, server, sif := pair6(t, false)
	out := dnsmasq6(t, server, sif,
		"--dhcp-range=fd00:66::,ra-stateless,64,1h",
		"--dhcp-option=option6:65001,[fd00:66::1]",
		"--dhcp-option=option6:dns-server,[fd00:66::53]")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if l, err := dhcpv6In(ctx, client, cif, WithLogf6(t.Logf)); !errors.Is(err, ErrNoLease) {
		t.Fatalf("DHCPv6 (Solicit) on a stateless network = %v, %v; want ErrNoLease\ndnsmasq:\n%s", l, err, out.String())
	}
	t0 := time.Now()
	var l *Lease6
	err := client.Do(func() (err error) {
		l, err = DHCPv6Info(ctx, cif, WithLogf6(t.Logf), WithLogServerOption6(testLogCode6))
		return err
	})
	if err != nil {
		t.Fatalf("DHCPv6Info from dnsmasq: %v\ndnsmasq:\n%s", err, out.String())
	}
	t.Logf("options from dnsmasq after %v: %s", time.Since(t0).Round(time.Millisecond), l)
	if l.Address.IsValid() || !strings.Contains(l.String(), "information only") {
		t.Errorf("info result %s has an address", l)
	}
	if diff := cmp.Diff(addrs6("fd00:66::1"), l.LogServers, cmpAddr); diff != "" {
		t.Errorf("log servers (option 65001) (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(addrs6("fd00:66::53"), l.DNS, cmpAddr); diff != "" {
		t.Errorf("dns (-want +got):\n%s", diff)
	}
}

// TestNetnsDHCPv6InfoSilent: nobody answers Information-requests: ErrNoLease
// within the deadline.
func TestNetnsDHCPv6InfoSilent(t *testing.T) {
	client, cif, _, _ := pair6(t, false)
	const deadline = 1500 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	t0 := time.Now()
	err := client.Do(func() error {
		_, err := DHCPv6Info(ctx, cif, WithBackoff6(100*time.Millisecond, 400*time.Millisecond))
		return err
	})
	if took := time.Since(t0); !errors.Is(err, ErrNoLease) || took > deadline+500*time.Millisecond {
		t.Fatalf("DHCPv6Info on a silent network = %v after %v; want ErrNoLease by the %v deadline", err, took, deadline)
	}
}
