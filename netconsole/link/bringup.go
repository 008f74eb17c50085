package link

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// ErrNoCarrier is returned (wrapped) for a candidate whose link did not come
// up within the carrier wait.
var ErrNoCarrier = errors.New("no carrier")

// ErrEnslaved is returned (wrapped) for a candidate that is a member of a
// bond, bridge or team: its master carries the traffic, not it.
var ErrEnslaved = errors.New("member of another interface")

// DefaultCarrierWait bounds how long a candidate may take to report carrier.
const DefaultCarrierWait = 5 * time.Second

// Bringup tries several candidate interfaces at once. The zero value uses
// /sys/class/net, DefaultCarrierWait, Up, and reads carrier from sysfs.
type Bringup struct {
	SysClassNet string        // sysfs net class directory; default /sys/class/net
	CarrierWait time.Duration // per candidate; default DefaultCarrierWait

	// Up sets a candidate administratively up; default Up. Carrier reports
	// whether it has carrier; default: SysClassNet/<ifname>/carrier is "1".
	Up      func(ifname string) error
	Carrier func(ifname string) (bool, error)

	// Logf receives one line per candidate decision; default silent.
	Logf func(format string, args ...any)
}

// FirstLease is Bringup{}.FirstLease.
func FirstLease(ctx context.Context, ifnames []string, dhcp func(ctx context.Context, ifname string) (*Lease, error)) (*Lease, error) {
	return Bringup{}.FirstLease(ctx, ifnames, dhcp)
}

// FirstLease works on all candidates concurrently: it skips bond, bridge and
// team members (a sysfs "master" link), sets each link up, waits for carrier
// (at most CarrierWait), then runs dhcp. The first lease wins; the other
// attempts are cancelled and FirstLease waits for them to return before it
// does. If none gets a lease, the error joins every candidate's reason (so
// errors.Is works with ErrNoLease, ErrNoCarrier and ErrEnslaved).
func (b Bringup) FirstLease(ctx context.Context, ifnames []string, dhcp func(ctx context.Context, ifname string) (*Lease, error)) (*Lease, error) {
	if len(ifnames) == 0 {
		return nil, fmt.Errorf("link: %w", ErrNoInterface)
	}
	if b.SysClassNet == "" {
		b.SysClassNet = "/sys/class/net"
	}
	if b.CarrierWait <= 0 {
		b.CarrierWait = DefaultCarrierWait
	}
	if b.Up == nil {
		b.Up = Up
	}
	if b.Carrier == nil {
		b.Carrier = b.sysfsCarrier
	}
	if b.Logf == nil {
		b.Logf = func(string, ...any) {}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		lease *Lease
		err   error
	}
	results := make(chan result, len(ifnames))
	var wg sync.WaitGroup
	for _, ifname := range ifnames {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l, err := b.one(ctx, ifname, dhcp)
			results <- result{l, err}
		}()
	}
	go func() { wg.Wait(); close(results) }()
	var (
		won  *Lease
		errs []error
	)
	for r := range results {
		switch {
		case r.err == nil && r.lease != nil && won == nil:
			won = r.lease
			b.Logf("link: %s got the first lease; cancelling the other candidates", won.Interface)
			cancel()
		case r.err == nil && r.lease != nil:
			b.Logf("link: %s: lease %s dropped, %s was first", r.lease.Interface, r.lease.Address.String(), won.Interface)
		case r.err != nil && won == nil:
			errs = append(errs, r.err)
		}
	}
	if won != nil {
		return won, nil
	}
	if ctx.Err() != nil && len(errs) == 0 {
		return nil, fmt.Errorf("link: candidates %v: %w", ifnames, ctx.Err())
	}
	return nil, fmt.Errorf("link: no lease on any of %v: %w", ifnames, errors.Join(errs...))
}

func (b Bringup) one(ctx context.Context, ifname string, dhcp func(context.Context, string) (*Lease, error)) (*Lease, error) {
	t0 := time.Now()
	if _, err := os.Lstat(filepath.Join(b.SysClassNet, ifname)); err != nil {
		return nil, fmt.Errorf("link: %s: %w", ifname, err)
	}
	if m, err := os.Readlink(filepath.Join(b.SysClassNet, ifname, "master")); err == nil {
		b.Logf("link: %s: skipped, member of %s", ifname, filepath.Base(m))
		return nil, fmt.Errorf("link: %s: %w %s", ifname, ErrEnslaved, filepath.Base(m))
	}
	if err := b.Up(ifname); err != nil {
		return nil, err
	}
	if err := b.waitCarrier(ctx, ifname); err != nil {
		b.Logf("%v", err)
		return nil, err
	}
	b.Logf("link: %s: carrier after %v; starting DHCP", ifname, time.Since(t0).Round(time.Millisecond))
	l, err := dhcp(ctx, ifname)
	if err != nil {
		return nil, err
	}
	if l == nil {
		return nil, fmt.Errorf("link: %s: dhcp returned no lease", ifname)
	}
	return l, nil
}

func (b Bringup) waitCarrier(ctx context.Context, ifname string) error {
	deadline := time.NewTimer(b.CarrierWait)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		ok, err := b.Carrier(ifname)
		if ok {
			return nil
		}
		if err != nil {
			last = err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("link: %s: waiting for carrier: %w", ifname, ctx.Err())
		case <-deadline.C:
			if last != nil {
				return fmt.Errorf("link: %s: %w after %v: %v", ifname, ErrNoCarrier, b.CarrierWait, last)
			}
			return fmt.Errorf("link: %s: %w after %v", ifname, ErrNoCarrier, b.CarrierWait)
		case <-tick.C:
		}
	}
}

// sysfsCarrier reads <SysClassNet>/<ifname>/carrier; the kernel refuses the
// read (EINVAL) while the link is administratively down.
func (b Bringup) sysfsCarrier(ifname string) (bool, error) {
	v, err := os.ReadFile(filepath.Join(b.SysClassNet, ifname, "carrier"))
	if err != nil {
		return false, err
	}
	return strings.TrimSpace(string(v)) == "1", nil
}
