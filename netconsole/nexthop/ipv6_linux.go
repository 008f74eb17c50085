package nexthop

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/mdlayher/ndp"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// GlobalIPv6 returns a usable global-scope IPv6 address of ifname: neither
// tentative (duplicate address detection still running), nor failed DAD, nor
// deprecated; false if there is none yet.
func GlobalIPv6(ifname string) (netip.Prefix, bool, error) {
	l, err := netlink.LinkByName(ifname)
	if err != nil {
		return netip.Prefix{}, false, fmt.Errorf("nexthop: link %s: %w", ifname, err)
	}
	addrs, err := netlink.AddrList(l, netlink.FAMILY_V6)
	if err != nil {
		return netip.Prefix{}, false, fmt.Errorf("nexthop: addresses of %s: %w", ifname, err)
	}
	for _, a := range addrs {
		if a.Scope != unix.RT_SCOPE_UNIVERSE || a.Flags&(unix.IFA_F_TENTATIVE|unix.IFA_F_DADFAILED|unix.IFA_F_DEPRECATED) != 0 {
			continue
		}
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok || !ip.Is6() || ip.Is4In6() {
			continue
		}
		ones, _ := a.Mask.Size()
		return netip.PrefixFrom(ip, ones), true, nil
	}
	return netip.Prefix{}, false, nil
}

// WaitGlobalIPv6 polls GlobalIPv6 until ifname has such an address (the
// kernel configures it by itself from router advertisements, SLAAC) or ctx
// is done.
func WaitGlobalIPv6(ctx context.Context, ifname string) (netip.Prefix, error) {
	for {
		p, ok, err := GlobalIPv6(ifname)
		if err != nil {
			return netip.Prefix{}, err
		}
		if ok {
			return p, nil
		}
		select {
		case <-ctx.Done():
			return netip.Prefix{}, fmt.Errorf("nexthop: %s: no global IPv6 address (no router advertisement, or DAD not done): %w", ifname, ctx.Err())
		case <-time.After(25 * time.Millisecond):
		}
	}
}

// DialNDP opens an NDP connection on ifi for resolving via: bound to ifi's
// link-local address when via is link-local (a router's address), else to
// src (the source address the route lookup chose).
func DialNDP(ifi *net.Interface, src, via netip.Addr) (*ndp.Conn, error) {
	addr := ndp.Addr(src.WithZone("").String())
	if via.IsLinkLocalUnicast() || !src.IsValid() {
		addr = ndp.LinkLocal
	}
	c, _, err := ndp.Listen(ifi, addr)
	if err != nil {
		return nil, fmt.Errorf("nexthop: ndp socket on %s (%s): %w", ifi.Name, addr, err)
	}
	return c, nil
}
