package netnstest

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// NS is a network namespace that lives until the test that made it ends.
type NS struct {
	h  netns.NsHandle
	NL *netlink.Handle // netlink sockets opened inside the namespace
}

// ErrNoPrivilege is returned (wrapped) by Create without CAP_NET_ADMIN.
var ErrNoPrivilege = errors.New("creating a network namespace needs CAP_NET_ADMIN")

// New creates an empty network namespace (only a down loopback) and
// arranges for its removal. It skips the test without CAP_NET_ADMIN.
func New(t testing.TB) *NS {
	t.Helper()
	n, err := Create()
	if errors.Is(err, ErrNoPrivilege) {
		t.Skipf("netnstest: %v", err)
	}
	if err != nil {
		t.Fatalf("netnstest: %v", err)
	}
	t.Cleanup(n.Close)
	return n
}

// Create is New for programs that are not tests (the QEMU scenario runner):
// the caller must Close the namespace. Without CAP_NET_ADMIN the error
// wraps ErrNoPrivilege.
func Create() (*NS, error) {
	var (
		h         netns.NsHandle = -1
		err       error
		restoreOK = true
	)
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread()
		orig, e := netns.Get()
		if e != nil {
			runtime.UnlockOSThread()
			err = e
			return
		}
		defer orig.Close()
		if err = unix.Unshare(unix.CLONE_NEWNET); err != nil {
			// The thread never left its namespace.
			runtime.UnlockOSThread()
			return
		}
		h, err = netns.Get() // this thread is now in the new namespace
		if e := netns.Set(orig); e != nil {
			// Leave the thread locked: it is destroyed with this goroutine.
			if h.IsOpen() {
				h.Close()
			}
			err = fmt.Errorf("netnstest: restore namespace: %w (after %v)", e, err)
			h, restoreOK = -1, false
			return
		}
		runtime.UnlockOSThread()
	}()
	<-done
	if err != nil {
		if restoreOK && (errors.Is(err, os.ErrPermission) || errors.Is(err, syscall.EPERM)) {
			return nil, fmt.Errorf("netnstest: %w: %v", ErrNoPrivilege, err)
		}
		return nil, fmt.Errorf("netnstest: new namespace: %w", err)
	}
	nl, err := netlink.NewHandleAt(h)
	if err != nil {
		h.Close()
		return nil, fmt.Errorf("netnstest: netlink handle: %w", err)
	}
	return &NS{h: h, NL: nl}, nil
}

// Close releases the namespace; it vanishes once no process runs in it.
func (n *NS) Close() {
	n.NL.Close()
	n.h.Close()
}

// Do runs fn on an OS thread that is inside n, so that sockets fn opens and
// netlink requests it makes belong to n (goroutines fn starts do not run in
// n, but sockets opened here stay bound to it). fn must not call t.Fatal.
func (n *NS) Do(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("netnstest: current namespace: %w", err)
			return
		}
		defer orig.Close()
		if err := netns.Set(n.h); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("netnstest: enter namespace: %w", err)
			return
		}
		var ferr error
		defer func() {
			if err := netns.Set(orig); err != nil {
				// Keep the thread locked: it dies with this goroutine
				// instead of running other code in the wrong namespace.
				errc <- errors.Join(ferr, fmt.Errorf("netnstest: restore namespace: %w", err))
				return
			}
			runtime.UnlockOSThread()
			errc <- ferr
		}()
		if cur, err := netns.Get(); err != nil || !cur.Equal(n.h) {
			ferr = fmt.Errorf("netnstest: thread is not in the namespace after setns (%v)", err)
			if err == nil {
				cur.Close()
			}
			return
		} else {
			cur.Close()
		}
		ferr = fn()
	}()
	return <-errc
}

// Start starts cmd inside n (forked from a thread in n), checks that it
// really runs there, and kills it when the test ends.
func (n *NS) Start(t testing.TB, cmd *exec.Cmd) {
	t.Helper()
	if err := n.Do(cmd.Start); err != nil {
		t.Fatalf("netnstest: start %s: %v", cmd.Path, err)
	}
	stop := func() { cmd.Process.Kill(); cmd.Wait() }
	ph, err := netns.GetFromPid(cmd.Process.Pid)
	if err != nil {
		stop()
		t.Fatalf("netnstest: namespace of %s: %v", cmd.Path, err)
	}
	same := ph.Equal(n.h)
	ph.Close()
	if !same {
		stop()
		t.Fatalf("netnstest: %s did not start inside the test namespace", cmd.Path)
	}
	t.Cleanup(stop)
}

// Ifname returns a random interface name with the given prefix (at most 8
// bytes): names that exist in no other namespace, so that code run in the
// wrong namespace by mistake fails instead of touching a real interface.
func Ifname(prefix string) string {
	b := make([]byte, 3)
	rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// Veth creates a veth pair, aname in a and bname in b, both up.
func Veth(t testing.TB, a *NS, aname string, b *NS, bname string) {
	t.Helper()
	if err := AddVeth(a, aname, b, bname); err != nil {
		t.Fatal(err)
	}
}

// AddVeth is Veth for programs that are not tests.
func AddVeth(a *NS, aname string, b *NS, bname string) error {
	v := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: aname}, PeerName: bname, PeerNamespace: netlink.NsFd(b.h)}
	if err := a.NL.LinkAdd(v); err != nil {
		return fmt.Errorf("netnstest: veth %s/%s: %w", aname, bname, err)
	}
	for _, x := range []struct {
		ns   *NS
		name string
	}{{a, aname}, {b, bname}} {
		l, err := x.ns.NL.LinkByName(x.name)
		if err == nil {
			err = x.ns.NL.LinkSetUp(l)
		}
		if err != nil {
			return fmt.Errorf("netnstest: %s up: %w", x.name, err)
		}
	}
	return nil
}

// Link returns ifname in n.
func (n *NS) Link(t testing.TB, ifname string) netlink.Link {
	t.Helper()
	l, err := n.NL.LinkByName(ifname)
	if err != nil {
		t.Fatalf("netnstest: link %s: %v", ifname, err)
	}
	return l
}

// LinkUp sets ifname in n up.
func (n *NS) LinkUp(t testing.TB, ifname string) {
	t.Helper()
	if err := n.NL.LinkSetUp(n.Link(t, ifname)); err != nil {
		t.Fatalf("netnstest: %s up: %v", ifname, err)
	}
}

// MAC returns ifname's hardware address in n.
func (n *NS) MAC(t testing.TB, ifname string) net.HardwareAddr {
	t.Helper()
	return n.Link(t, ifname).Attrs().HardwareAddr
}

// Addr adds cidr (e.g. "10.1.0.1/24") to ifname in n.
func (n *NS) Addr(t testing.TB, ifname, cidr string) {
	t.Helper()
	a, err := netlink.ParseAddr(cidr)
	if err != nil {
		t.Fatalf("netnstest: %v", err)
	}
	if err := n.NL.AddrAdd(n.Link(t, ifname), a); err != nil {
		t.Fatalf("netnstest: %s add %s: %v", ifname, cidr, err)
	}
}

// DefaultRoute adds a default route via gw in n.
func (n *NS) DefaultRoute(t testing.TB, gw string) {
	t.Helper()
	if err := n.NL.RouteAdd(&netlink.Route{Gw: net.ParseIP(gw)}); err != nil {
		t.Fatalf("netnstest: default via %s: %v", gw, err)
	}
}

// WaitCarrier waits until ifname in n reports lower-layer up.
func (n *NS) WaitCarrier(t testing.TB, ifname string, wait time.Duration) {
	t.Helper()
	end := time.Now().Add(wait)
	for {
		if n.Link(t, ifname).Attrs().RawFlags&(1<<16) != 0 { // IFF_LOWER_UP
			return
		}
		if time.Now().After(end) {
			t.Fatalf("netnstest: %s: no carrier after %v", ifname, wait)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Carrier reports whether ifname in n is lower-layer up (for link.Bringup).
func (n *NS) Carrier(ifname string) (bool, error) {
	l, err := n.NL.LinkByName(ifname)
	if err != nil {
		return false, err
	}
	return l.Attrs().RawFlags&(1<<16) != 0, nil
}
