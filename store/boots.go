package store

import (
	"cmp"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// maxBootsPerHost bounds the boots a Store remembers for each host.
const maxBootsPerHost = 64

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
