package ipconf

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"
)

// Lease is the part of a DHCPv4 lease (or of a static configuration, see
// ParseIPArg) the agent uses. Nothing in it is ever written to a host file
// unless the caller asks link.Apply to (link.WithResolvConf).
type Lease struct {
	Interface  string
	Address    net.IPNet
	Router     net.IP // default gateway; with classless routes, the 0/0 route's gateway
	Routes     []Route
	MTU        int // 0: leave the interface's MTU alone
	ServerID   net.IP
	LogServers []net.IP // RFC 2132 option 7, or the site option of WithLogServerOption
	// LogServerOption is the DHCP option LogServers came from: 7, or the
	// site-specific code given to WithLogServerOption.
	LogServerOption uint8
	// LogServersErr says why a site log server option present in the ACK
	// was not used (malformed); LogServers is then empty. A bad option
	// never costs the lease.
	LogServersErr error
	DNS           []net.IP // informational; only written through WithResolvConf
	NTP           []net.IP
	Hostname      string
	Duration      time.Duration
	// ReplyFrom and ReplyMAC are the IPv4 and Ethernet source of the frame
	// that carried the ACK: the server, or the relay agent on this link.
	// When ReplyFrom is a receiver's next hop, ReplyMAC is its MAC without
	// an ARP exchange. Unset when unknown (a static address, a test conn).
	ReplyFrom netip.Addr
	ReplyMAC  net.HardwareAddr
}

// Route is one classless static route (RFC 3442, DHCP option 121). A nil or
// unspecified Gateway means the destination is on-link.
type Route struct {
	Dest    net.IPNet
	Gateway net.IP
}

// OnLink reports whether the route has no gateway.
func (r Route) OnLink() bool { return r.Gateway == nil || r.Gateway.IsUnspecified() }

func (r Route) String() string {
	if r.OnLink() {
		return r.Dest.String() + " on-link"
	}
	return r.Dest.String() + " via " + r.Gateway.String()
}

func (l *Lease) String() string {
	if l == nil {
		return "<no lease>"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s addr=%s router=%v server=%v lease=%v", l.Interface, l.Address.String(), l.Router, l.ServerID, l.Duration)
	if len(l.Routes) > 0 {
		rs := make([]string, len(l.Routes))
		for i, r := range l.Routes {
			rs[i] = r.String()
		}
		fmt.Fprintf(&b, " routes=[%s]", strings.Join(rs, ", "))
	}
	if l.MTU != 0 {
		fmt.Fprintf(&b, " mtu=%d", l.MTU)
	}
	if len(l.LogServers) > 0 {
		fmt.Fprintf(&b, " logservers=%v(option %d)", l.LogServers, l.LogServerOption)
	}
	if l.LogServersErr != nil {
		fmt.Fprintf(&b, " logservers_error=%q", l.LogServersErr.Error())
	}
	return b.String()
}

// UsableUnicast reports whether ip is an IPv4 address a host can have: not
// unspecified, multicast, broadcast or loopback.
func UsableUnicast(ip net.IP) bool {
	ip = ip.To4()
	return ip != nil && !ip.IsUnspecified() && !ip.IsMulticast() && !ip.Equal(net.IPv4bcast) && !ip.IsLoopback()
}
