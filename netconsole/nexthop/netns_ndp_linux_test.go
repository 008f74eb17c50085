package nexthop

// Neighbor discovery against real kernels, in network namespaces the test
// creates: two namespaces joined by a veth pair, IPv6 addresses added
// without duplicate address detection so they are usable at once.

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/lastgasp/lastgasp/netconsole/link/netnstest"
	"github.com/mdlayher/ndp"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// addr6 adds cidr to ifname in ns without DAD (IFA_F_NODAD).
func addr6(t *testing.T, ns *netnstest.NS, ifname, cidr string) {
	t.Helper()
	a, err := netlink.ParseAddr(cidr)
	if err != nil {
		t.Fatal(err)
	}
	a.Flags = unix.IFA_F_NODAD
	if err := ns.NL.AddrAdd(ns.Link(t, ifname), a); err != nil {
		t.Fatalf("%s add %s: %v", ifname, cidr, err)
	}
}

func dialNDPIn(t *testing.T, ns *netnstest.NS, h Hop) (*ndp.Conn, net.HardwareAddr) {
	t.Helper()
	var (
		c   *ndp.Conn
		mac net.HardwareAddr
	)
	if err := ns.Do(func() error {
		ifi, err := net.InterfaceByName(h.Dev)
		if err != nil {
			return err
		}
		mac = ifi.HardwareAddr
		c, err = DialNDP(ifi, h.Src, h.Via)
		return err
	}); err != nil {
		t.Fatalf("ndp socket on %s: %v", h.Dev, err)
	}
	t.Cleanup(func() { c.Close() })
	return c, mac
}

func TestNetnsNDPOnLink(t *testing.T) {
	client, recv := netnstest.New(t), netnstest.New(t)
	cif, rif := netnstest.Ifname("lgc"), netnstest.Ifname("lgr")
	netnstest.Veth(t, client, cif, recv, rif)
	addr6(t, client, cif, "fd00:9::2/64")
	addr6(t, recv, rif, "fd00:9::1/64")
	client.WaitCarrier(t, cif, 2*time.Second)

	var (
		g  netip.Prefix
		ok bool
	)
	if err := client.Do(func() (err error) { g, ok, err = GlobalIPv6(cif); return err }); err != nil || !ok || g.String() != "fd00:9::2/64" {
		t.Fatalf("GlobalIPv6(%s) = %v, %v, %v; want fd00:9::2/64", cif, g, ok, err)
	}
	h := lookupIn(t, client, "fd00:9::1")
	want := Hop{Receiver: netip.MustParseAddr("fd00:9::1"), Via: netip.MustParseAddr("fd00:9::1"), OnLink: true,
		Dev: cif, Src: netip.MustParseAddr("fd00:9::2")}
	if h != want {
		t.Fatalf("Lookup = %v, want %v", h, want)
	}
	c, src := dialNDPIn(t, client, h)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	t0 := time.Now()
	mac, err := Resolver{Retry: 100 * time.Millisecond, Logf: t.Logf}.ResolveNDP(ctx, c, src, h.Via)
	if err != nil {
		t.Fatalf("ResolveNDP(%s): %v", h.Via, err)
	}
	t.Logf("%s is at %s after %v", h.Via, mac, time.Since(t0).Round(time.Microsecond))
	if want := recv.MAC(t, rif); !bytes.Equal(mac, want) {
		t.Errorf("ResolveNDP = %v, want the receiver's %v", mac, want)
	}

	// Nobody has fd00:9::77: ErrNoAnswer within the deadline.
	ctx, cancel = context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	t0 = time.Now()
	if mac, err := (Resolver{Retry: 100 * time.Millisecond}).ResolveNDP(ctx, c, src, netip.MustParseAddr("fd00:9::77")); !errors.Is(err, ErrNoAnswer) {
		t.Errorf("ResolveNDP(fd00:9::77) = %v, %v; want ErrNoAnswer", mac, err)
	} else {
		t.Logf("silence: %v", err)
	}
	if d := time.Since(t0); d > 800*time.Millisecond {
		t.Errorf("ResolveNDP gave up after %v with a 500ms deadline", d)
	}
}

// TestNetnsNDPRouted: the receiver fd00:2::2 is behind a router whose
// address on the client's link is link-local, as routers announced by RAs
// are. The frames must carry the router's MAC.
func TestNetnsNDPRouted(t *testing.T) {
	client, router := netnstest.New(t), netnstest.New(t)
	cif, r1 := netnstest.Ifname("lgc"), netnstest.Ifname("lgr")
	netnstest.Veth(t, client, cif, router, r1)
	addr6(t, client, cif, "fd00:1::2/64")
	addr6(t, client, cif, "fe80::2/64")
	addr6(t, router, r1, "fe80::1/64")
	client.WaitCarrier(t, cif, 2*time.Second)
	l := client.Link(t, cif)
	_, dflt, _ := net.ParseCIDR("::/0")
	if err := client.NL.RouteAdd(&netlink.Route{LinkIndex: l.Attrs().Index, Dst: dflt, Gw: net.ParseIP("fe80::1")}); err != nil {
		t.Fatalf("default route: %v", err)
	}
	h := lookupIn(t, client, "fd00:2::2")
	if h.OnLink || h.Via != netip.MustParseAddr("fe80::1") || h.Dev != cif || h.Src != netip.MustParseAddr("fd00:1::2") {
		t.Fatalf("Lookup = %+v, want via fe80::1 dev %s src fd00:1::2", h, cif)
	}
	c, src := dialNDPIn(t, client, h)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	mac, err := Resolver{Retry: 100 * time.Millisecond, Logf: t.Logf}.ResolveNDP(ctx, c, src, h.Via)
	if err != nil {
		t.Fatalf("ResolveNDP(%s): %v", h.Via, err)
	}
	if want := router.MAC(t, r1); !bytes.Equal(mac, want) {
		t.Errorf("ResolveNDP = %v, want the router's %v", mac, want)
	}
}
