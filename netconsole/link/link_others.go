//go:build !linux

package link

import (
	"errors"
	"fmt"
	"runtime"
)

// ErrNoLease is returned (wrapped) when no usable DHCPACK arrived before the
// deadline. The DHCP client is implemented on Linux only.
var ErrNoLease = errors.New("no DHCP lease")

// Up sets the interface administratively up: implemented on Linux only, so
// that the pure parts of this package (ParseIPArg, FromACK, VLANName) and
// the image builder that uses them build everywhere.
func Up(ifname string) error {
	return fmt.Errorf("link: set %s up: not implemented on %s: %w", ifname, runtime.GOOS, errors.ErrUnsupported)
}
