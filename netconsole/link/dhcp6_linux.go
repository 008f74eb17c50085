package link

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/insomniacslk/dhcp/dhcpv6/nclient6"
	"github.com/insomniacslk/dhcp/iana"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// DHCPv6Option configures DHCPv6.
type DHCPv6Option func(*dhcp6Config)

type dhcp6Config struct {
	first, max time.Duration
	logf       func(format string, args ...any)
	logCode    uint16
	poll       time.Duration // link-local readiness
	// Tests: run over conn, sending to server, as hwaddr.
	conn   net.PacketConn
	hwaddr net.HardwareAddr
	server *net.UDPAddr
}

// WithLogf6 sends one line per step (waiting for the link-local address,
// Solicit, Advertise, refusals, retries, Reply) to logf. The default is
// silent.
func WithLogf6(logf func(format string, args ...any)) DHCPv6Option {
	return func(c *dhcp6Config) { c.logf = logf }
}

// WithLogServerOption6 asks for option code in the Option Request Option
// (RFC 8415 section 21.7) and reads its value as the lease's LogServers
// (ParseLogServers6). DHCPv6 has no standard log server option, so it is a
// code the site chose (dnsmasq: --dhcp-option=option6:<code>,[addr]). A
// Reply whose option does not parse is not used. Code 0 asks for nothing.
func WithLogServerOption6(code uint16) DHCPv6Option {
	return func(c *dhcp6Config) { c.logCode = code }
}

// WithBackoff6 sets how long the first exchange waits for an answer and the
// cap of the doubling wait for later ones (each wait gets ±12.5% jitter).
// The defaults are DefaultFirstWait and DefaultMaxWait.
func WithBackoff6(first, max time.Duration) DHCPv6Option {
	return func(c *dhcp6Config) {
		if first > 0 {
			c.first = first
		}
		if max >= first && max > 0 {
			c.max = max
		}
	}
}

// withConn6 runs the exchange over conn, sending to server, with hwaddr for
// the client's DUID and IAID; tests use UDP sockets on loopback. DHCPv6
// closes conn when it returns.
func withConn6(conn net.PacketConn, hwaddr net.HardwareAddr, server *net.UDPAddr) DHCPv6Option {
	return func(c *dhcp6Config) { c.conn, c.hwaddr, c.server = conn, hwaddr, server }
}

// linkLocalPoll is how often DHCPv6 looks whether the link-local address
// became usable.
const linkLocalPoll = 50 * time.Millisecond

var (
	errRefused6  = errors.New("no address offered")
	errBadReply6 = errors.New("unusable Reply")
)

// DHCPv6 obtains an IA_NA address on ifname with a stateful DHCPv6 exchange
// (RFC 8415: Solicit, Advertise, Request, Reply) over a UDP socket on the
// interface's link-local address, port 546, before ctx is done.
//
// The link-local address may still be tentative (duplicate address
// detection, about a second after carrier) or missing: DHCPv6 waits for it,
// saying so through WithLogf6, and a socket that fails later is opened
// again. Each exchange waits for an answer with a doubling, jittered timeout
// (WithBackoff6). The first usable Advertise is requested (preferences are
// not compared). A Reply that refuses (a status code) or is unusable
// restarts at Solicit after the wait.
//
// Errors wrap ErrNoLease when no lease came: when ctx is done (the error
// says what happened last; without a deadline DHCPv6 tries until ctx is
// cancelled), and at once when the servers that answered a Solicit all
// refused to offer an address (NoAddrsAvail: a network with stateless
// DHCPv6 only, or an exhausted pool). A returned lease always has an
// address.
//
// The client DUID is a DUID-LL (RFC 8415 section 11.4) from the interface's
// MAC address, stable across boots without storage; the IAID is the MAC's
// last four bytes. DHCPv6 does not configure the interface; see ApplyV6.
func DHCPv6(ctx context.Context, ifname string, opts ...DHCPv6Option) (*Lease6, error) {
	cfg := dhcp6Config{first: DefaultFirstWait, max: DefaultMaxWait, poll: linkLocalPoll, logf: func(string, ...any) {}}
	for _, o := range opts {
		o(&cfg)
	}
	start := time.Now()
	var (
		c    *client6
		last error
	)
	defer func() {
		if c != nil {
			c.close()
		}
	}()
	wait := cfg.first
	for attempt := 1; ; attempt++ {
		if ctx.Err() != nil {
			return nil, noLease6(ifname, attempt-1, time.Since(start), last)
		}
		if c == nil {
			var err error
			c, err = open6(ctx, &cfg, ifname)
			if err != nil {
				if ctx.Err() != nil {
					return nil, noLease6(ifname, attempt-1, time.Since(start), err)
				}
				return nil, fmt.Errorf("link: %s: dhcpv6: %w", ifname, err)
			}
		}
		l, err := c.exchange(ctx, jitter(wait), &cfg, ifname, attempt, start)
		if err == nil {
			cfg.logf("dhcpv6 %s: REPLY %s after %v (attempt %d)", ifname, l, time.Since(start).Round(time.Millisecond), attempt)
			return l, nil
		}
		last = err
		switch {
		case errors.Is(err, errRefused6):
			return nil, fmt.Errorf("link: %s: dhcpv6: %w: %v", ifname, ErrNoLease, err)
		case ctx.Err() != nil:
			return nil, noLease6(ifname, attempt, time.Since(start), last)
		case errors.Is(err, errNoAnswer):
			cfg.logf("dhcpv6 %s: %v", ifname, err)
			wait = min(2*wait, cfg.max)
			continue // the wait already passed
		case errors.Is(err, errBadReply6):
			cfg.logf("dhcpv6 %s: %v; soliciting again", ifname, err)
		default:
			cfg.logf("dhcpv6 %s: attempt %d: %v; opening the socket again", ifname, attempt, err)
			if c.owned {
				c.close()
				c = nil
			}
		}
		// Refusing Replies and socket errors: pause before the next try.
		t := time.NewTimer(jitter(wait))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, noLease6(ifname, attempt, time.Since(start), last)
		case <-t.C:
		}
		wait = min(2*wait, cfg.max)
	}
}

func noLease6(ifname string, attempts int, elapsed time.Duration, last error) error {
	switch {
	case last == nil:
		return fmt.Errorf("link: %s: dhcpv6: %w: deadline before the first attempt", ifname, ErrNoLease)
	case attempts == 0:
		return fmt.Errorf("link: %s: dhcpv6: %w in %v: %v", ifname, ErrNoLease, elapsed.Round(time.Millisecond), last)
	}
	return fmt.Errorf("link: %s: dhcpv6: %w after %d attempts in %v; last: %v", ifname, ErrNoLease, attempts, elapsed.Round(time.Millisecond), last)
}

// client6 is an nclient6 client and what answers for it look like.
type client6 struct {
	c     *nclient6.Client
	hw    net.HardwareAddr
	duid  dhcpv6.DUID
	want  expect6
	owned bool // the socket is ours to reopen
}

func (c *client6) close() { c.c.Close() }

// open6 makes the client: on cfg's conn, or on a socket bound to ifname's
// link-local address, waiting until there is a usable one.
func open6(ctx context.Context, cfg *dhcp6Config, ifname string) (*client6, error) {
	copts := []nclient6.ClientOpt{nclient6.WithTimeout(24 * time.Hour), nclient6.WithRetry(1)} // the loop owns timing
	var (
		conn  net.PacketConn
		hw    net.HardwareAddr
		owned bool
	)
	if cfg.conn != nil {
		conn, hw = cfg.conn, cfg.hwaddr
		cfg.conn = nil // DHCPv6 closes it, once
		if cfg.server != nil {
			copts = append(copts, nclient6.WithBroadcastAddr(cfg.server))
		}
	} else {
		lk, err := netlink.LinkByName(ifname)
		if err != nil {
			return nil, err
		}
		hw = lk.Attrs().HardwareAddr
		if conn, err = waitLinkLocal(ctx, cfg, lk); err != nil {
			return nil, err
		}
		owned = true
	}
	if len(hw) < 4 {
		conn.Close()
		return nil, fmt.Errorf("hardware address %q too short for a DUID-LL and an IAID", hw)
	}
	duid := &dhcpv6.DUIDLL{HWType: iana.HWTypeEthernet, LinkLayerAddr: hw}
	c := &client6{hw: hw, duid: duid, owned: owned,
		want: expect6{clientID: duid.ToBytes(), iaid: [4]byte(hw[len(hw)-4:]), logCode: cfg.logCode}}
	var err error
	if c.c, err = nclient6.NewWithConn(conn, hw, copts...); err != nil {
		conn.Close()
		return nil, err
	}
	return c, nil
}

// waitLinkLocal binds a UDP socket to [link-local%ifname]:546 once the
// interface has a link-local address that is not tentative, polling every
// cfg.poll. The error says what it waited for when ctx ends first.
func waitLinkLocal(ctx context.Context, cfg *dhcp6Config, lk netlink.Link) (net.PacketConn, error) {
	ifname := lk.Attrs().Name
	t0 := time.Now()
	said := ""
	for {
		conn, why, err := listenLinkLocal(lk)
		if err != nil {
			return nil, err
		}
		if conn != nil {
			if said != "" {
				cfg.logf("dhcpv6 %s: listening on %s after %v", ifname, conn.LocalAddr(), time.Since(t0).Round(time.Millisecond))
			}
			return conn, nil
		}
		if why != said {
			cfg.logf("dhcpv6 %s: %s; waiting", ifname, why)
			said = why
		}
		t := time.NewTimer(cfg.poll)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("no usable link-local address: %s", why)
		case <-t.C:
		}
	}
}

// listenLinkLocal binds [link-local%ifname]:546. It returns a nil conn and
// the reason while no link-local address is usable yet, and an error when
// none will be.
func listenLinkLocal(lk netlink.Link) (net.PacketConn, string, error) {
	ifname := lk.Attrs().Name
	addrs, err := netlink.AddrList(lk, netlink.FAMILY_V6)
	if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) { // an interrupted dump is retried at the next poll
		return nil, "", fmt.Errorf("addresses: %w", err)
	}
	why := "no IPv6 link-local address yet"
	var failed []string
	for _, a := range addrs {
		if a.IPNet == nil || !a.IP.IsLinkLocalUnicast() {
			continue
		}
		switch {
		case a.Flags&unix.IFA_F_DADFAILED != 0:
			failed = append(failed, a.IP.String())
			continue
		case a.Flags&unix.IFA_F_TENTATIVE != 0 && a.Flags&unix.IFA_F_OPTIMISTIC == 0:
			why = fmt.Sprintf("link-local %s is tentative (duplicate address detection)", a.IP)
			continue
		}
		conn, err := net.ListenUDP("udp6", &net.UDPAddr{IP: a.IP, Port: dhcpv6.DefaultClientPort, Zone: ifname})
		if err != nil {
			why = fmt.Sprintf("link-local %s: %v", a.IP, err)
			continue
		}
		return conn, "", nil
	}
	if len(failed) > 0 && why == "no IPv6 link-local address yet" {
		return nil, "", fmt.Errorf("link-local %s failed duplicate address detection", strings.Join(failed, ", "))
	}
	return nil, why, nil
}

// exchange runs Solicit→Advertise and Request→Reply, each waiting at most
// wait. Advertises that refuse are logged and skipped while the wait lasts;
// if only those came, the error wraps errRefused6.
func (c *client6) exchange(ctx context.Context, wait time.Duration, cfg *dhcp6Config, ifname string, attempt int, start time.Time) (*Lease6, error) {
	var oro []dhcpv6.Modifier
	if cfg.logCode != 0 {
		oro = append(oro, dhcpv6.WithRequestedOptions(dhcpv6.OptionCode(cfg.logCode)))
	}
	elapsed := dhcpv6.WithOption(dhcpv6.OptElapsedTime(min(time.Since(start), 0xffff*10*time.Millisecond)))
	solicit, err := dhcpv6.NewSolicit(c.hw, append([]dhcpv6.Modifier{dhcpv6.WithClientID(c.duid), dhcpv6.WithIAID(c.want.iaid), elapsed}, oro...)...)
	if err != nil {
		return nil, err
	}
	var refused []string
	sctx, cancel := context.WithTimeout(ctx, wait)
	adv, err := c.c.SendAndRead(sctx, c.c.RemoteAddr(), solicit, func(m *dhcpv6.Message) bool {
		if m.MessageType != dhcpv6.MessageTypeAdvertise {
			return false
		}
		err := checkAdvertise6(m, c.want)
		if err == nil {
			return true
		}
		if se := (*statusError6)(nil); errors.As(err, &se) {
			refused = append(refused, se.Error())
		}
		cfg.logf("dhcpv6 %s: ignoring %v", ifname, err)
		return false
	})
	cancel()
	if err != nil {
		if !timedOut6(err) {
			return nil, err
		}
		if len(refused) > 0 {
			return nil, fmt.Errorf("attempt %d: %w: %s", attempt, errRefused6, strings.Join(refused, "; "))
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("attempt %d: no Advertise before the deadline: %w", attempt, errNoAnswer)
		}
		return nil, fmt.Errorf("attempt %d: no Advertise within %v: %w", attempt, wait.Round(time.Millisecond), errNoAnswer)
	}
	server := duid6(adv)
	offered, _ := pickAddr6(adv, c.want)
	cfg.logf("dhcpv6 %s: ADVERTISE %v from %s", ifname, offered.IPv6Addr, server)

	elapsed = dhcpv6.WithOption(dhcpv6.OptElapsedTime(min(time.Since(start), 0xffff*10*time.Millisecond)))
	rctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	reply, err := c.c.Request(rctx, adv, append([]dhcpv6.Modifier{elapsed}, oro...)...)
	if err != nil {
		if !timedOut6(err) {
			return nil, err
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("attempt %d: no Reply from %s before the deadline: %w", attempt, server, errNoAnswer)
		}
		return nil, fmt.Errorf("attempt %d: no Reply from %s within %v: %w", attempt, server, wait.Round(time.Millisecond), errNoAnswer)
	}
	l, err := lease6FromReply(ifname, reply, c.want)
	if err != nil {
		return nil, fmt.Errorf("attempt %d: %w: %w", attempt, errBadReply6, err)
	}
	return l, nil
}

func timedOut6(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) || errors.Is(err, nclient6.ErrNoResponse)
}

// ApplyV6 adds the lease's address to its interface as a /128 with the
// lease's lifetimes (netlink; the kernel removes the address when the valid
// lifetime ends). Applying the same or a renewed lease again replaces the
// lifetimes. The on-link prefix and the default route are not DHCPv6's
// business: they come from router advertisements, which the kernel handles.
// Duplicate address detection runs on the address as on any other, unless
// the interface has it off.
func ApplyV6(l *Lease6) error {
	if l == nil || !usable6(l.Address) {
		return fmt.Errorf("link: dhcpv6 lease %v: no usable address", l)
	}
	if l.Valid <= 0 || l.Preferred < 0 || l.Preferred > l.Valid {
		return fmt.Errorf("link: %s: address %s: bad lifetimes (preferred %v, valid %v)", l.Interface, l.Address, l.Preferred, l.Valid)
	}
	lk, err := netlink.LinkByName(l.Interface)
	if err != nil {
		return fmt.Errorf("link: %s: %w", l.Interface, err)
	}
	addr := &netlink.Addr{
		IPNet:       &net.IPNet{IP: l.Address.AsSlice(), Mask: net.CIDRMask(128, 128)},
		PreferedLft: seconds6(l.Preferred),
		ValidLft:    seconds6(l.Valid),
		// Optimistic DAD (RFC 4429) when the interface has it on: the
		// address is usable at once while DAD runs; otherwise the kernel
		// ignores the flag and DAD runs as usual.
		Flags: unix.IFA_F_OPTIMISTIC,
	}
	if err := netlink.AddrReplace(lk, addr); err != nil {
		return fmt.Errorf("link: %s: add address %s/128: %w", l.Interface, l.Address, err)
	}
	return nil
}

// seconds6 is a lifetime for IFA_CACHEINFO: whole seconds, rounded up,
// 0xffffffff for infinity.
func seconds6(d time.Duration) int {
	s := uint32(0xffffffff)
	if d < infinite6 {
		s = uint32((d + time.Second - 1) / time.Second)
	}
	return int(s) // on 32-bit, infinity wraps to -1 and netlink's uint32() restores it
}
