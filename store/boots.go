package store

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// maxBootsPerHost bounds the boots a Store remembers for each host.
const maxBootsPerHost = 64

// AnnouncedName is the file in a boot directory that holds the address the
// boot's netconsole announcement came from, so that an upload can be
// checked against it (PrevBootFrom) after a restart too.
const AnnouncedName = "announced"

// NoteBootFrom records that host announced boot from the address from: the
// boot's directory is created with an AnnouncedName file holding the
// address (the first announcement of a boot wins: a later one from
// elsewhere does not replace it), and NoteBoot notes the boot. It touches
// the disk, so the receiver calls it from its writer, not its receive loop.
func (s *Store) NoteBootFrom(host, boot string, from netip.Addr) error {
	if boot == "" || !from.IsValid() {
		return nil
	}
	if err := CheckBoot(boot); err != nil {
		return fmt.Errorf("store: host %q: %w", host, err)
	}
	dir := filepath.Join(s.Root, HostDir(host), boot)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, AnnouncedName), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
	switch {
	case errors.Is(err, fs.ErrExist):
	case err != nil:
		return fmt.Errorf("store: %w", err)
	default:
		_, werr := f.WriteString(from.Unmap().WithZone("").String() + "\n")
		if err := errors.Join(werr, f.Close()); err != nil {
			return fmt.Errorf("store: %s: %w", f.Name(), err)
		}
	}
	s.NoteBoot(host, boot)
	return nil
}

// PrevBootFrom returns PrevBootDir(host, boot) and the address the
// announcement of that boot came from, as NoteBootFrom recorded it; the
// address is invalid if it is not known.
func (s *Store) PrevBootFrom(host, boot string) (dir string, from netip.Addr) {
	dir = s.PrevBootDir(host, boot)
	if dir == "" {
		return "", netip.Addr{}
	}
	b, err := os.ReadFile(filepath.Join(s.Root, filepath.FromSlash(dir), AnnouncedName))
	if err != nil || len(b) > 64 {
		return dir, netip.Addr{}
	}
	a, err := netip.ParseAddr(strings.TrimSpace(string(b)))
	if err != nil {
		return dir, netip.Addr{}
	}
	return dir, a
}

// IsBootFile reports whether name is a file the store writes in a boot
// directory: a log, a rotated log or AnnouncedName.
func IsBootFile(name string) bool { return name == AnnouncedName || IsLogName(name) }

// NoteBoot records that host announced boot, as its latest boot, if the
// host's boots are loaded (see PrevBootDir). Server
// calls it for every announcement; PrevBootDir answers from what it noted.
func (s *Store) NoteBoot(host, boot string) {
	if boot == "" {
		return
	}
	h, b := HostDir(host), bootDirName(boot)
	s.bootsMu.Lock()
	defer s.bootsMu.Unlock()
	list, ok := s.boots[h]
	if !ok {
		// Not loaded: PrevBootDir reads the host's boots from the disk
		// on first use, ordered by when their logs were written, which
		// gives the same answer. Keeping an entry for every host that
		// announced would cost about 70 bytes each, and loading one
		// here a directory read on the receive path.
		return
	}
	if n := len(list); n > 0 && list[n-1] == b {
		return
	}
	list = slices.DeleteFunc(list, func(x string) bool { return x == b })
	list = append(list, b)
	if len(list) > maxBootsPerHost {
		list = slices.Delete(list, 0, len(list)-maxBootsPerHost)
	}
	s.boots[h] = list
}

// PrevBootDir returns the boot directory, relative to Root and with '/'
// separators, of the boot of host seen last before boot: the boot that
// crashed, when boot is uploading the crash records it found. If boot was
// never announced, that is host's latest announced boot. It returns "" if
// boot is "" or no earlier boot is known.
//
// After a restart, the boots already in the store are ordered by when
// their logs were last written.
func (s *Store) PrevBootDir(host, boot string) string {
	if boot == "" {
		return ""
	}
	h, b := HostDir(host), bootDirName(boot)
	s.bootsMu.Lock()
	defer s.bootsMu.Unlock()
	list := s.hostBoots(h)
	i := slices.Index(list, b)
	if i < 0 {
		i = len(list)
	}
	if i == 0 {
		return ""
	}
	return path.Join(h, list[i-1])
}

// hostBoots returns the boots known for the escaped host h, loading them
// from the store on first use. s.bootsMu must be held.
func (s *Store) hostBoots(h string) []string {
	if list, ok := s.boots[h]; ok {
		return list
	}
	if s.boots == nil {
		s.boots = map[string][]string{}
	}
	list := scanBoots(filepath.Join(s.Root, h))
	s.boots[h] = list
	return list
}

// scanBoots returns the boot directories in hostDir, oldest first by the
// newest modification time of their logs; directories without a log, the
// crash directory and UnknownBoot are left out.
func scanBoots(hostDir string) []string {
	ents, err := os.ReadDir(hostDir)
	if err != nil {
		return nil
	}
	type boot struct {
		name string
		t    time.Time
	}
	var boots []boot
	for _, e := range ents {
		name := e.Name()
		if !e.IsDir() || name == CrashDir || name == UnknownBoot || strings.HasPrefix(name, ".") {
			continue
		}
		if t, ok := lastLogWrite(filepath.Join(hostDir, name)); ok {
			boots = append(boots, boot{name, t})
		}
	}
	slices.SortFunc(boots, func(a, b boot) int {
		return cmp.Or(a.t.Compare(b.t), strings.Compare(a.name, b.name))
	})
	if len(boots) > maxBootsPerHost {
		boots = boots[len(boots)-maxBootsPerHost:]
	}
	names := make([]string, len(boots))
	for i, b := range boots {
		names[i] = b.name
	}
	return names
}

// lastLogWrite returns the newest modification time of the log and rotated
// logs in dir.
func lastLogWrite(dir string) (time.Time, bool) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return time.Time{}, false
	}
	var last time.Time
	found := false
	for _, e := range ents {
		if !IsLogName(e.Name()) || !e.Type().IsRegular() {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			continue
		}
		if !found || fi.ModTime().After(last) {
			last, found = fi.ModTime(), true
		}
	}
	return last, found
}

// IsLogName reports whether name is LogName or the name of a rotated log,
// LogName followed by '.' and a decimal number.
func IsLogName(name string) bool {
	if name == LogName {
		return true
	}
	n, ok := strings.CutPrefix(name, LogName+".")
	if !ok || n == "" || len(n) > 9 {
		return false
	}
	for i := 0; i < len(n); i++ {
		if n[i] < '0' || n[i] > '9' {
			return false
		}
	}
	return true
}
