package link

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// fakeSysfs makes <dir>/<ifname>/carrier for each entry ("" = no carrier
// file, as for a link that is down) and a master link for enslaved ones.
func fakeSysfs(t *testing.T, carrier map[string]string, masters map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for n, c := range carrier {
		if err := os.MkdirAll(filepath.Join(dir, n), 0o755); err != nil {
			t.Fatal(err)
		}
		if c != "" {
			if err := os.WriteFile(filepath.Join(dir, n, "carrier"), []byte(c+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	for n, m := range masters {
		if err := os.Symlink("../"+m, filepath.Join(dir, n, "master")); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func leaseFor(ifname string) *Lease {
	return &Lease{Interface: ifname, Address: net.IPNet{IP: ip4("10.0.0.2"), Mask: net.CIDRMask(24, 32)}}
}

func TestFirstLease(t *testing.T) {
	dir := fakeSysfs(t,
		map[string]string{"eth0": "1", "eth1": "1", "eth2": "0", "eth3": "1", "bond0": "1"},
		map[string]string{"eth3": "bond0"})
	var (
		mu        sync.Mutex
		up        []string
		cancelled = map[string]bool{}
		started   = map[string]bool{}
	)
	b := Bringup{
		SysClassNet: dir,
		CarrierWait: 300 * time.Millisecond,
		Up:          func(n string) error { mu.Lock(); up = append(up, n); mu.Unlock(); return nil },
		Logf:        t.Logf,
	}
	dhcp := func(ctx context.Context, ifname string) (*Lease, error) {
		mu.Lock()
		started[ifname] = true
		mu.Unlock()
		switch ifname {
		case "eth1": // the only one with a server, a little slow
			time.Sleep(50 * time.Millisecond)
			return leaseFor(ifname), nil
		default: // silent: waits for its deadline or for cancellation
			<-ctx.Done()
			mu.Lock()
			cancelled[ifname] = true
			mu.Unlock()
			return nil, ErrNoLease
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	t0 := time.Now()
	l, err := b.FirstLease(ctx, []string{"eth0", "eth1", "eth2", "eth3"}, dhcp)
	if err != nil {
		t.Fatalf("FirstLease: %v", err)
	}
	if l.Interface != "eth1" {
		t.Errorf("FirstLease picked %s, want eth1", l.Interface)
	}
	if d := time.Since(t0); d > time.Second {
		t.Errorf("FirstLease took %v; the winner answered after 50ms", d)
	}
	mu.Lock()
	defer mu.Unlock()
	if !cancelled["eth0"] {
		t.Errorf("eth0's DHCP was not cancelled before FirstLease returned")
	}
	if started["eth2"] {
		t.Errorf("eth2 has no carrier but DHCP started on it")
	}
	if started["eth3"] {
		t.Errorf("eth3 is a bond member but DHCP started on it")
	}
	for _, n := range up {
		if n == "eth3" {
			t.Errorf("eth3 (bond member) was set up")
		}
	}
}

func TestFirstLeaseCarrierLate(t *testing.T) {
	dir := fakeSysfs(t, map[string]string{"eth0": ""}, nil)
	go func() {
		time.Sleep(100 * time.Millisecond)
		os.WriteFile(filepath.Join(dir, "eth0", "carrier"), []byte("1\n"), 0o644)
	}()
	b := Bringup{SysClassNet: dir, CarrierWait: 2 * time.Second, Up: func(string) error { return nil }, Logf: t.Logf}
	l, err := b.FirstLease(context.Background(), []string{"eth0"}, func(_ context.Context, n string) (*Lease, error) { return leaseFor(n), nil })
	if err != nil || l.Interface != "eth0" {
		t.Fatalf("FirstLease = %v, %v; want a lease on eth0", l, err)
	}
}

func TestFirstLeaseNone(t *testing.T) {
	dir := fakeSysfs(t, map[string]string{"eth0": "0", "eth1": "1", "eth2": "1", "br0": "1"}, map[string]string{"eth2": "br0"})
	b := Bringup{SysClassNet: dir, CarrierWait: 100 * time.Millisecond, Up: func(string) error { return nil }, Logf: t.Logf}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	t0 := time.Now()
	_, err := b.FirstLease(ctx, []string{"eth0", "eth1", "eth2", "eth9"}, func(ctx context.Context, n string) (*Lease, error) {
		<-ctx.Done()
		return nil, ErrNoLease
	})
	if d := time.Since(t0); d > time.Second {
		t.Errorf("FirstLease took %v with a 300ms deadline", d)
	}
	for _, want := range []error{ErrNoCarrier, ErrNoLease, ErrEnslaved, os.ErrNotExist} {
		if !errors.Is(err, want) {
			t.Errorf("FirstLease error %v does not wrap %v", err, want)
		}
	}
}

func TestFirstLeaseUpFails(t *testing.T) {
	dir := fakeSysfs(t, map[string]string{"eth0": "1"}, nil)
	boom := errors.New("boom")
	b := Bringup{SysClassNet: dir, Up: func(string) error { return boom }}
	_, err := b.FirstLease(context.Background(), []string{"eth0"}, func(context.Context, string) (*Lease, error) {
		t.Error("DHCP ran on a link that failed to come up")
		return nil, nil
	})
	if !errors.Is(err, boom) {
		t.Errorf("FirstLease error = %v, want %v", err, boom)
	}
	if _, err := b.FirstLease(context.Background(), nil, nil); !errors.Is(err, ErrNoInterface) {
		t.Errorf("FirstLease(no candidates) = %v, want %v", err, ErrNoInterface)
	}
}
