package replay

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// Kmsg is /dev/kmsg opened for reading from its oldest record, without
// blocking: os.File would park a read of a pollable device in the runtime
// poller until a new record arrives instead of reporting EAGAIN at the end.
type Kmsg struct {
	fd int
}

// OpenKmsg opens path (normally /dev/kmsg) at its oldest record.
func OpenKmsg(path string) (*Kmsg, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("replay: open %s: %w", path, err)
	}
	return &Kmsg{fd: fd}, nil
}

// Read reads one record; unix.EAGAIN at the end, unix.EPIPE when records
// were overwritten since the last read (the next read returns the oldest
// record left).
func (k *Kmsg) Read(b []byte) (int, error) {
	for {
		n, err := unix.Read(k.fd, b)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 0, err
		}
		return n, nil
	}
}

// Close closes the file.
func (k *Kmsg) Close() error { return unix.Close(k.fd) }
