package nexthop

import (
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

// ErrNoAnswer is returned when nobody answered ARP before the deadline.
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
// requests, malformed frames and impossible sender MACs are ignored.
func Resolve(ctx context.Context, c Conn, ip netip.Addr, retry time.Duration) (net.HardwareAddr, error) {
	if !ip.Is4() {
		return nil, fmt.Errorf("nexthop: arp %s: not an IPv4 address", ip)
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(2 * time.Second)
	}
	for ctx.Err() == nil && time.Now().Before(deadline) {
		if err := c.Request(ip); err != nil {
			return nil, fmt.Errorf("nexthop: arp request %s: %w", ip, err)
		}
		tryEnd := time.Now().Add(retry)
		if tryEnd.After(deadline) {
			tryEnd = deadline
		}
		if err := c.SetReadDeadline(tryEnd); err != nil {
			return nil, fmt.Errorf("nexthop: arp deadline: %w", err)
		}
		for {
			p, _, err := c.Read()
			if err != nil {
				if errors.Is(err, os.ErrDeadlineExceeded) || isTimeout(err) {
					break
				}
				if errors.Is(err, net.ErrClosed) {
					return nil, fmt.Errorf("nexthop: arp read: %w", err)
				}
				if time.Now().After(tryEnd) {
					break
				}
				continue // malformed frame: keep listening
			}
			if p.Operation != arp.OperationReply || p.SenderIP != ip || !validMAC(p.SenderHardwareAddr) {
				continue
			}
			return append(net.HardwareAddr(nil), p.SenderHardwareAddr...), nil
		}
	}
	return nil, fmt.Errorf("nexthop: arp %s: %w", ip, ErrNoAnswer)
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
