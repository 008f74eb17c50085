package handoff

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/lastgasp/lastgasp/boards"
)

// DefaultInits are the programs the kernel tries, in order, when the command
// line names no init= (init/main.c).
var DefaultInits = []string{"/sbin/init", "/etc/init", "/bin/init", "/bin/sh"}

// ErrNoRoot is returned by ParseRoot when the command line has no root=.
var ErrNoRoot = errors.New("handoff: no root= on the kernel command line")

// ErrUnsupportedRoot is wrapped when root= names a device in a form the agent
// does not resolve (LABEL=, UUID=, PARTUUID=, major:minor).
var ErrUnsupportedRoot = errors.New("unsupported root= form (want /dev/<name>)")

// Root is the real root file system as the kernel command line describes it.
type Root struct {
	Device   string        // root=, a /dev path
	FSTypes  []string      // rootfstype= (comma-separated); empty: try every block file system
	Data     string        // rootflags=, passed to mount(2) as data
	ReadOnly bool          // ro (the default) or rw; the last one wins
	Init     string        // init=; empty: try DefaultInits
	InitArgs []string      // arguments after "--", for init
	Wait     bool          // rootwait: wait for the device to appear
	Delay    time.Duration // rootdelay=N seconds before mounting
}

// ParseRoot reads the root file system arguments of a kernel command line.
func ParseRoot(cmdline string) (Root, error) {
	r := Root{ReadOnly: true}
	var found bool
	args := boards.CmdlineArgs(cmdline)
	for i, a := range args {
		if a == "--" {
			r.InitArgs = append([]string(nil), args[i+1:]...)
			break
		}
		k, v, hasVal := strings.Cut(a, "=")
		switch {
		case k == "ro" && !hasVal:
			r.ReadOnly = true
		case k == "rw" && !hasVal:
			r.ReadOnly = false
		case k == "rootwait" && !hasVal:
			r.Wait = true
		case k == "root" && hasVal:
			r.Device, found = v, true
		case k == "rootfstype" && hasVal:
			r.FSTypes = nil
			for _, t := range strings.Split(v, ",") {
				if t != "" {
					r.FSTypes = append(r.FSTypes, t)
				}
			}
		case k == "rootflags" && hasVal:
			r.Data = v
		case k == "init" && hasVal:
			r.Init = v
		case k == "rootdelay" && hasVal:
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n > 3600 {
				return r, fmt.Errorf("handoff: rootdelay=%q: want seconds 0-3600", v)
			}
			r.Delay = time.Duration(n) * time.Second
		}
	}
	if !found {
		return r, ErrNoRoot
	}
	if !strings.HasPrefix(r.Device, "/dev/") || path.Clean(r.Device) != r.Device || strings.Contains(r.Device, "/../") {
		return r, fmt.Errorf("handoff: root=%s: %w", r.Device, ErrUnsupportedRoot)
	}
	if r.Init != "" && (!strings.HasPrefix(r.Init, "/") || strings.ContainsRune(r.Init, 0)) {
		return r, fmt.Errorf("handoff: init=%s: want an absolute path", r.Init)
	}
	return r, nil
}

// Inits returns the init programs to try, in order.
func (r Root) Inits() []string {
	if r.Init != "" {
		return []string{r.Init}
	}
	return DefaultInits
}

// String describes r for a log line.
func (r Root) String() string {
	fs := "auto"
	if len(r.FSTypes) > 0 {
		fs = strings.Join(r.FSTypes, ",")
	}
	mode := "ro"
	if !r.ReadOnly {
		mode = "rw"
	}
	init := r.Init
	if init == "" {
		init = "default"
	}
	return fmt.Sprintf("%s (%s,%s) init=%s", r.Device, fs, mode, init)
}

// ParseFilesystems returns the block-device file systems of a
// /proc/filesystems listing (the lines without "nodev"), in kernel order.
func ParseFilesystems(rd io.Reader) ([]string, error) {
	var out []string
	sc := bufio.NewScanner(rd)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 1 {
			out = append(out, f[0])
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("handoff: filesystems: %w", err)
	}
	return out, nil
}
