package target

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// DefaultRoot is where the netconsole configfs subsystem appears once configfs
// is mounted and netconsole is loaded.
const DefaultRoot = "/sys/kernel/config/netconsole"

// Target is one netconsole target.
type Target struct {
	Name       string // configfs directory name
	Dev        string // local interface, e.g. eth0
	LocalIP    netip.Addr
	LocalPort  int
	RemoteIP   netip.Addr
	RemotePort int
	RemoteMAC  net.HardwareAddr
	Extended   bool
	// Release prepends the kernel release to every extended message
	// (configfs attribute "release", Linux 6.6+). Create sets it on its own
	// where the attribute exists; Inspect reports it.
	Release bool
	// Userdata are key=value pairs the kernel appends to every extended
	// message (configfs group "userdata/", Linux 6.9+), e.g. host and boot
	// identity. Skipped on kernels without the group.
	Userdata map[string]string
}

// Param returns the equivalent netconsole= module/kernel parameter
// ("[+[r]]src-port@src-ip/dev,dst-port@dst-ip/dst-mac"). The r flag (Linux
// 6.6+) appears only when Release is set, which Create and Inspect do only
// on kernels that have it. Userdata has no parameter form.
func (t Target) Param() string {
	plus := ""
	if t.Extended {
		plus = "+"
		if t.Release {
			plus = "+r"
		}
	}
	return fmt.Sprintf("%s%d@%s/%s,%d@%s/%s", plus, t.LocalPort, t.LocalIP, t.Dev, t.RemotePort, t.RemoteIP, t.RemoteMAC)
}

func (t Target) attrs() [][2]string {
	ext := "0"
	if t.Extended {
		ext = "1"
	}
	return [][2]string{
		{"dev_name", t.Dev},
		{"local_ip", t.LocalIP.String()},
		{"remote_ip", t.RemoteIP.String()},
		{"local_port", strconv.Itoa(t.LocalPort)},
		{"remote_port", strconv.Itoa(t.RemotePort)},
		{"remote_mac", t.RemoteMAC.String()},
		{"extended", ext},
	}
}

// ErrReadBack is wrapped when an attribute reads back different from what
// was written (the kernel silently normalises or rejects some values).
var ErrReadBack = errors.New("attribute read back differs")

// Create makes target t under root (normally DefaultRoot), writes its
// attributes, reads each back, and enables it. If a target of that name
// exists it is disabled and reconfigured.
func Create(root string, t Target) error {
	if t.Name == "" || strings.ContainsAny(t.Name, "/\x00") || t.Name == "." || t.Name == ".." {
		return fmt.Errorf("netconsole: invalid target name %q", t.Name)
	}
	dir := filepath.Join(root, t.Name)
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("netconsole: target %s: mkdir: %w (is netconsole loaded and configfs mounted?)", t.Name, err)
	}
	if v, err := read(dir, "enabled"); err == nil && v == "1" {
		if err := write(dir, "enabled", "0"); err != nil {
			return fmt.Errorf("netconsole: target %s: disable: %w", t.Name, err)
		}
	}
	f := Detect(dir)
	attrs := t.attrs()
	// release needs extended=1 first (the kernel refuses it otherwise);
	// attrs() ends with extended.
	if f.Release && t.Extended {
		attrs = append(attrs, [2]string{"release", "1"})
	}
	for _, kv := range attrs {
		if err := write(dir, kv[0], kv[1]); err != nil {
			return fmt.Errorf("netconsole: target %s: write %s: %w", t.Name, kv[0], err)
		}
		got, err := read(dir, kv[0])
		if err != nil {
			return fmt.Errorf("netconsole: target %s: read back %s: %w", t.Name, kv[0], err)
		}
		if !same(kv[0], got, kv[1]) {
			return fmt.Errorf("netconsole: target %s: %s = %q, wrote %q: %w", t.Name, kv[0], got, kv[1], ErrReadBack)
		}
	}
	if f.Userdata {
		if err := writeUserdata(dir, t); err != nil {
			return err
		}
	}
	if err := write(dir, "enabled", "1"); err != nil {
		return fmt.Errorf("netconsole: target %s: enable (does %s exist and have an address?): %w", t.Name, t.Dev, err)
	}
	if got, err := read(dir, "enabled"); err != nil || got != "1" {
		return fmt.Errorf("netconsole: target %s: enabled reads %q (%v): %w", t.Name, got, err, ErrReadBack)
	}
	return nil
}

// Disable turns target name off (the kernel stops sending to it).
func Disable(root, name string) error {
	if err := write(filepath.Join(root, name), "enabled", "0"); err != nil {
		return fmt.Errorf("netconsole: target %s: disable: %w", name, err)
	}
	return nil
}

func same(attr, got, want string) bool {
	if attr == "remote_mac" {
		g, err1 := net.ParseMAC(got)
		w, err2 := net.ParseMAC(want)
		return err1 == nil && err2 == nil && g.String() == w.String()
	}
	if attr == "local_ip" || attr == "remote_ip" {
		// IPv6 reads back in the kernel's own notation (%pI6c).
		g, err1 := netip.ParseAddr(got)
		w, err2 := netip.ParseAddr(want)
		return err1 == nil && err2 == nil && g == w
	}
	return got == want
}

// write writes an existing attribute file without O_CREATE or O_TRUNC:
// configfs creates the attribute files itself.
func write(dir, attr, val string) error {
	f, err := os.OpenFile(filepath.Join(dir, attr), os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.Write([]byte(val))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func read(dir, attr string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, attr))
	return strings.TrimSpace(string(b)), err
}

// ModuleParam returns the netconsole= module parameter that configures all
// of ts at load time, for kernels without dynamic (configfs) netconsole
// (targets separated by ';').
func ModuleParam(ts []Target) string {
	var p []string
	for _, t := range ts {
		p = append(p, t.Param())
	}
	return "netconsole=" + strings.Join(p, ";")
}

// Dynamic reports whether root (normally DefaultRoot) exists, i.e. the
// kernel's netconsole supports configfs targets (CONFIG_NETCONSOLE_DYNAMIC).
func Dynamic(root string) bool {
	st, err := os.Stat(root)
	return err == nil && st.IsDir()
}

// Configfs arms targets under one netconsole configfs directory (normally
// DefaultRoot): Create and Disable with the root bound, so that a caller
// can hold it as a small interface and a test can replace it.
type Configfs struct{ Root string }

// Dynamic reports whether the kernel's netconsole takes configfs targets.
func (c Configfs) Dynamic() bool { return Dynamic(c.Root) }

// Create makes, writes, reads back and enables t (see Create).
func (c Configfs) Create(t Target) error { return Create(c.Root, t) }

// Disable turns target name off (see Disable).
func (c Configfs) Disable(name string) error { return Disable(c.Root, name) }
