package link

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"time"
)

// ErrNoInterface is returned when no interface matches the board's patterns.
var ErrNoInterface = errors.New("no matching network interface")

// Candidates returns the names of the interfaces in sysClassNet (normally
// /sys/class/net) matching patterns, in pattern order, then name order.
// Loopback is never a candidate.
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
			if ok, _ := filepath.Match(p, n); ok && !seen[n] {
				seen[n] = true
				out = append(out, n)
			}
		}
	}
	return out, nil
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

// Lease is the part of a DHCPv4 lease the agent uses.
type Lease struct {
	Interface  string
	Address    net.IPNet
	Router     net.IP
	ServerID   net.IP
	LogServers []net.IP
	Hostname   string
	Duration   time.Duration
}

func (l *Lease) String() string {
	return fmt.Sprintf("%s addr=%s router=%v server=%v lease=%v", l.Interface, l.Address.String(), l.Router, l.ServerID, l.Duration)
}
