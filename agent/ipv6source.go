package agent

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/lastgasp/lastgasp/boards"
	"github.com/lastgasp/lastgasp/netconsole/link"
	"github.com/lastgasp/lastgasp/netconsole/nexthop"
)

// ipv6Source gets an interface a usable global IPv6 address: SLAAC (the
// kernel's, from router advertisements, helped along by router
// solicitations) and DHCPv6 (IA_NA, for networks whose routers say
// "managed") race, and the first usable address wins. Its parts and its
// clock are fields, so that tests can drive the race.
type ipv6Source struct {
	// SLAAC waits for a usable global address on ifname
	// (nexthop.WaitGlobalIPv6).
	SLAAC func(ctx context.Context, ifname string) (netip.Prefix, error)
	// Solicit sends router solicitations once the link is up; it runs
	// alongside until ctx ends.
	Solicit func(ctx context.Context, ifname string)
	// Lease runs a DHCPv6 exchange for an address and applies it.
	Lease func(ctx context.Context, ifname string) (*link.Lease6, error)
	// Info asks for the options alone (Information-request): stateless
	// DHCPv6, the address being SLAAC's.
	Info func(ctx context.Context, ifname string) (*link.Lease6, error)
	// After is the clock of the grace period (time.After).
	After func(time.Duration) <-chan time.Time
	// Wait bounds it all (ipv6Wait), Grace is how long a wanted lease is
	// still waited for once SLAAC has an address (dhcpv6Grace), InfoWait
	// bounds the Information-request then (dhcpv6InfoWait).
	Wait, Grace, InfoWait time.Duration
	// Option is the DHCPv6 receiver option, for the logs.
	Option int
	Logf   func(format string, args ...any)
}

// ipv6 returns the agent's ipv6Source for board b; with needLease (and a
// receiver.dhcp6_option) DHCPv6 asks for the receiver option.
func (a *agent) ipv6(b *boards.Board, needLease bool) ipv6Source {
	opts := []link.DHCPv6Option{link.WithLogf6(a.Log.Debugf)}
	if needLease && b.ReceiverOption6 != 0 {
		opts = append(opts, link.WithLogServerOption6(uint16(b.ReceiverOption6)))
	}
	return ipv6Source{
		SLAAC:   nexthop.WaitGlobalIPv6,
		Solicit: a.solicitRouters,
		Lease: func(ctx context.Context, ifname string) (*link.Lease6, error) {
			l, err := link.DHCPv6(ctx, ifname, opts...)
			if err != nil {
				return l, err
			}
			a.Log.Infof("dhcpv6: %s", l)
			return l, link.ApplyV6(l)
		},
		Info: func(ctx context.Context, ifname string) (*link.Lease6, error) {
			return link.DHCPv6Info(ctx, ifname, opts...)
		},
		After: time.After,
		Wait:  ipv6Wait, Grace: dhcpv6Grace, InfoWait: dhcpv6InfoWait,
		Option: b.ReceiverOption6,
		Logf:   a.Log.Infof,
	}
}

// Address gets ifname an address within Wait. With needLease the DHCPv6
// lease is waited for even when SLAAC wins, for its receiver option, but
// for at most Grace (then an Information-request, for at most InfoWait).
// how says where the address came from.
func (s ipv6Source) Address(ctx context.Context, ifname string, needLease bool) (netip.Prefix, *link.Lease6, string, error) {
	ctx6, cancel := context.WithTimeout(ctx, s.Wait)
	defer cancel()
	if s.Solicit != nil {
		go s.Solicit(ctx6, ifname)
	}
	type result6 struct {
		l   *link.Lease6
		err error
	}
	dctx, dcancel := context.WithCancel(ctx6)
	defer dcancel()
	res := make(chan result6, 1)
	go func() {
		l, err := s.Lease(dctx, ifname)
		if err != nil && l == nil && needLease && dctx.Err() == nil {
			// Refused at once (NoAddrsAvail): a stateless DHCPv6 network,
			// addresses by SLAAC, options by Information-request.
			li, ierr := s.Info(dctx, ifname)
			if ierr == nil {
				s.Logf("dhcpv6: %s (stateless; the address is SLAAC's)", li)
				l, err = li, nil
			} else {
				err = fmt.Errorf("%w; information-request: %w", err, ierr)
			}
		}
		res <- result6{l, err}
	}()
	p, err := s.SLAAC(ctx6, ifname)
	var r result6
	stopped := false // DHCPv6 cancelled here: its error says nothing
	switch {
	case needLease && err == nil:
		// SLAAC won; the lease is wanted for its receiver option, but a
		// network without DHCPv6 must not hold the boot for long.
		select {
		case r = <-res:
		case <-s.After(s.Grace):
			dcancel()
			r = <-res // may have succeeded just as the grace ended
			if r.err != nil {
				// Stateless servers may ignore Solicits (RFC 8415
				// section 6.1): ask for the options alone, briefly.
				ictx, icancel := context.WithTimeout(ctx6, s.InfoWait)
				li, ierr := s.Info(ictx, ifname)
				icancel()
				if ierr == nil {
					s.Logf("dhcpv6: %s (stateless; the address is SLAAC's)", li)
					r = result6{li, nil}
				} else {
					r.err = fmt.Errorf("no lease within %v of the SLAAC address: %w; information-request: %w", s.Grace, r.err, ierr)
				}
			}
		}
	case needLease:
		r = <-res // bounded by ctx6
	default:
		stopped = dctx.Err() == nil // not already over by ctx6's deadline
		dcancel()
		r = <-res
	}
	if err != nil {
		if r.err != nil && !stopped {
			err = fmt.Errorf("%w; dhcpv6: %w", err, r.err)
		}
		return p, r.l, "", err
	}
	how := "SLAAC by the kernel"
	if r.err == nil && r.l != nil && r.l.Address == p.Addr() {
		how = "DHCPv6 from " + r.l.ServerID
	}
	if needLease && r.err != nil {
		how += fmt.Sprintf("; dhcpv6 (for receivers in option %d): %v", s.Option, r.err)
		r.l = nil
	}
	return p, r.l, how, nil
}
