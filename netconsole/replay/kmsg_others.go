//go:build !linux

package replay

import (
	"errors"
	"runtime"
)

// Kmsg is /dev/kmsg; it exists on Linux only.
type Kmsg struct{}

// OpenKmsg reports that /dev/kmsg is Linux's.
func OpenKmsg(path string) (*Kmsg, error) {
	return nil, errors.New("replay: /dev/kmsg not implemented on " + runtime.GOOS)
}

// Read is not implemented on this system.
func (k *Kmsg) Read(b []byte) (int, error) { return 0, errors.New("replay: not implemented") }

// Close does nothing.
func (k *Kmsg) Close() error { return nil }
