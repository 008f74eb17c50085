package link

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv6"
)

// DHCPv6Info runs a stateless DHCPv6 exchange (RFC 8415 section 18.2.6:
// Information-request, Reply) on ifname for options only, for networks
// whose routers say "other configuration" and whose addresses come from
// SLAAC: servers there refuse Solicits (NoAddrsAvail) but answer this. It
// retries with the same backoff as DHCPv6 under ctx's deadline. The result
// is a Lease6 without an Address; with WithLogServerOption6 its LogServers
// (or LogServersErr) hold the site option. Errors wrap ErrNoLease when no
// usable Reply came before ctx ended.
func DHCPv6Info(ctx context.Context, ifname string, opts ...DHCPv6Option) (*Lease6, error) {
	cfg := dhcp6Config{first: DefaultFirstWait, max: DefaultMaxWait, poll: linkLocalPoll, logf: func(string, ...any) {}}
	for _, o := range opts {
		o(&cfg)
	}
	start := time.Now()
	c, err := open6(ctx, &cfg, ifname)
	if err != nil {
		if ctx.Err() != nil {
			return nil, noLease6(ifname, 0, time.Since(start), err)
		}
		return nil, fmt.Errorf("link: %s: dhcpv6: %w", ifname, err)
	}
	defer c.close()
	oro := []dhcpv6.OptionCode{dhcpv6.OptionDNSRecursiveNameServer}
	if cfg.logCode != 0 {
		oro = append(oro, dhcpv6.OptionCode(cfg.logCode))
	}
	wait := cfg.first
	var last error
	for attempt := 1; ; attempt++ {
		if ctx.Err() != nil {
			return nil, noLease6(ifname, attempt-1, time.Since(start), last)
		}
		m, err := dhcpv6.NewMessage(
			dhcpv6.WithClientID(c.duid),
			dhcpv6.WithOption(dhcpv6.OptElapsedTime(min(time.Since(start), 0xffff*10*time.Millisecond))),
			dhcpv6.WithRequestedOptions(oro...),
		)
		if err != nil {
			return nil, fmt.Errorf("link: %s: dhcpv6: %w", ifname, err)
		}
		m.MessageType = dhcpv6.MessageTypeInformationRequest
		rctx, cancel := context.WithTimeout(ctx, jitter(wait))
		reply, err := c.c.SendAndRead(rctx, c.c.RemoteAddr(), m, func(r *dhcpv6.Message) bool {
			return r.MessageType == dhcpv6.MessageTypeReply && r.TransactionID == m.TransactionID
		})
		cancel()
		if err == nil {
			l, perr := info6FromReply(ifname, reply, c.want)
			if perr == nil {
				cfg.logf("dhcpv6 %s: information REPLY %s after %v (attempt %d)", ifname, l, time.Since(start).Round(time.Millisecond), attempt)
				return l, nil
			}
			err = perr
		} else if timedOut6(err) {
			err = fmt.Errorf("attempt %d: no Reply to Information-request within %v: %w", attempt, wait.Round(time.Millisecond), errNoAnswer)
		}
		last = err
		cfg.logf("dhcpv6 %s: %v", ifname, err)
		if !errors.Is(err, errNoAnswer) {
			t := time.NewTimer(jitter(wait))
			select {
			case <-ctx.Done():
				t.Stop()
				return nil, noLease6(ifname, attempt, time.Since(start), last)
			case <-t.C:
			}
		}
		wait = min(2*wait, cfg.max)
	}
}
