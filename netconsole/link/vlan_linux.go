package link

import (
	"errors"
	"fmt"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// AddVLAN creates the 802.1Q interface for id on parent, named name (or by
// VLANName if name is ""), sets it up and returns its name. An existing VLAN interface of
// that name on the same parent with the same ID is reused; anything else of
// that name is an error. The kernel must have 8021q loaded (or built in):
// AddVLAN does not load modules, so the caller decides what may be loaded.
func AddVLAN(parent string, id int, name string) (string, error) {
	if err := checkVLANID(id); err != nil {
		return "", err
	}
	p, err := netlink.LinkByName(parent)
	if err != nil {
		return "", fmt.Errorf("link: %w: parent %s: %w", ErrVLAN, parent, err)
	}
	if name == "" {
		name = VLANName(parent, id)
	}
	if len(name) > maxIfname {
		return "", fmt.Errorf("link: %w: name %q longer than %d bytes", ErrVLAN, name, maxIfname)
	}
	la := netlink.NewLinkAttrs()
	la.Name = name
	la.ParentIndex = p.Attrs().Index
	v := &netlink.Vlan{LinkAttrs: la, VlanId: id, VlanProtocol: netlink.VLAN_PROTOCOL_8021Q}
	switch err := netlink.LinkAdd(v); {
	case errors.Is(err, unix.EEXIST):
		l, lerr := netlink.LinkByName(name)
		if lerr != nil {
			return "", fmt.Errorf("link: %w: %s exists but cannot be read: %w", ErrVLAN, name, lerr)
		}
		ev, ok := l.(*netlink.Vlan)
		if !ok || ev.VlanId != id || ev.Attrs().ParentIndex != p.Attrs().Index {
			return "", fmt.Errorf("link: %w: %s exists and is not VLAN %d on %s", ErrVLAN, name, id, parent)
		}
	case errors.Is(err, unix.EOPNOTSUPP):
		return "", fmt.Errorf("link: %w: %s on %s: the kernel has no 802.1Q support (module 8021q not loaded): %w", ErrVLAN, name, parent, err)
	case err != nil:
		return "", fmt.Errorf("link: %w: add %s (id %d on %s): %w", ErrVLAN, name, id, parent, err)
	}
	if err := Up(name); err != nil {
		return "", fmt.Errorf("link: %w: %w", ErrVLAN, err)
	}
	return name, nil
}
