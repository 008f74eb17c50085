package link

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"
	"github.com/mdlayher/packet"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// ErrNoLease is returned (wrapped) when no usable DHCPACK arrived before the
// deadline: silence, only NAKs, or only unusable ACKs.
var ErrNoLease = errors.New("no DHCP lease")

// Up sets the interface administratively up.
func Up(ifname string) error {
	l, err := linkByName(ifname)
	if err != nil {
		return err
	}
	if err := netlink.LinkSetUp(l); err != nil {
		return fmt.Errorf("link: %s: set up: %w", ifname, err)
	}
	return nil
}

// Default retransmission waits: RFC 2131 section 4.1 suggests 4 s doubling
// to 64 s; a booting box that wants its netconsole armed early starts much
// shorter and caps lower, and the caller's deadline bounds the whole.
const (
	DefaultFirstWait = 500 * time.Millisecond
	DefaultMaxWait   = 4 * time.Second
)

// DHCPOption configures DHCP.
type DHCPOption func(*dhcpConfig)

type dhcpConfig struct {
	first, max time.Duration
	logf       func(format string, args ...any)
	conn       net.PacketConn
	hwaddr     net.HardwareAddr
	server     *net.UDPAddr
	logOption  uint8
}

// WithLogServerOption asks for a site-specific DHCP option (128-254) that
// carries the netconsole receivers as IPv4 addresses, and takes the lease's
// log servers from it instead of option 7 (see SiteLogServers). 0 or 7
// keep option 7.
func WithLogServerOption(code uint8) DHCPOption {
	return func(c *dhcpConfig) { c.logOption = code }
}

// WithLogf sends one line per step (discover, offer, NAK, retry, ACK) to
// logf. The default is silent.
func WithLogf(logf func(format string, args ...any)) DHCPOption {
	return func(c *dhcpConfig) { c.logf = logf }
}

// WithBackoff sets how long the first exchange waits for an answer and the
// cap of the doubling wait for later ones (each wait gets ±12.5% jitter).
func WithBackoff(first, max time.Duration) DHCPOption {
	return func(c *dhcpConfig) {
		if first > 0 {
			c.first = first
		}
		if max >= first && max > 0 {
			c.max = max
		}
	}
}

// WithConn runs the exchange over conn (sending to server) instead of a raw
// socket on the interface, with hwaddr as the client's hardware address.
// Tests use it with UDP sockets on loopback. DHCP closes conn when it returns.
func WithConn(conn net.PacketConn, hwaddr net.HardwareAddr, server *net.UDPAddr) DHCPOption {
	return func(c *dhcpConfig) { c.conn, c.hwaddr, c.server = conn, hwaddr, server }
}

// requested are the options FromACK reads.
var (
	requestedCodes = []dhcpv4.OptionCode{
		dhcpv4.OptionSubnetMask, dhcpv4.OptionClasslessStaticRoute, dhcpv4.OptionRouter,
		dhcpv4.OptionInterfaceMTU, dhcpv4.OptionLogServer, dhcpv4.OptionHostName,
		dhcpv4.OptionDomainNameServer, dhcpv4.OptionNTPServers}
	requested = dhcpv4.OptParameterRequestList(requestedCodes...)
)

// request is the parameter request list: what FromACK reads, and the site
// log server option if there is one.
func (cfg dhcpConfig) request() dhcpv4.Option {
	if cfg.logOption == 0 || cfg.logOption == 7 {
		return requested
	}
	codes := append(dhcpv4.OptionCodeList(nil), requestedCodes...)
	return dhcpv4.OptParameterRequestList(append(codes, dhcpv4.GenericOptionCode(cfg.logOption))...)
}

// DHCP obtains a DHCPv4 lease on ifname (a raw socket via nclient4) before
// ctx is done. Each exchange (DISCOVER→OFFER, REQUEST→ACK) waits for an
// answer with a doubling, jittered timeout (WithBackoff); silence restarts
// discovery after the wait, a NAK restarts it at once (later NAKs after the
// backoff), and an ACK FromACK rejects restarts it too. When ctx is done the
// error wraps ErrNoLease and says what happened last. Without a deadline on
// ctx, DHCP keeps trying until ctx is cancelled.
//
// DHCP does not configure the interface; see Apply.
func DHCP(ctx context.Context, ifname string, opts ...DHCPOption) (*Lease, error) {
	cfg := dhcpConfig{first: DefaultFirstWait, max: DefaultMaxWait, logf: func(string, ...any) {}}
	for _, o := range opts {
		o(&cfg)
	}
	// One transmission per exchange: the retry loop below owns timing.
	copts := []nclient4.ClientOpt{nclient4.WithTimeout(24 * time.Hour), nclient4.WithRetry(1)}
	var (
		c       *nclient4.Client
		err     error
		replies = &replyLog{}
	)
	if cfg.conn != nil {
		if cfg.server != nil {
			copts = append(copts, nclient4.WithServerAddr(cfg.server))
		}
		c, err = nclient4.NewWithConn(cfg.conn, cfg.hwaddr, copts...)
	} else {
		c, err = newRawClient(ifname, replies, copts...)
	}
	if err != nil {
		return nil, fmt.Errorf("link: %s: dhcp client: %w", ifname, err)
	}
	// Closing the raw socket ends in the kernel's packet_release, which
	// waits for an RCU grace period (synchronize_net): 13-18 ms under TCG
	// between the ACK and the lease reaching the caller, on the path to
	// netconsole armed. With a lease in hand, the raw socket is closed in
	// the background; a conn of the caller's (WithConn) is closed before
	// DHCP returns, as documented.
	closeBG := false
	defer func() {
		if closeBG && cfg.conn == nil {
			go c.Close()
			return
		}
		c.Close()
	}()

	start := time.Now()
	wait := cfg.first
	naks := 0
	var last error
	for attempt := 1; ; attempt++ {
		if ctx.Err() != nil {
			return nil, noLease(ifname, attempt-1, time.Since(start), last)
		}
		lease, err := exchange(ctx, c, jitter(wait), cfg.request(), cfg.logf, ifname, attempt)
		if err == nil {
			l, err := FromACK(ifname, lease.ACK)
			if err == nil && cfg.logOption != 0 && cfg.logOption != 7 {
				if lerr := SiteLogServers(l, lease.ACK, cfg.logOption); lerr != nil {
					l.LogServersErr = lerr
					cfg.logf("dhcp %s: %v; keeping the lease without log servers", ifname, lerr)
				}
			}
			if err == nil {
				if src, ok := replies.source(binary.BigEndian.Uint32(lease.ACK.TransactionID[:])); ok {
					l.ReplyFrom, l.ReplyMAC = src.ip, src.mac
				}
				cfg.logf("dhcp %s: ACK %s after %v (attempt %d)", ifname, l, time.Since(start).Round(time.Millisecond), attempt)
				closeBG = true
				return l, nil
			}
			last = err
			cfg.logf("dhcp %s: unusable ACK from %v: %v; restarting discovery", ifname, lease.ACK.ServerIdentifier(), err)
		} else {
			if ctx.Err() != nil {
				if last == nil {
					last = err
				}
				return nil, noLease(ifname, attempt, time.Since(start), last)
			}
			last = err
			var nak *nclient4.ErrNak
			switch {
			case errors.As(err, &nak):
				naks++
				cfg.logf("dhcp %s: NAK from %v for %v (%q); restarting discovery", ifname,
					nak.Nak.ServerIdentifier(), nak.Offer.YourIPAddr, nak.Nak.Message())
				if naks == 1 {
					continue // the RFC 2131 answer to a NAK: start over, now
				}
			case errors.Is(err, errNoAnswer):
				cfg.logf("dhcp %s: %v", ifname, err)
				wait = min(2*wait, cfg.max)
				continue // the wait already passed
			default:
				cfg.logf("dhcp %s: attempt %d: %v", ifname, attempt, err)
			}
		}
		// NAK storms, unusable ACKs and socket errors: pause before the next try.
		t := time.NewTimer(jitter(wait))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, noLease(ifname, attempt, time.Since(start), last)
		case <-t.C:
		}
		wait = min(2*wait, cfg.max)
	}
}

var errNoAnswer = errors.New("no answer")

// newRawClient is nclient4.New with the AF_PACKET socket wrapped so that
// each reply's sender is noted in replies.
func newRawClient(ifname string, replies *replyLog, opts ...nclient4.ClientOpt) (*nclient4.Client, error) {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, err
	}
	raw, err := packet.Listen(ifi, packet.Datagram, unix.ETH_P_IP, nil)
	if err != nil {
		return nil, fmt.Errorf("raw socket: %w", err)
	}
	conn := nclient4.NewBroadcastUDPConn(replyConn{Conn: raw, log: replies}, &net.UDPAddr{Port: nclient4.ClientPort})
	c, err := nclient4.NewWithConn(conn, ifi.HardwareAddr, opts...)
	if err != nil {
		raw.Close()
	}
	return c, err
}

// exchange runs DISCOVER→OFFER and REQUEST→ACK, each waiting at most wait.
func exchange(ctx context.Context, c *nclient4.Client, wait time.Duration, requested dhcpv4.Option, logf func(string, ...any), ifname string, attempt int) (*nclient4.Lease, error) {
	dctx, cancel := context.WithTimeout(ctx, wait)
	offer, err := c.DiscoverOffer(dctx, dhcpv4.WithOption(requested))
	cancel()
	if err != nil {
		if ctx.Err() == nil && (errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nclient4.ErrNoResponse)) {
			return nil, fmt.Errorf("attempt %d: no OFFER within %v: %w", attempt, wait.Round(time.Millisecond), errNoAnswer)
		}
		return nil, err
	}
	logf("dhcp %s: OFFER %v from %v", ifname, offer.YourIPAddr, offer.ServerIdentifier())
	rctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	lease, err := c.RequestFromOffer(rctx, offer, dhcpv4.WithOption(requested))
	if err != nil {
		if ctx.Err() == nil && (errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nclient4.ErrNoResponse)) {
			return nil, fmt.Errorf("attempt %d: no ACK from %v within %v: %w", attempt, offer.ServerIdentifier(), wait.Round(time.Millisecond), errNoAnswer)
		}
		return nil, err
	}
	return lease, nil
}

func noLease(ifname string, attempts int, elapsed time.Duration, last error) error {
	if last == nil {
		return fmt.Errorf("link: %s: %w: deadline before the first attempt", ifname, ErrNoLease)
	}
	return fmt.Errorf("link: %s: %w after %d attempts in %v; last: %v", ifname, ErrNoLease, attempts, elapsed.Round(time.Millisecond), last)
}

// jitter spreads d by ±12.5% so that a rack of boxes rebooting together does
// not retransmit in lockstep.
func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return d
	}
	return d - d/8 + rand.N(d/4+1)
}

// linkByName is the interface as a netlink.Link with the index, name and
// MTU that setting it up, its MTU, addresses and routes need. It asks the
// standard library (net.InterfaceByName), not netlink.LinkByName: that
// one's reply parser (LinkDeserialize, every link type's attributes) is a
// large body of code run nowhere else on the path to netconsole armed,
// and under TCG code run for the first time is what costs.
func linkByName(ifname string) (netlink.Link, error) {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("link: %s: %w", ifname, err)
	}
	return &netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: ifi.Index, Name: ifi.Name, MTU: ifi.MTU, HardwareAddr: ifi.HardwareAddr}}, nil
}
