package nexthop

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
)

// ErrNoAnswer is returned when nobody answered ARP before the deadline. An
// unanswered neighbor solicitation (ResolveNDP) is also ErrNoAnswer for
// errors.Is, but reads "no neighbor advertisement".
var ErrNoAnswer = errors.New("no ARP answer")

// Hop is the result of a route lookup for a receiver.
type Hop struct {
	Receiver netip.Addr // the receiver's address
	Via      netip.Addr // the address whose MAC the frames carry
	OnLink   bool       // Via == Receiver
	Dev      string     // outgoing interface
	Src      netip.Addr // source address the kernel would use
}

func (h Hop) String() string {
	how := "via gateway " + h.Via.String()
	if h.OnLink {
		how = "on-link"
	}
	return fmt.Sprintf("%s %s dev %s src %s", h.Receiver, how, h.Dev, h.Src)
}

// Conn is the part of an ARP client Resolve needs; *arp.Client implements it.
type Conn interface {
	Request(ip netip.Addr) error
	Read() (*arp.Packet, *ethernet.Frame, error)
	SetReadDeadline(t time.Time) error
}

var _ Conn = (*arp.Client)(nil)

// Resolve sends an ARP request for ip every retry interval until a reply from
// ip arrives or ctx is done (ErrNoAnswer). Replies from other addresses,
// requests, malformed frames and impossible sender MACs are ignored. It is
// Resolver{Retry: retry}.Resolve.
func Resolve(ctx context.Context, c Conn, ip netip.Addr, retry time.Duration) (net.HardwareAddr, error) {
	return Resolver{Retry: retry}.Resolve(ctx, c, ip)
}

// DefaultRetry is the interval between ARP requests when Resolver.Retry is 0.
const DefaultRetry = 200 * time.Millisecond

// Resolver resolves an IPv4 address to a MAC with ARP requests repeated
// under a deadline, optionally watching for conflicting answers.
type Resolver struct {
	// Retry is the interval between requests; default DefaultRetry.
	Retry time.Duration
	// Linger, if positive, keeps Resolve listening that long after the
	// first answer (bounded by the deadline) so that a second host claiming
	// the address is noticed. Zero returns at the first answer, as before.
	Linger time.Duration
	// OnConflict, if set, is called once per further MAC that answers for
	// ip within the resolve window (including the linger), with the MAC
	// Resolve returns first. Resolve still returns the first answer.
	OnConflict func(ip netip.Addr, first, other net.HardwareAddr)
	// OnAnswer, if set, is called once with the first answer as soon as it
	// arrives, before lingering: a caller that must not wait for the
	// linger (the agent arms netconsole with it) runs Resolve in a
	// goroutine and goes on from here, while conflicts are still watched.
	OnAnswer func(mac net.HardwareAddr)
	// Logf receives one line per retry; default silent.
	Logf func(format string, args ...any)
}

// Resolve is the package-level Resolve with r's settings. Without a deadline
// on ctx it gives up after 2 s. A request that fails to send (say, the link
// flapped) is retried until the deadline; only a closed conn ends it early.
func (r Resolver) Resolve(ctx context.Context, c Conn, ip netip.Addr) (net.HardwareAddr, error) {
	if !ip.Is4() {
		return nil, fmt.Errorf("nexthop: arp %s: not an IPv4 address", ip)
	}
	return r.run(ctx, arpProber{c}, ip)
}

// prober is one address-resolution protocol as the retry loop sees it:
// ARP (IPv4) or neighbor discovery (IPv6).
type prober interface {
	proto() string // "arp" or "ndp", for errors and logs
	request(ip netip.Addr) error
	// read returns the next answer's claimed address and MAC; ok is false
	// for a message that is no answer (a request, another message type).
	read() (ip netip.Addr, mac net.HardwareAddr, ok bool, err error)
	SetReadDeadline(t time.Time) error
	noAnswer() error
}

type arpProber struct{ c Conn }

func (arpProber) proto() string                 { return "arp" }
func (p arpProber) request(ip netip.Addr) error { return p.c.Request(ip) }
func (p arpProber) SetReadDeadline(t time.Time) error {
	return p.c.SetReadDeadline(t)
}
func (arpProber) noAnswer() error { return ErrNoAnswer }
func (p arpProber) read() (netip.Addr, net.HardwareAddr, bool, error) {
	pk, _, err := p.c.Read()
	if err != nil {
		return netip.Addr{}, nil, false, err
	}
	if pk == nil || pk.Operation != arp.OperationReply {
		return netip.Addr{}, nil, false, nil
	}
	return pk.SenderIP, pk.SenderHardwareAddr, true, nil
}

// run is the retry loop shared by ARP and NDP: a request every retry
// interval until an answer from ip arrives (then lingering, if asked) or the
// deadline passes.
func (r Resolver) run(ctx context.Context, c prober, ip netip.Addr) (net.HardwareAddr, error) {
	proto := c.proto()
	retry := r.Retry
	if retry <= 0 {
		retry = DefaultRetry
	}
	logf := r.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(2 * time.Second)
	}
	var (
		first   net.HardwareAddr
		seen    []net.HardwareAddr
		lingerT time.Time
		lastErr error
	)
	// note records an answer; it reports whether Resolve is done.
	note := func(mac net.HardwareAddr) bool {
		for _, m := range seen {
			if bytes.Equal(m, mac) {
				return r.Linger <= 0
			}
		}
		mac = append(net.HardwareAddr(nil), mac...)
		seen = append(seen, mac)
		if first == nil {
			first = mac
			lingerT = time.Now().Add(r.Linger)
			if lingerT.After(deadline) {
				lingerT = deadline
			}
			if r.OnAnswer != nil {
				r.OnAnswer(first)
			}
		} else if r.OnConflict != nil {
			r.OnConflict(ip, first, mac)
		}
		return r.Linger <= 0
	}
	for attempt := 1; ctx.Err() == nil && time.Now().Before(deadline); attempt++ {
		if first == nil {
			if err := c.request(ip); err != nil {
				if errors.Is(err, net.ErrClosed) {
					return nil, fmt.Errorf("nexthop: %s request %s: %w", proto, ip, err)
				}
				lastErr = err
				logf("nexthop: %s request %s (attempt %d): %v", proto, ip, attempt, err)
			}
		}
		tryEnd := time.Now().Add(retry)
		if first != nil {
			tryEnd = lingerT
		}
		if tryEnd.After(deadline) {
			tryEnd = deadline
		}
		if err := c.SetReadDeadline(tryEnd); err != nil {
			return nil, fmt.Errorf("nexthop: %s deadline: %w", proto, err)
		}
		for {
			if ctx.Err() != nil {
				break
			}
			from, mac, ok, err := c.read()
			if err != nil {
				if errors.Is(err, os.ErrDeadlineExceeded) || isTimeout(err) {
					break
				}
				if errors.Is(err, net.ErrClosed) {
					if first != nil {
						return first, nil
					}
					return nil, fmt.Errorf("nexthop: %s read: %w", proto, err)
				}
				if !time.Now().Before(tryEnd) {
					break
				}
				continue // malformed frame: keep listening
			}
			if !ok || from.WithZone("") != ip.WithZone("") || !validMAC(mac) {
				if !time.Now().Before(tryEnd) {
					break
				}
				continue
			}
			if note(mac) {
				return first, nil
			}
			// Lingering ends at lingerT, which may come before the
			// retry interval does.
			if lingerT.Before(tryEnd) {
				tryEnd = lingerT
				if err := c.SetReadDeadline(tryEnd); err != nil {
					return first, nil
				}
			}
			if !time.Now().Before(tryEnd) {
				break
			}
		}
		if first != nil && !time.Now().Before(lingerT) {
			return first, nil
		}
		if first == nil {
			logf("nexthop: %s %s: no answer to attempt %d", proto, ip, attempt)
		}
	}
	if first != nil {
		return first, nil
	}
	if lastErr != nil {
		return nil, fmt.Errorf("nexthop: %s %s: %w (last send error: %v)", proto, ip, c.noAnswer(), lastErr)
	}
	return nil, fmt.Errorf("nexthop: %s %s: %w", proto, ip, c.noAnswer())
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// validMAC rejects all-zero, broadcast and multicast sender addresses, which
// no host may legitimately claim.
func validMAC(m net.HardwareAddr) bool {
	if len(m) != 6 {
		return false
	}
	if m[0]&1 == 1 {
		return false
	}
	for _, b := range m {
		if b != 0 {
			return true
		}
	}
	return false
}
