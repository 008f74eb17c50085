package link

import (
	"encoding/binary"
	"fmt"
	"github.com/lastgasp/lastgasp/netconsole/ipconf"
	"net"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

// minMTU is the smallest MTU RFC 2132 (option 26) allows.
const minMTU = 68

// FromACK extracts a Lease from a DHCPACK, validating every option it uses:
// the offered address, the subnet mask (1), routers (3), classless static
// routes (121, RFC 3442), the interface MTU (26), log servers (7), DNS (6)
// and NTP (42) servers. A malformed option the lease depends on (mask, routes,
// MTU) is an error; unusable addresses in informational lists are dropped.
//
// With classless static routes present the router option is ignored, as
// RFC 3442 requires, and Router is the gateway of the 0/0 route, if any.
func FromACK(ifname string, ack *dhcpv4.DHCPv4) (*Lease, error) {
	if ack == nil || ack.MessageType() != dhcpv4.MessageTypeAck {
		return nil, fmt.Errorf("link: %s: not a DHCPACK", ifname)
	}
	ip := ack.YourIPAddr.To4()
	if !usableUnicast(ip) {
		return nil, fmt.Errorf("link: %s: DHCPACK with unusable address %v", ifname, ack.YourIPAddr)
	}
	mask := ip.DefaultMask()
	if v := ack.Options.Get(dhcpv4.OptionSubnetMask); v != nil {
		if len(v) != net.IPv4len {
			return nil, fmt.Errorf("link: %s: DHCPACK option 1 (subnet mask): length %d, want 4", ifname, len(v))
		}
		mask = net.IPMask(append([]byte(nil), v...))
	}
	if ones, bits := mask.Size(); bits != 32 || ones == 0 {
		return nil, fmt.Errorf("link: %s: DHCPACK with invalid subnet mask %v", ifname, net.IP(mask))
	}
	l := &Lease{
		Interface:       ifname,
		Address:         net.IPNet{IP: ip, Mask: mask},
		ServerID:        ack.ServerIdentifier().To4(),
		LogServers:      usableIPs(ack.Options.Get(dhcpv4.OptionLogServer)),
		LogServerOption: uint8(dhcpv4.OptionLogServer.Code()),
		DNS:             usableIPs(ack.Options.Get(dhcpv4.OptionDomainNameServer)),
		NTP:             usableIPs(ack.Options.Get(dhcpv4.OptionNTPServers)),
		Hostname:        ack.HostName(),
		Duration:        ack.IPAddressLeaseTime(0),
	}
	if v := ack.Options.Get(dhcpv4.OptionClasslessStaticRoute); v != nil {
		routes, err := ParseClasslessRoutes(v)
		if err != nil {
			return nil, fmt.Errorf("link: %s: DHCPACK option 121 (classless static routes): %w", ifname, err)
		}
		l.Routes = routes
		for _, r := range routes {
			if ones, _ := r.Dest.Mask.Size(); ones == 0 && !r.OnLink() {
				l.Router = r.Gateway
				break
			}
		}
	} else if rs := usableIPs(ack.Options.Get(dhcpv4.OptionRouter)); len(rs) > 0 {
		l.Router = rs[0]
	}
	if v := ack.Options.Get(dhcpv4.OptionInterfaceMTU); v != nil {
		if len(v) != 2 {
			return nil, fmt.Errorf("link: %s: DHCPACK option 26 (interface MTU): length %d, want 2", ifname, len(v))
		}
		mtu := int(binary.BigEndian.Uint16(v))
		if mtu < minMTU {
			return nil, fmt.Errorf("link: %s: DHCPACK option 26 (interface MTU): %d is below %d", ifname, mtu, minMTU)
		}
		l.MTU = mtu
	}
	return l, nil
}

// SiteLogServers replaces l's log servers with those of option code in
// ack, a site-specific option (RFC 2132 section 2: codes 128-254) that
// carries IPv4 addresses the way option 7 does. A network whose option 7
// names syslog servers (UDP 514, not netconsole receivers) can point
// lastgasp elsewhere this way. A value that is not a list of addresses is
// an error; no option at all leaves no log servers.
func SiteLogServers(l *Lease, ack *dhcpv4.DHCPv4, code uint8) error {
	l.LogServers, l.LogServerOption = nil, code
	v := ack.Options.Get(dhcpv4.GenericOptionCode(code))
	if v == nil {
		return nil
	}
	if len(v) == 0 || len(v)%net.IPv4len != 0 {
		return fmt.Errorf("link: %s: DHCPACK option %d (site log servers): length %d, want a multiple of 4", l.Interface, code, len(v))
	}
	l.LogServers = usableIPs(v)
	return nil
}

// ParseClasslessRoutes decodes the value of DHCP option 121 (RFC 3442): a
// sequence of <prefix length><significant destination octets><gateway>.
// Host bits a server set in the destination are cleared; a gateway of
// 0.0.0.0 means on-link (Route.Gateway nil).
func ParseClasslessRoutes(b []byte) ([]Route, error) {
	if len(b) == 0 {
		return nil, fmt.Errorf("empty option")
	}
	var out []Route
	for len(b) > 0 {
		ones := int(b[0])
		if ones > 32 {
			return nil, fmt.Errorf("route %d: prefix length %d > 32", len(out)+1, ones)
		}
		n := (ones + 7) / 8
		if len(b) < 1+n+4 {
			return nil, fmt.Errorf("route %d: truncated (%d bytes left, want %d)", len(out)+1, len(b), 1+n+4)
		}
		dst := make(net.IP, net.IPv4len)
		copy(dst, b[1:1+n])
		mask := net.CIDRMask(ones, 32)
		gw := net.IP(append([]byte(nil), b[1+n:1+n+4]...))
		b = b[1+n+4:]
		r := Route{Dest: net.IPNet{IP: dst.Mask(mask), Mask: mask}}
		if !gw.IsUnspecified() {
			if !usableUnicast(gw) {
				return nil, fmt.Errorf("route %d: %s: unusable gateway %v", len(out)+1, r.Dest.String(), gw)
			}
			r.Gateway = gw
		}
		out = append(out, r)
	}
	return out, nil
}

// usableIPs decodes a list of IPv4 addresses, dropping those no host can
// have; a value whose length is not a multiple of 4 yields nothing.
func usableIPs(v []byte) []net.IP {
	if len(v) == 0 || len(v)%4 != 0 {
		return nil
	}
	var out []net.IP
	for i := 0; i < len(v); i += 4 {
		ip := net.IP(append([]byte(nil), v[i:i+4]...))
		if usableUnicast(ip) {
			out = append(out, ip)
		}
	}
	return out
}

func usableUnicast(ip net.IP) bool { return ipconf.UsableUnicast(ip) }
