package nexthop

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
)

// Lookup asks the kernel's routing table how it would reach receiver
// (like `ip route get`).
func Lookup(receiver netip.Addr) (Hop, error) {
	routes, err := netlink.RouteGet(net.IP(receiver.AsSlice()))
	if err != nil {
		return Hop{}, fmt.Errorf("nexthop: route get %s: %w", receiver, err)
	}
	if len(routes) == 0 {
		return Hop{}, fmt.Errorf("nexthop: route get %s: no route", receiver)
	}
	r := routes[0]
	h := Hop{Receiver: receiver, Via: receiver, OnLink: true}
	if gw, ok := netip.AddrFromSlice(r.Gw); ok && r.Gw != nil {
		h.Via, h.OnLink = gw.Unmap(), false
	}
	if src, ok := netip.AddrFromSlice(r.Src); ok {
		h.Src = src.Unmap()
	}
	// The name from the standard library, not netlink.LinkByIndex, whose
	// reply parser runs nowhere else before netconsole is armed (code run
	// for the first time is what costs under TCG).
	l, err := net.InterfaceByIndex(r.LinkIndex)
	if err != nil {
		return Hop{}, fmt.Errorf("nexthop: route get %s: link %d: %w", receiver, r.LinkIndex, err)
	}
	h.Dev = l.Name
	return h, nil
}
