package receiver

import (
	"fmt"
	"hash/fnv"
	"net/netip"
	"path"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// claimTable remembers which sender last announced each host name, so that
// two senders claiming one name are noticed. Netconsole is unauthenticated
// UDP: a claim cannot be verified, only bounded (see Pin) and made visible.
type claimTable struct {
	mu sync.Mutex
	m  map[string]claim
	// takeovers counts claims of a name another sender held: a sender
	// needs to look its name up again only when it moved.
	takeovers atomic.Uint64
}

// claim is who holds a name: the sender's address and port, and a hash of
// the boot it announced (24 bytes, because the table has an entry for
// every announced host).
type claim struct {
	ip   [16]byte
	port uint16
	boot uint32
}

func claimOf(key netip.AddrPort, boot string) claim {
	h := fnv.New32a()
	h.Write([]byte(boot))
	return claim{ip: key.Addr().As16(), port: key.Port(), boot: h.Sum32()}
}

func (c claim) addrPort() netip.AddrPort {
	a := netip.AddrFrom16(c.ip)
	return netip.AddrPortFrom(a.Unmap(), c.port)
}

// claim records that key announced host and boot. It returns the previous
// claimant, if it was another sender, and whether that one announced the
// same boot: one boot cannot come from two senders, so that is a conflict
// (another boot from another address may be a host that rebooted and got a
// new address).
func (t *claimTable) claim(host, boot string, key netip.AddrPort, now time.Time) (prev netip.AddrPort, sameBoot bool) {
	c := claimOf(key, boot)
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.m == nil {
		t.m = make(map[string]claim)
	}
	old, ok := t.m[host]
	t.m[host] = c
	if ok && (old.ip != c.ip || old.port != c.port) {
		t.takeovers.Add(1)
		return old.addrPort(), old.boot == c.boot
	}
	return netip.AddrPort{}, false
}

// owner returns the sender that last announced host.
func (t *claimTable) owner(host string) (netip.AddrPort, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	c, ok := t.m[host]
	return c.addrPort(), ok
}

// release forgets key's claim to host, if it still holds it.
func (t *claimTable) release(host string, key netip.AddrPort) {
	if host == "" {
		return
	}
	k := claimOf(key, "")
	t.mu.Lock()
	defer t.mu.Unlock()
	if c, ok := t.m[host]; ok && c.ip == k.ip && c.port == k.port {
		delete(t.m, host)
	}
}

// Pin restricts the host names matching Pattern (a path.Match glob such as
// "web-*") to announcements from the Prefixes. A host matching several pins
// may use the prefixes of any of them.
type Pin struct {
	Pattern  string
	Prefixes []netip.Prefix
}

// ParsePin parses "<glob>=<prefix>[,<prefix>...]", such as
// "db-*=10.1.0.0/16,fd00:1::/64". A bare address is a single-address prefix.
func ParsePin(s string) (Pin, error) {
	pat, nets, ok := strings.Cut(s, "=")
	if !ok || pat == "" || nets == "" {
		return Pin{}, fmt.Errorf("receiver: pin %q: want <glob>=<prefix>[,<prefix>...]", s)
	}
	if _, err := path.Match(pat, ""); err != nil {
		return Pin{}, fmt.Errorf("receiver: pin %q: %w", s, err)
	}
	p := Pin{Pattern: pat}
	for _, n := range strings.Split(nets, ",") {
		pfx, err := netip.ParsePrefix(n)
		if err != nil {
			a, aerr := netip.ParseAddr(n)
			if aerr != nil {
				return Pin{}, fmt.Errorf("receiver: pin %q: %w", s, err)
			}
			pfx = netip.PrefixFrom(a, a.BitLen())
		}
		p.Prefixes = append(p.Prefixes, pfx.Masked())
	}
	return p, nil
}

// pinned reports whether host may be announced from addr.
func pinned(pins []Pin, host string, addr netip.Addr) bool {
	matched := false
	addr = addr.Unmap().WithZone("")
	for _, p := range pins {
		if ok, _ := path.Match(p.Pattern, host); !ok {
			continue
		}
		matched = true
		for _, pfx := range p.Prefixes {
			if pfx.Contains(addr) {
				return true
			}
		}
	}
	return !matched
}
