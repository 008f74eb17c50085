package link

import (
	"errors"
	"os"
	"testing"

	"github.com/lastgasp/lastgasp/netconsole/link/netnstest"
	"github.com/vishvananda/netlink"
)

// TestNetnsAddVLAN creates VLAN interfaces inside a test namespace. It needs
// 802.1Q in this machine's kernel and never loads a module for it (creating
// a VLAN link would make the kernel try): without /sys/module/8021q it skips,
// and the QEMU scenario nic-vlan is the proof on a real Debian kernel.
func TestNetnsAddVLAN(t *testing.T) {
	if _, err := os.Stat("/sys/module/8021q"); err != nil {
		t.Skip("8021q not loaded or built into this kernel; not loading it (scenario nic-vlan covers VLANs in QEMU)")
	}
	a, b := netnstest.New(t), netnstest.New(t)
	aif, bif := netnstest.Ifname("lgv"), netnstest.Ifname("lgw")
	netnstest.Veth(t, a, aif, b, bif)
	err := a.Do(func() error {
		name, err := AddVLAN(aif, 100, "")
		if err != nil {
			return err
		}
		if name != VLANName(aif, 100) {
			t.Errorf("AddVLAN = %q, want %q", name, VLANName(aif, 100))
		}
		l, err := netlink.LinkByName(name)
		if err != nil {
			return err
		}
		v, ok := l.(*netlink.Vlan)
		if !ok || v.VlanId != 100 {
			t.Errorf("%s is %T %+v, want VLAN 100", name, l, l)
		}
		if again, err := AddVLAN(aif, 100, ""); err != nil || again != name {
			t.Errorf("AddVLAN again = %q, %v; want reuse of %s", again, err, name)
		}
		// Same name, other ID: make the clash by hand.
		if err := netlink.LinkDel(l); err != nil {
			return err
		}
		la := netlink.NewLinkAttrs()
		la.Name = name
		// A veth (the tests need veth anyway; no other link type is
		// assumed, so nothing makes the kernel look for a module).
		if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: la, PeerName: netnstest.Ifname("lgp")}); err != nil {
			return err
		}
		if _, err := AddVLAN(aif, 100, ""); !errors.Is(err, ErrVLAN) {
			t.Errorf("AddVLAN over a veth named %s = %v, want ErrVLAN", name, err)
		}
		if _, err := AddVLAN("nosuch0", 100, ""); !errors.Is(err, ErrVLAN) {
			t.Errorf("AddVLAN(nosuch0) = %v, want ErrVLAN", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
