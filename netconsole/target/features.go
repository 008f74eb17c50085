package target

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
)

// Features are the optional parts of a configfs target directory; which
// exist depends on the kernel version. Older kernels (6.1) have none of them
// and still get a working target.
type Features struct {
	Release        bool // "release" attribute (Linux 6.6+)
	Userdata       bool // "userdata/" group (Linux 6.9+)
	TransmitErrors bool // "transmit_errors" attribute, where a kernel has one
}

// Detect reports which optional attributes the target directory dir has.
// configfs creates every attribute when the directory is made, so dir must
// exist already.
func Detect(dir string) Features {
	exists := func(name string) bool {
		_, err := os.Stat(filepath.Join(dir, name))
		return err == nil
	}
	ud, err := os.Stat(filepath.Join(dir, "userdata"))
	return Features{
		Release:        exists("release"),
		Userdata:       err == nil && ud.IsDir(),
		TransmitErrors: exists("transmit_errors"),
	}
}

// String lists the features present, e.g. "release,userdata", or "none".
func (f Features) String() string {
	var s string
	for _, x := range []struct {
		on   bool
		name string
	}{{f.Release, "release"}, {f.Userdata, "userdata"}, {f.TransmitErrors, "transmit_errors"}} {
		if x.on {
			if s != "" {
				s += ","
			}
			s += x.name
		}
	}
	if s == "" {
		return "none"
	}
	return s
}

// Status is what Inspect reads back from a live target.
type Status struct {
	Features Features
	Enabled  bool
	Release  bool // release prepending is on
	// TransmitErrors is the kernel's count of failed sends, or -1 where
	// the kernel has no such attribute.
	TransmitErrors int64
}

// Inspect reads the state of target name under root.
func Inspect(root, name string) (Status, error) {
	dir := filepath.Join(root, name)
	en, err := read(dir, "enabled")
	if err != nil {
		return Status{}, fmt.Errorf("netconsole: target %s: read enabled: %w", name, err)
	}
	st := Status{Features: Detect(dir), Enabled: en == "1", TransmitErrors: -1}
	if st.Features.Release {
		v, err := read(dir, "release")
		if err != nil {
			return st, fmt.Errorf("netconsole: target %s: read release: %w", name, err)
		}
		st.Release = v == "1"
	}
	if st.Features.TransmitErrors {
		v, err := read(dir, "transmit_errors")
		if err != nil {
			return st, fmt.Errorf("netconsole: target %s: read transmit_errors: %w", name, err)
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return st, fmt.Errorf("netconsole: target %s: transmit_errors %q: %w", name, v, err)
		}
		st.TransmitErrors = n
	}
	return st, nil
}

// Limits of the kernel's userdata entries (drivers/net/netconsole.c).
const (
	MaxUserdataEntries  = 16
	MaxUserdataKeyLen   = 53 // MAX_USERDATA_NAME_LENGTH 54, with the NUL
	MaxUserdataValueLen = 199
)

// validUserdataKey: ^[A-Za-z0-9_.-]+$ (a configfs directory name the
// collector can parse back; a loop, not package regexp, which would cost the
// agent ~66 KB of xz with the boards' patterns).
func validUserdataKey(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

// ErrUserdata is wrapped when a userdata key or value is not acceptable.
var ErrUserdata = errors.New("invalid userdata")

// writeUserdata creates userdata/<key> for every pair of t (configfs makes
// the entry's "value" attribute), writes the value and reads it back.
func writeUserdata(dir string, t Target) error {
	if len(t.Userdata) > MaxUserdataEntries {
		return fmt.Errorf("netconsole: target %s: %d userdata entries, at most %d: %w", t.Name, len(t.Userdata), MaxUserdataEntries, ErrUserdata)
	}
	keys := make([]string, 0, len(t.Userdata))
	for k := range t.Userdata {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := t.Userdata[k]
		if len(k) > MaxUserdataKeyLen || !validUserdataKey(k) || len(v) > MaxUserdataValueLen || !printable(v) {
			return fmt.Errorf("netconsole: target %s: userdata %q=%q: %w", t.Name, k, v, ErrUserdata)
		}
		ed := filepath.Join(dir, "userdata", k)
		if err := os.Mkdir(ed, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("netconsole: target %s: userdata %s: mkdir: %w", t.Name, k, err)
		}
		if err := write(ed, "value", v); err != nil {
			return fmt.Errorf("netconsole: target %s: userdata %s: write value: %w", t.Name, k, err)
		}
		got, err := read(ed, "value")
		if err != nil {
			return fmt.Errorf("netconsole: target %s: userdata %s: read back: %w", t.Name, k, err)
		}
		if got != v {
			return fmt.Errorf("netconsole: target %s: userdata %s = %q, wrote %q: %w", t.Name, k, got, v, ErrReadBack)
		}
	}
	return nil
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
