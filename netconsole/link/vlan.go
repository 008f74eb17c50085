package link

import (
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
)

// ErrVLAN is wrapped by every error about creating a VLAN interface.
var ErrVLAN = errors.New("vlan")

// maxIfname is the longest interface name the kernel takes (IFNAMSIZ-1).
const maxIfname = 15

// VLANName names the VLAN interface for id on parent the way vconfig's
// default does, "<parent>.<id>" ("eth0.100"). When that would exceed the
// kernel's 15 bytes ("enp129s0f0np0.100") the parent is replaced by "v" and
// a hash of its name ("v1a2b3c4d.100"), so that two long-named parents
// never compete for one name.
func VLANName(parent string, id int) string {
	if n := parent + "." + strconv.Itoa(id); len(n) <= maxIfname {
		return n
	}
	h := fnv.New32a()
	h.Write([]byte(parent))
	return fmt.Sprintf("v%08x.%d", h.Sum32(), id)
}

func checkVLANID(id int) error {
	if id < 1 || id > 4094 {
		return fmt.Errorf("link: %w: id %d out of range 1-4094", ErrVLAN, id)
	}
	return nil
}
