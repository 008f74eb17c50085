package link

import (
	"errors"
	"fmt"
	"github.com/lastgasp/lastgasp/netconsole/ipconf"
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

// Lease, Route and the ip= configuration are defined in package ipconf,
// which has no netlink code, so that the board parser can use them on any
// OS; these aliases keep this package's API whole.
type (
	// Lease is ipconf.Lease.
	Lease = ipconf.Lease
	// Route is ipconf.Route.
	Route = ipconf.Route
	// IPConfig is ipconf.IPConfig.
	IPConfig = ipconf.IPConfig
	// IPMethod is ipconf.IPMethod.
	IPMethod = ipconf.IPMethod
)

// The ip= methods (ipconf's).
const (
	IPOff    = ipconf.IPOff
	IPDHCP   = ipconf.IPDHCP
	IPStatic = ipconf.IPStatic
	IPAuto6  = ipconf.IPAuto6
)

// ParseIPArg is ipconf.ParseIPArg.
func ParseIPArg(s string) (IPConfig, error) { return ipconf.ParseIPArg(s) }
