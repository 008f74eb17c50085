package link

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"
	"github.com/vishvananda/netlink"
)

// ErrNoLease is returned when no DHCP server answered before the deadline.
var ErrNoLease = errors.New("no DHCP lease")

// Up sets the interface administratively up.
func Up(ifname string) error {
	l, err := netlink.LinkByName(ifname)
	if err != nil {
		return fmt.Errorf("link: %s: %w", ifname, err)
	}
	if err := netlink.LinkSetUp(l); err != nil {
		return fmt.Errorf("link: %s: set up: %w", ifname, err)
	}
	return nil
}

// DHCP runs one DHCPv4 exchange on ifname (a raw socket via nclient4) until
// ctx is done. It does not configure the interface; see Apply.
func DHCP(ctx context.Context, ifname string) (*Lease, error) {
	c, err := nclient4.New(ifname, nclient4.WithTimeout(time.Second), nclient4.WithRetry(1<<30))
	if err != nil {
		return nil, fmt.Errorf("link: %s: dhcp client: %w", ifname, err)
	}
	defer c.Close()
	lease, err := c.Request(ctx, dhcpv4.WithOption(dhcpv4.OptParameterRequestList(
		dhcpv4.OptionSubnetMask, dhcpv4.OptionRouter, dhcpv4.OptionLogServer, dhcpv4.OptionHostName)))
	if err != nil {
		if ctx.Err() != nil || errors.Is(err, nclient4.ErrNoResponse) {
			return nil, fmt.Errorf("link: %s: %w: %v", ifname, ErrNoLease, err)
		}
		return nil, fmt.Errorf("link: %s: dhcp: %w", ifname, err)
	}
	return FromACK(ifname, lease.ACK)
}

// FromACK extracts a Lease from a DHCPACK, validating what it uses.
func FromACK(ifname string, ack *dhcpv4.DHCPv4) (*Lease, error) {
	if ack == nil || ack.MessageType() != dhcpv4.MessageTypeAck {
		return nil, fmt.Errorf("link: %s: not a DHCPACK", ifname)
	}
	ip := ack.YourIPAddr.To4()
	if ip == nil || ip.IsUnspecified() || ip.IsMulticast() || ip.Equal(net.IPv4bcast) {
		return nil, fmt.Errorf("link: %s: DHCPACK with unusable address %v", ifname, ack.YourIPAddr)
	}
	mask := ack.SubnetMask()
	if mask == nil {
		mask = ip.DefaultMask()
	}
	if ones, bits := mask.Size(); bits != 32 || ones == 0 {
		return nil, fmt.Errorf("link: %s: DHCPACK with invalid subnet mask %v", ifname, net.IP(mask))
	}
	l := &Lease{
		Interface:  ifname,
		Address:    net.IPNet{IP: ip, Mask: mask},
		ServerID:   ack.ServerIdentifier(),
		LogServers: dhcpv4.GetIPs(dhcpv4.OptionLogServer, ack.Options),
		Hostname:   ack.HostName(),
		Duration:   ack.IPAddressLeaseTime(0),
	}
	if r := ack.Router(); len(r) > 0 && r[0].To4() != nil {
		l.Router = r[0].To4()
	}
	return l, nil
}

// Apply puts the lease's address on the interface and, if the lease names a
// router, a default route through it.
func Apply(l *Lease) error {
	link, err := netlink.LinkByName(l.Interface)
	if err != nil {
		return fmt.Errorf("link: %s: %w", l.Interface, err)
	}
	addr := &netlink.Addr{IPNet: &l.Address}
	if err := netlink.AddrReplace(link, addr); err != nil {
		return fmt.Errorf("link: %s: add address %s: %w", l.Interface, l.Address.String(), err)
	}
	if l.Router != nil {
		r := &netlink.Route{LinkIndex: link.Attrs().Index, Gw: l.Router}
		if err := netlink.RouteReplace(r); err != nil {
			return fmt.Errorf("link: %s: default route via %v: %w", l.Interface, l.Router, err)
		}
	}
	return nil
}
