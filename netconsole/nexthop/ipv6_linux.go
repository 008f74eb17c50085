package nexthop

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/mdlayher/ndp"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// GlobalIPv6 returns a usable global-scope IPv6 address of ifname: neither
// tentative (duplicate address detection still running) unless optimistic
// (RFC 4429: usable while DAD runs), nor failed DAD, nor deprecated; false
// if there is none yet.
func GlobalIPv6(ifname string) (netip.Prefix, bool, error) {
	l, err := netlink.LinkByName(ifname)
	if err != nil {
		return netip.Prefix{}, false, fmt.Errorf("nexthop: link %s: %w", ifname, err)
	}
	addrs, err := netlink.AddrList(l, netlink.FAMILY_V6)
	if errors.Is(err, netlink.ErrDumpInterrupted) {
		// The address list changed during the dump (SLAAC or DAD at
		// work): the answer is "not yet"; WaitGlobalIPv6 asks again.
		return netip.Prefix{}, false, nil
	}
	if err != nil {
		return netip.Prefix{}, false, fmt.Errorf("nexthop: addresses of %s: %w", ifname, err)
	}
	for _, a := range addrs {
		if a.Scope != unix.RT_SCOPE_UNIVERSE || !usable(a.Flags) {
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

// usable reports whether an IPv6 address with these IFA_F_* flags may be
// used as a source: not failed or deprecated, and either done with DAD or
// optimistic.
func usable(flags int) bool {
	if flags&(unix.IFA_F_DADFAILED|unix.IFA_F_DEPRECATED) != 0 {
		return false
	}
	return flags&unix.IFA_F_TENTATIVE == 0 || flags&unix.IFA_F_OPTIMISTIC != 0
}

// SolicitRouters sends one router solicitation (RFC 4861 section 6.3.7) on
// ifi to all routers (ff02::2), so that the kernel's SLAAC gets its router
// advertisement without waiting for its own solicitation, which it sends
// only once the link-local address has finished duplicate address
// detection (a second or more after link up). The message carries no
// source link-layer address option: its source may be an optimistic or the
// unspecified address (RFC 4429 section 3.2), so routers answer to all
// nodes. The kernel processes the advertisement whoever solicited it.
func SolicitRouters(ifi *net.Interface) error {
	c, _, err := ndp.Listen(ifi, ndp.Unspecified)
	if err != nil {
		return fmt.Errorf("nexthop: ndp socket on %s: %w", ifi.Name, err)
	}
	defer c.Close()
	if err := c.WriteTo(&ndp.RouterSolicitation{}, nil, netip.IPv6LinkLocalAllRouters()); err != nil {
		return fmt.Errorf("nexthop: router solicitation on %s: %w", ifi.Name, err)
	}
	return nil
}
