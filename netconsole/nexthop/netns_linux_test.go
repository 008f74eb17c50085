package nexthop

// ARP and route lookups against real kernels' network stacks, in network
// namespaces the test creates (the kernel does not answer ARP from its own
// address within one namespace, so every test uses at least two).

import (
	"bytes"
	"context"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/lastgasp/lastgasp/netconsole/link/netnstest"
	"github.com/mdlayher/arp"
	"github.com/vishvananda/netlink"
)

// dialIn opens an ARP client on ifname inside ns; the socket stays bound to
// ns when used from any thread.
func dialIn(t *testing.T, ns *netnstest.NS, ifname string) *arp.Client {
	t.Helper()
	var c *arp.Client
	if err := ns.Do(func() error {
		ifi, err := net.InterfaceByName(ifname)
		if err != nil {
			return err
		}
		c, err = arp.Dial(ifi)
		return err
	}); err != nil {
		t.Fatalf("arp socket on %s: %v", ifname, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func lookupIn(t *testing.T, ns *netnstest.NS, ip string) Hop {
	t.Helper()
	var h Hop
	if err := ns.Do(func() (err error) {
		h, err = Lookup(netip.MustParseAddr(ip))
		return err
	}); err != nil {
		t.Fatalf("Lookup(%s): %v", ip, err)
	}
	return h
}

func TestNetnsOnLink(t *testing.T) {
	client, recv := netnstest.New(t), netnstest.New(t)
	cif, rif := netnstest.Ifname("lgc"), netnstest.Ifname("lgr")
	netnstest.Veth(t, client, cif, recv, rif)
	client.Addr(t, cif, "10.9.0.2/24")
	recv.Addr(t, rif, "10.9.0.1/24")

	h := lookupIn(t, client, "10.9.0.1")
	want := Hop{Receiver: netip.MustParseAddr("10.9.0.1"), Via: netip.MustParseAddr("10.9.0.1"), OnLink: true,
		Dev: cif, Src: netip.MustParseAddr("10.9.0.2")}
	if h != want {
		t.Fatalf("Lookup = %v, want %v", h, want)
	}
	c := dialIn(t, client, cif)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	t0 := time.Now()
	mac, err := Resolver{Retry: 100 * time.Millisecond, Logf: t.Logf}.Resolve(ctx, c, h.Via)
	if err != nil {
		t.Fatalf("Resolve(%s): %v", h.Via, err)
	}
	t.Logf("%s is at %s after %v", h.Via, mac, time.Since(t0).Round(time.Microsecond))
	if want := recv.MAC(t, rif); !bytes.Equal(mac, want) {
		t.Errorf("Resolve = %v, want the receiver's %v", mac, want)
	}

	// Nobody has 10.9.0.77: ErrNoAnswer within the deadline.
	ctx, cancel = context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	t0 = time.Now()
	if mac, err := Resolve(ctx, c, netip.MustParseAddr("10.9.0.77"), 100*time.Millisecond); err == nil {
		t.Errorf("Resolve(10.9.0.77) = %v, want ErrNoAnswer", mac)
	}
	if d := time.Since(t0); d > 800*time.Millisecond {
		t.Errorf("Resolve gave up after %v with a 500ms deadline", d)
	}
}

// TestNetnsRouted: client 10.1.0.2/24 with a default route via the router
// 10.1.0.1, receiver 10.2.0.2 behind it. The frames must carry the router's
// MAC on the client's link.
func TestNetnsRouted(t *testing.T) {
	client, router, recv := netnstest.New(t), netnstest.New(t), netnstest.New(t)
	cif, r1, r2, rif := netnstest.Ifname("lgc"), netnstest.Ifname("lgr"), netnstest.Ifname("lgr"), netnstest.Ifname("lgd")
	netnstest.Veth(t, client, cif, router, r1)
	netnstest.Veth(t, router, r2, recv, rif)
	client.Addr(t, cif, "10.1.0.2/24")
	router.Addr(t, r1, "10.1.0.1/24")
	router.Addr(t, r2, "10.2.0.1/24")
	recv.Addr(t, rif, "10.2.0.2/24")
	client.DefaultRoute(t, "10.1.0.1")
	recv.DefaultRoute(t, "10.2.0.1")

	h := lookupIn(t, client, "10.2.0.2")
	want := Hop{Receiver: netip.MustParseAddr("10.2.0.2"), Via: netip.MustParseAddr("10.1.0.1"), OnLink: false,
		Dev: cif, Src: netip.MustParseAddr("10.1.0.2")}
	if h != want {
		t.Fatalf("Lookup = %v, want %v", h, want)
	}
	c := dialIn(t, client, cif)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	mac, err := Resolve(ctx, c, h.Via, 100*time.Millisecond)
	if err != nil {
		t.Fatalf("Resolve(%s): %v", h.Via, err)
	}
	if want := router.MAC(t, r1); !bytes.Equal(mac, want) {
		t.Errorf("Resolve = %v, want the router's %v (receiver's is %v)", mac, want, recv.MAC(t, rif))
	}
}

// TestNetnsConflict: two hosts on one bridge both claim 10.3.0.1.
func TestNetnsConflict(t *testing.T) {
	client, sw, h1, h2 := netnstest.New(t), netnstest.New(t), netnstest.New(t), netnstest.New(t)
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "br0"}}
	if err := sw.NL.LinkAdd(br); err != nil {
		t.Fatalf("bridge: %v", err)
	}
	sw.LinkUp(t, "br0")
	cif, if1, if2 := netnstest.Ifname("lgc"), netnstest.Ifname("lgh"), netnstest.Ifname("lgh")
	for i, p := range []struct {
		ns *netnstest.NS
		n  string
	}{{client, cif}, {h1, if1}, {h2, if2}} {
		port := []string{"p0", "p1", "p2"}[i]
		netnstest.Veth(t, p.ns, p.n, sw, port)
		if err := sw.NL.LinkSetMaster(sw.Link(t, port), br); err != nil {
			t.Fatalf("enslave %s: %v", port, err)
		}
	}
	client.Addr(t, cif, "10.3.0.2/24")
	h1.Addr(t, if1, "10.3.0.1/24")
	h2.Addr(t, if2, "10.3.0.1/24")
	// Give the bridge ports time to reach forwarding (no STP: immediate).
	client.WaitCarrier(t, cif, 2*time.Second)

	c := dialIn(t, client, cif)
	var (
		mu        sync.Mutex
		conflicts [][2]net.HardwareAddr
	)
	r := Resolver{
		Retry:  100 * time.Millisecond,
		Linger: 300 * time.Millisecond,
		OnConflict: func(ip netip.Addr, first, other net.HardwareAddr) {
			mu.Lock()
			conflicts = append(conflicts, [2]net.HardwareAddr{first, other})
			mu.Unlock()
			t.Logf("conflict for %s: %s and %s", ip, first, other)
		},
		Logf: t.Logf,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	mac, err := r.Resolve(ctx, c, netip.MustParseAddr("10.3.0.1"))
	if err != nil {
		t.Fatalf("Resolve: %v", err)
	}
	m1, m2 := h1.MAC(t, if1), h2.MAC(t, if2)
	if !bytes.Equal(mac, m1) && !bytes.Equal(mac, m2) {
		t.Fatalf("Resolve = %v, want %v or %v", mac, m1, m2)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(conflicts) != 1 {
		t.Fatalf("%d conflicts reported, want 1", len(conflicts))
	}
	got := conflicts[0]
	if !bytes.Equal(got[0], mac) || (!bytes.Equal(got[1], m1) && !bytes.Equal(got[1], m2)) || bytes.Equal(got[0], got[1]) {
		t.Errorf("conflict %v, want %v and the other of %v/%v", got, mac, m1, m2)
	}
}
