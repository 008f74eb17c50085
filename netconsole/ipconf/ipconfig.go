package ipconf

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// IPMethod is what an ip= argument asks for.
type IPMethod int

const (
	// IPOff: no network configuration (ip=off, ip=none, ip= or an autoconf
	// field of off/none without a client address).
	IPOff IPMethod = iota
	// IPDHCP: obtain the address with DHCP (ip=dhcp/on/any/bootp/both, or no
	// client address given). lastgasp speaks DHCP only; bootp and both are
	// served by it as DHCP.
	IPDHCP
	// IPStatic: the client address is given; IPConfig.Static holds the lease.
	IPStatic
	// IPAuto6: IPv6 only, no DHCPv4 (dracut's ip=auto6, dhcp6 and either6,
	// which the kernel itself does not know): the address comes from
	// SLAAC or DHCPv6, whichever gives one first.
	IPAuto6
)

func (m IPMethod) String() string {
	switch m {
	case IPOff:
		return "off"
	case IPDHCP:
		return "dhcp"
	case IPStatic:
		return "static"
	case IPAuto6:
		return "auto6"
	}
	return fmt.Sprintf("IPMethod(%d)", int(m))
}

// IPConfig is the meaning of a kernel ip= argument.
type IPConfig struct {
	Method   IPMethod
	Device   string // <device>; "" means any candidate
	Hostname string // <hostname> up to the first dot
	Domain   string // what followed the first dot of <hostname>
	Server   net.IP // <server-ip> (the NFS root server); informational
	Autoconf string // <autoconf> as given ("" when absent)
	// Static is the configuration to Apply when Method is IPStatic; its
	// Interface is Device (set it when Device is empty).
	Static *Lease
}

// ParseIPArg parses the value of the kernel's ip= argument
// (Documentation/admin-guide/nfs/nfsroot.rst):
//
//	<client-ip>:<server-ip>:<gw-ip>:<netmask>:<hostname>:<device>:<autoconf>:<dns0-ip>:<dns1-ip>:<ntp0-ip>
//
// or a lone autoconf method (dhcp, on, any, bootp, both, off, none; and
// dracut's IPv6 methods auto6, dhcp6, either6, see IPAuto6). As in the
// kernel, fields may be empty or left off, 0.0.0.0 counts as empty, a missing
// netmask is derived from the address class, and a client address makes the
// configuration static whatever the autoconf field says. Unlike the kernel,
// which ignores what it cannot parse, ParseIPArg rejects malformed addresses,
// unknown autoconf methods, rarp, and more than ten fields.
func ParseIPArg(s string) (IPConfig, error) {
	if m, ok, err := autoconfMethod(s); ok || err != nil {
		if err != nil {
			return IPConfig{}, fmt.Errorf("link: ip=%s: %w", s, err)
		}
		return IPConfig{Method: m, Autoconf: s}, nil
	}
	if s == "" {
		return IPConfig{Method: IPOff}, nil
	}
	f := strings.Split(s, ":")
	if len(f) > 10 {
		return IPConfig{}, fmt.Errorf("link: ip=%s: %d fields, at most 10", s, len(f))
	}
	field := func(i int) string {
		if i < len(f) {
			return f[i]
		}
		return ""
	}
	var errs []string
	addr := func(i int, name string) net.IP {
		v := field(i)
		if v == "" {
			return nil
		}
		a, err := netip.ParseAddr(v)
		if err != nil || !a.Is4() {
			errs = append(errs, fmt.Sprintf("%s %q is not an IPv4 address", name, v))
			return nil
		}
		if a.IsUnspecified() {
			return nil
		}
		return net.IP(a.AsSlice())
	}
	c := IPConfig{Autoconf: field(6)}
	client := addr(0, "client-ip")
	c.Server = addr(1, "server-ip")
	gw := addr(2, "gw-ip")
	maskIP := addr(3, "netmask")
	dns0, dns1, ntp0 := addr(7, "dns0-ip"), addr(8, "dns1-ip"), addr(9, "ntp0-ip")
	if h := field(4); h != "" {
		c.Hostname, c.Domain, _ = strings.Cut(h, ".")
		if !validHostname(c.Hostname) || len(h) > 64 {
			errs = append(errs, fmt.Sprintf("hostname %q is not a host name", h))
		}
	}
	if d := field(5); d != "" {
		if !validIfname(d) {
			errs = append(errs, fmt.Sprintf("device %q is not an interface name", d))
		}
		c.Device = d
	}
	method := IPDHCP // the kernel's default autoconf is "any"
	if c.Autoconf != "" {
		m, ok, err := autoconfMethod(c.Autoconf)
		switch {
		case err != nil:
			errs = append(errs, err.Error())
		case !ok:
			errs = append(errs, fmt.Sprintf("unknown autoconf method %q", c.Autoconf))
		default:
			method = m
		}
	}
	if client != nil && !UsableUnicast(client) {
		errs = append(errs, fmt.Sprintf("client-ip %v is not a unicast address", client))
	}
	if gw != nil && !UsableUnicast(gw) {
		errs = append(errs, fmt.Sprintf("gw-ip %v is not a unicast address", gw))
	}
	var mask net.IPMask
	if maskIP != nil {
		mask = net.IPMask(maskIP.To4())
		if ones, bits := mask.Size(); bits != 32 || ones == 0 {
			errs = append(errs, fmt.Sprintf("netmask %v is not a contiguous mask", maskIP))
		}
	}
	if len(errs) > 0 {
		return IPConfig{}, fmt.Errorf("link: ip=%s: %s", s, strings.Join(errs, "; "))
	}
	if client == nil {
		c.Method = method
		return c, nil
	}
	if mask == nil {
		mask = client.DefaultMask()
	}
	c.Method = IPStatic
	c.Static = &Lease{
		Interface: c.Device,
		Address:   net.IPNet{IP: client.To4(), Mask: mask},
		Router:    gw,
		ServerID:  c.Server,
		Hostname:  c.Hostname,
	}
	for _, ip := range []net.IP{dns0, dns1} {
		if ip != nil {
			c.Static.DNS = append(c.Static.DNS, ip)
		}
	}
	if ntp0 != nil {
		c.Static.NTP = []net.IP{ntp0}
	}
	return c, nil
}

// autoconfMethod maps an autoconf word; ok is false for anything else.
func autoconfMethod(s string) (m IPMethod, ok bool, err error) {
	switch {
	case s == "off" || s == "none":
		return IPOff, true, nil
	case s == "on" || s == "any" || s == "bootp" || s == "both":
		return IPDHCP, true, nil
	case s == "dhcp" || strings.HasPrefix(s, "dhcp,"): // dhcp,<type>,<client-id> in the kernel
		return IPDHCP, true, nil
	case s == "auto6" || s == "dhcp6" || s == "either6":
		return IPAuto6, true, nil
	case s == "rarp":
		return IPOff, false, fmt.Errorf("autoconf rarp is not supported")
	}
	return IPOff, false, nil
}

// validHostname accepts an RFC 1123 label.
func validHostname(h string) bool {
	if h == "" || len(h) > 63 || h[0] == '-' || h[len(h)-1] == '-' {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// validIfname accepts what the kernel's dev_valid_name accepts.
func validIfname(n string) bool {
	if n == "" || len(n) > 15 || n == "." || n == ".." {
		return false
	}
	for i := 0; i < len(n); i++ {
		if c := n[i]; c == '/' || c == ':' || c <= ' ' || c == 0x7f {
			return false
		}
	}
	return true
}
