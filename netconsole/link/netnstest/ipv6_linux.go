package netnstest

// IPv6 helpers. Everything goes through the namespace's netlink handle: no
// sysctl is written, in this namespace or any other.

import (
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// LinkLocal replaces the kernel-generated IPv6 link-local address of ifname
// in n by addr (e.g. "fe80::1"), added without duplicate address detection
// so that sockets can use it at once. It takes the link down (which removes
// its IPv6 addresses), turns address generation off, adds addr/64 and sets
// the link up again.
func (n *NS) LinkLocal(t testing.TB, ifname, addr string) {
	t.Helper()
	ip := net.ParseIP(addr)
	if ip == nil || ip.To4() != nil || !ip.IsLinkLocalUnicast() {
		t.Fatalf("netnstest: %q is not an IPv6 link-local address", addr)
	}
	l := n.Link(t, ifname)
	if err := n.NL.LinkSetDown(l); err != nil {
		t.Fatalf("netnstest: %s down: %v", ifname, err)
	}
	if err := n.NL.LinkSetIP6AddrGenMode(l, nl.IN6_ADDR_GEN_MODE_NONE); err != nil {
		t.Fatalf("netnstest: %s addrgenmode none: %v", ifname, err)
	}
	n.AddrNoDAD(t, ifname, addr+"/64")
	if err := n.NL.LinkSetUp(l); err != nil {
		t.Fatalf("netnstest: %s up: %v", ifname, err)
	}
}

// AddrNoDAD adds cidr (e.g. "fd00:66::1/64") to ifname in n without
// duplicate address detection: it is usable at once.
func (n *NS) AddrNoDAD(t testing.TB, ifname, cidr string) {
	t.Helper()
	a, err := netlink.ParseAddr(cidr)
	if err != nil {
		t.Fatalf("netnstest: %v", err)
	}
	a.Flags = unix.IFA_F_NODAD
	if err := n.NL.AddrAdd(n.Link(t, ifname), a); err != nil {
		t.Fatalf("netnstest: %s add %s nodad: %v", ifname, cidr, err)
	}
}

// LinkLocalState returns ifname's first IPv6 link-local address in n and
// its IFA_F_* flags (tentative, dadfailed, ...); a nil address if it has
// none yet.
func (n *NS) LinkLocalState(ifname string) (net.IP, int, error) {
	l, err := n.NL.LinkByName(ifname)
	if err != nil {
		return nil, 0, fmt.Errorf("netnstest: link %s: %w", ifname, err)
	}
	addrs, err := n.NL.AddrList(l, netlink.FAMILY_V6)
	if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
		return nil, 0, fmt.Errorf("netnstest: %s addresses: %w", ifname, err)
	}
	for _, a := range addrs {
		if a.IPNet != nil && a.IP.IsLinkLocalUnicast() {
			return a.IP, a.Flags, nil
		}
	}
	return nil, 0, nil
}

// WaitLinkLocal waits until ifname in n has an IPv6 link-local address that
// is no longer tentative, and returns it.
func (n *NS) WaitLinkLocal(t testing.TB, ifname string, wait time.Duration) net.IP {
	t.Helper()
	end := time.Now().Add(wait)
	for {
		ip, flags, err := n.LinkLocalState(ifname)
		if err != nil {
			t.Fatal(err)
		}
		if flags&unix.IFA_F_DADFAILED != 0 {
			t.Fatalf("netnstest: %s: link-local %s failed duplicate address detection", ifname, ip)
		}
		if ip != nil && flags&unix.IFA_F_TENTATIVE == 0 {
			return ip
		}
		if time.Now().After(end) {
			t.Fatalf("netnstest: %s: no usable link-local address after %v (have %v, flags %#x)", ifname, wait, ip, flags)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// WaitOperUp waits until ifname in n is operationally up. The kernel's link
// watcher, which sets that state, also attaches the interface's queueing
// discipline, and may do so up to a second after a carrier change: frames
// sent before are dropped. Tests that must not lose their first packet
// after taking a link down and up wait for this.
func (n *NS) WaitOperUp(t testing.TB, ifname string, wait time.Duration) {
	t.Helper()
	end := time.Now().Add(wait)
	for {
		l := n.Link(t, ifname)
		if l.Attrs().OperState == netlink.OperUp {
			return
		}
		if time.Now().After(end) {
			t.Fatalf("netnstest: %s: operational state %v after %v", ifname, l.Attrs().OperState, wait)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Neighbor adds a permanent neighbor entry to ifname in n: ip is at mac.
func (n *NS) Neighbor(t testing.TB, ifname, ip string, mac net.HardwareAddr) {
	t.Helper()
	addr := net.ParseIP(ip)
	if addr == nil {
		t.Fatalf("netnstest: bad address %q", ip)
	}
	family := netlink.FAMILY_V6
	if addr.To4() != nil {
		family = netlink.FAMILY_V4
	}
	nb := &netlink.Neigh{LinkIndex: n.Link(t, ifname).Attrs().Index, Family: family,
		State: netlink.NUD_PERMANENT, IP: addr, HardwareAddr: mac}
	if err := n.NL.NeighSet(nb); err != nil {
		t.Fatalf("netnstest: %s neighbor %s at %s: %v", ifname, ip, mac, err)
	}
}
