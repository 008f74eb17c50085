package server

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/lastgasp/lastgasp/pstore/ship"
)

// prevBoot returns the boot directory, relative to Root, that the record
// of meta is linked into, or "".
func (s *Server) prevBoot(meta ship.Metadata) string {
	if s.PrevBoot == nil || meta.BootID == "" {
		return ""
	}
	return s.PrevBoot(meta.Host, meta.BootID)
}

// linkToBoot hard-links the record stored at final, metadata first, into
// the crash directory of the boot directory bootRel (relative to Root), so
// that it sits next to the logs of the boot that produced it. The record is
// already stored and acknowledged either way: failures are logged, not
// returned. Hard links let retention remove either path without breaking
// the other. s.mu must be held.
func (s *Server) linkToBoot(meta ship.Metadata, bootRel, final string) {
	if bootRel == "" {
		return
	}
	rel := filepath.FromSlash(bootRel)
	if !filepath.IsLocal(rel) || strings.Count(filepath.ToSlash(rel), "/") != 1 {
		s.logf("ship: host %s: boot directory %q not under the store, record not linked", meta.Host, bootRel)
		return
	}
	bootDir := filepath.Join(s.Root, rel)
	if fi, err := os.Lstat(bootDir); err != nil || !fi.IsDir() {
		s.logf("ship: host %s: boot directory %s missing, record not linked", meta.Host, bootRel)
		return
	}
	dir := filepath.Join(bootDir, "crash")
	if err := os.Mkdir(dir, 0o750); err != nil && !errors.Is(err, fs.ErrExist) {
		s.logf("ship: host %s: link record: %v", meta.Host, err)
		return
	}
	name := filepath.Base(final)
	for _, suffix := range []string{".json", ""} {
		if err := linkOnce(final+suffix, filepath.Join(dir, name+suffix)); err != nil {
			s.logf("ship: host %s: link record: %v", meta.Host, err)
			return
		}
	}
	s.logf("ship: host %s boot %s: %s linked into %s/crash", meta.Host, meta.BootID, name, bootRel)
}

// linkOnce hard-links newname to oldname, accepting an existing link to
// the same file.
func linkOnce(oldname, newname string) error {
	err := os.Link(oldname, newname)
	if !errors.Is(err, fs.ErrExist) {
		return err
	}
	a, aerr := os.Stat(oldname)
	b, berr := os.Stat(newname)
	if aerr == nil && berr == nil && os.SameFile(a, b) {
		return nil
	}
	return fmt.Errorf("%s exists and is another file", newname)
}

// RemoveRecord removes the stored record whose data file is at path (under
// Root), then its metadata file, and forgets it, so that a later upload of
// the same record stores it again instead of being acknowledged as a
// duplicate. Retention calls it; files already gone are not an error.
func (s *Server) RemoveRecord(path string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range []string{path, path + ".json"} {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("ship: remove record: %w", err)
		}
	}
	rel, err := filepath.Rel(s.Root, path)
	if err != nil || !filepath.IsLocal(rel) {
		return nil
	}
	rel = filepath.ToSlash(rel)
	host, _, _ := strings.Cut(rel, "/")
	if hs := s.hosts[host]; hs != nil {
		for d, r := range hs.byDigest {
			if r == rel {
				delete(hs.byDigest, d)
			}
		}
		for _, c := range hs.crashes {
			for p, r := range c.rels {
				if r == rel {
					delete(c.rels, p)
				}
			}
		}
	}
	return nil
}
