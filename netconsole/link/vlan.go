package link

import (
	"errors"
	"fmt"
	"strconv"
)

// ErrVLAN is wrapped by every error about creating a VLAN interface.
var ErrVLAN = errors.New("vlan")

// maxIfname is the longest interface name the kernel takes (IFNAMSIZ-1).
const maxIfname = 15

// VLANName names the VLAN interface for id on parent the way vconfig's
// default does, "<parent>.<id>" ("eth0.100"), or "vlan<id>" when that would
// exceed the kernel's 15 bytes ("enx001122334455.100").
func VLANName(parent string, id int) string {
	if n := parent + "." + strconv.Itoa(id); len(n) <= maxIfname {
		return n
	}
	return "vlan" + strconv.Itoa(id)
}

func checkVLANID(id int) error {
	if id < 1 || id > 4094 {
		return fmt.Errorf("link: %w: id %d out of range 1-4094", ErrVLAN, id)
	}
	return nil
}
