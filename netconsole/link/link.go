package link

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// ErrNoInterface is returned when no interface matches the board's patterns.
var ErrNoInterface = errors.New("no matching network interface")

// Candidates returns the names of the interfaces in sysClassNet (normally
// /sys/class/net) matching patterns, in pattern order, then name order.
// Loopback is never a candidate. A pattern is a glob on the interface name
// ("eth*"), on its MAC address ("mac:52:54:00:*", lowercase hex), or on its
// driver ("driver:e1000", the device's driver link in sysfs).
func Candidates(sysClassNet string, patterns []string) ([]string, error) {
	ents, err := os.ReadDir(sysClassNet)
	if err != nil {
		return nil, fmt.Errorf("link: list interfaces: %w", err)
	}
	var names []string
	for _, e := range ents {
		if e.Name() != "lo" {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	var out []string
	seen := map[string]bool{}
	for _, p := range patterns {
		for _, n := range names {
			if !seen[n] && MatchNIC(sysClassNet, n, p) {
				seen[n] = true
				out = append(out, n)
			}
		}
	}
	return out, nil
}

// MatchNIC reports whether interface name matches one NIC pattern (see
// Candidates).
func MatchNIC(sysClassNet, name, pattern string) bool {
	var subject string
	switch {
	case strings.HasPrefix(pattern, "mac:"):
		b, err := os.ReadFile(filepath.Join(sysClassNet, name, "address"))
		if err != nil {
			return false
		}
		subject, pattern = strings.ToLower(strings.TrimSpace(string(b))), strings.ToLower(pattern[len("mac:"):])
	case strings.HasPrefix(pattern, "driver:"):
		t, err := os.Readlink(filepath.Join(sysClassNet, name, "device", "driver"))
		if err != nil {
			return false
		}
		subject, pattern = filepath.Base(t), pattern[len("driver:"):]
	default:
		subject = name
	}
	ok, _ := filepath.Match(pattern, subject)
	return ok
}

// WaitCandidates polls Candidates until at least one interface matches or
// wait has passed; NIC drivers probe asynchronously on some buses.
func WaitCandidates(sysClassNet string, patterns []string, wait time.Duration) ([]string, error) {
	deadline := time.Now().Add(wait)
	for {
		c, err := Candidates(sysClassNet, patterns)
		if err != nil {
			return nil, err
		}
		if len(c) > 0 {
			return c, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("link: patterns %q after %v: %w", patterns, wait, ErrNoInterface)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Lease is the part of a DHCPv4 lease (or of a static configuration, see
// ParseIPArg) the agent uses. Nothing in it is ever written to a host file
// unless the caller asks Apply to (WithResolvConf).
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
