package agent

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/lastgasp/lastgasp/netconsole/link"
)

// fakeV6 is one side of the race ipv6Source runs: a result after a delay,
// or nothing until the context ends (block).
type fakeV6 struct {
	after time.Duration
	block bool
	lease *link.Lease6
	err   error
}

func (f fakeV6) wait(ctx context.Context) error {
	if f.block {
		<-ctx.Done()
		return ctx.Err()
	}
	select {
	case <-time.After(f.after):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func TestIPv6SourceAddress(t *testing.T) {
	slaac := netip.MustParsePrefix("fd00:1::5054:ff:fe00:1/64")
	leased := netip.MustParseAddr("fd00:1::100")
	lease := &link.Lease6{Address: leased, ServerID: "00:01:02", LogServers: []netip.Addr{netip.MustParseAddr("fd00:1::1")}}
	own := &link.Lease6{Address: slaac.Addr(), ServerID: "00:01:09"}
	info := &link.Lease6{ServerID: "00:01:03", LogServers: []netip.Addr{netip.MustParseAddr("fd00:1::2")}}
	errNoAddrs := errors.New("NoAddrsAvail")
	for _, tc := range []struct {
		name      string
		needLease bool
		slaac     fakeV6 // its lease field unused; err is SLAAC's error
		dhcp      fakeV6
		info      fakeV6
		// want
		wantErr   bool
		wantLease *link.Lease6
		wantHow   string // substring
	}{
		{name: "slaac wins, no lease wanted", slaac: fakeV6{after: time.Millisecond}, dhcp: fakeV6{block: true},
			wantHow: "SLAAC by the kernel"},
		{name: "dhcpv6 lease is the address", needLease: true, slaac: fakeV6{after: 20 * time.Millisecond},
			dhcp: fakeV6{after: time.Millisecond, lease: lease}, wantLease: lease, wantHow: "SLAAC by the kernel"},
		{name: "the address came from the DHCPv6 lease", slaac: fakeV6{after: 10 * time.Millisecond},
			dhcp: fakeV6{after: time.Millisecond, lease: own}, wantLease: own, wantHow: "DHCPv6 from 00:01:09"},
		{name: "lease wanted, arrives within grace", needLease: true, slaac: fakeV6{after: time.Millisecond},
			dhcp: fakeV6{after: 30 * time.Millisecond, lease: lease}, wantLease: lease},
		{name: "lease wanted, none within grace: information-request", needLease: true,
			slaac: fakeV6{after: time.Millisecond}, dhcp: fakeV6{block: true},
			info: fakeV6{after: time.Millisecond, lease: info}, wantLease: info},
		{name: "refused at once: stateless, options by information-request", needLease: true,
			slaac: fakeV6{after: 30 * time.Millisecond}, dhcp: fakeV6{after: time.Millisecond, err: errNoAddrs},
			info: fakeV6{after: time.Millisecond, lease: info}, wantLease: info},
		{name: "lease wanted, nothing answers: address kept, why said", needLease: true,
			slaac: fakeV6{after: time.Millisecond}, dhcp: fakeV6{block: true}, info: fakeV6{block: true},
			wantHow: "dhcpv6 (for receivers in option 65001)"},
		{name: "no address at all", slaac: fakeV6{block: true}, dhcp: fakeV6{block: true}, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := ipv6Source{
				SLAAC: func(ctx context.Context, ifname string) (netip.Prefix, error) {
					if err := tc.slaac.wait(ctx); err != nil {
						return netip.Prefix{}, err
					}
					return slaac, tc.slaac.err
				},
				Lease: func(ctx context.Context, ifname string) (*link.Lease6, error) {
					if err := tc.dhcp.wait(ctx); err != nil {
						return nil, err
					}
					if tc.dhcp.err != nil {
						return nil, tc.dhcp.err
					}
					return tc.dhcp.lease, nil
				},
				Info: func(ctx context.Context, ifname string) (*link.Lease6, error) {
					if err := tc.info.wait(ctx); err != nil {
						return nil, err
					}
					if tc.info.lease == nil {
						return nil, errors.New("no info")
					}
					return tc.info.lease, nil
				},
				After: time.After,
				Wait:  300 * time.Millisecond, Grace: 60 * time.Millisecond, InfoWait: 40 * time.Millisecond,
				Option: 65001,
				Logf:   t.Logf,
			}
			p, l, how, err := s.Address(context.Background(), "eth0", tc.needLease)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("Address = %v %v %q, want an error", p, l, how)
				}
				return
			}
			if err != nil {
				t.Fatalf("Address: %v", err)
			}
			if p != slaac {
				t.Errorf("prefix %v, want %v", p, slaac)
			}
			if l != tc.wantLease {
				t.Errorf("lease %v, want %v", l, tc.wantLease)
			}
			if !strings.Contains(how, tc.wantHow) {
				t.Errorf("how %q, want it to contain %q", how, tc.wantHow)
			}
		})
	}
}

// TestIPv6SourceGraceClock drives the grace period with the injected clock:
// the lease never comes, and the Information-request starts only once the
// clock says the grace is over, not after the real Grace.
func TestIPv6SourceGraceClock(t *testing.T) {
	slaac := netip.MustParsePrefix("fd00:1::1/64")
	tick := make(chan time.Time)
	infoAsked := make(chan struct{}, 1)
	s := ipv6Source{
		SLAAC: func(context.Context, string) (netip.Prefix, error) { return slaac, nil },
		Lease: func(ctx context.Context, _ string) (*link.Lease6, error) { <-ctx.Done(); return nil, ctx.Err() },
		Info: func(context.Context, string) (*link.Lease6, error) {
			infoAsked <- struct{}{}
			return &link.Lease6{ServerID: "x"}, nil
		},
		After: func(d time.Duration) <-chan time.Time {
			if d != time.Hour {
				t.Errorf("grace asked for %v, want the configured %v", d, time.Hour)
			}
			return tick
		},
		Wait: 10 * time.Second, Grace: time.Hour, InfoWait: time.Second,
		Logf: t.Logf,
	}
	done := make(chan error, 1)
	go func() {
		_, l, _, err := s.Address(context.Background(), "eth0", true)
		if err == nil && l == nil {
			err = errors.New("no options from the information-request")
		}
		done <- err
	}()
	select {
	case <-infoAsked:
		t.Fatal("information-request before the clock ended the grace")
	case <-time.After(50 * time.Millisecond):
	}
	tick <- time.Now()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
