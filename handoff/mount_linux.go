package handoff

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// WaitDevice waits until the device node dev exists (devtmpfs makes it when
// the driver probes the disk) or ctx ends.
func WaitDevice(ctx context.Context, dev string) error {
	for {
		if _, err := os.Stat(dev); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("handoff: root device %s did not appear: %w", dev, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Mount mounts r at dir (made if missing), read-only if r says so, trying
// r.FSTypes in order or, without rootfstype=, every type in available (the
// block file systems of /proc/filesystems). It returns the type that
// mounted.
func Mount(r Root, dir string, available []string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("handoff: mount %s: %w", dir, err)
	}
	types := r.FSTypes
	if len(types) == 0 {
		types = available
	}
	if len(types) == 0 {
		return "", fmt.Errorf("handoff: mount %s: no file system types to try (is the module loaded?)", r.Device)
	}
	var flags uintptr
	if r.ReadOnly {
		flags |= unix.MS_RDONLY
	}
	var errs []string
	for _, t := range types {
		err := unix.Mount(r.Device, dir, t, flags, r.Data)
		if err == nil {
			return t, nil
		}
		errs = append(errs, t+": "+err.Error())
		if errors.Is(err, unix.EACCES) && flags&unix.MS_RDONLY == 0 {
			// A write-protected device: the kernel retries read-only too.
			if err := unix.Mount(r.Device, dir, t, flags|unix.MS_RDONLY, r.Data); err == nil {
				return t, nil
			}
		}
	}
	return "", fmt.Errorf("handoff: mount %s on %s: %s", r.Device, dir, strings.Join(errs, "; "))
}

// Unmount detaches the file system at dir.
func Unmount(dir string) error {
	if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
		return fmt.Errorf("handoff: unmount %s: %w", dir, err)
	}
	return nil
}
