package server

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/lastgasp/lastgasp/pstore/records"
)

// assembledSuffix ends the name of the text of a multi-part crash put back
// together: <Root>/<host>/crash/<crash id>.dmesg.txt.
const assembledSuffix = ".dmesg.txt"

// crashParts is what a Server holds of one multi-part crash of a host.
type crashParts struct {
	parts     int            // the number of parts the uploads announced (the largest)
	rels      map[int]string // part number -> stored record, relative to Root
	assembled bool           // the assembled text is durable
}

// addPart records that part of crash id is stored at rel.
func (hs *hostState) addPart(id string, part, parts int, rel string) {
	if hs.crashes == nil {
		hs.crashes = map[string]*crashParts{}
	}
	c := hs.crashes[id]
	if c == nil {
		c = &crashParts{rels: map[int]string{}}
		hs.crashes[id] = c
	}
	c.parts = max(c.parts, parts)
	if _, ok := c.rels[part]; !ok {
		c.rels[part] = rel
	}
}

// assemble writes <crash id>.dmesg.txt beside the parts of crash id once all
// of them are stored, durably (temporary file, fsync, rename, fsync of the
// directory). The parts stay: each is a record acknowledged on its own. A
// failure is logged, not returned: the records themselves are stored, and a
// later upload of any part tries again. s.mu must be held.
func (s *Server) assemble(host, id string) {
	hs := s.hosts[host]
	if hs == nil || hs.crashes[id] == nil {
		return
	}
	c := hs.crashes[id]
	if c.assembled || len(c.rels) < c.parts {
		return
	}
	dir := filepath.Join(s.Root, host, "crash")
	final := filepath.Join(dir, id+assembledSuffix)
	if _, err := os.Lstat(final); err == nil {
		c.assembled = true
		return
	}
	parts := make([][]byte, c.parts)
	for p := 1; p <= c.parts; p++ {
		rel, ok := c.rels[p]
		if !ok {
			return // announced parts differ; wait for the rest
		}
		b, err := os.ReadFile(filepath.Join(s.Root, filepath.FromSlash(rel)))
		if err != nil {
			s.logf("ship: host %s: assemble crash %s: %v", host, id, err)
			return
		}
		parts[p-1] = b
	}
	if err := s.writeDurable(dir, final, records.Assemble(parts)); err != nil {
		s.logf("ship: host %s: assemble crash %s: %v", host, id, err)
		return
	}
	c.assembled = true
	s.logf("ship: host %s: crash %s: %d parts assembled into %s", host, id, c.parts, filepath.Join(host, "crash", id+assembledSuffix))
}

// writeDurable writes data to final through a temporary file in dir.
func (s *Server) writeDurable(dir, final string, data []byte) (err error) {
	f, err := s.createTemp(dir, tempPrefix+"*")
	if err != nil {
		return fmt.Errorf("create temporary file: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", filepath.Base(final), err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", filepath.Base(final), err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", filepath.Base(final), err)
	}
	if err := os.Rename(f.Name(), final); err != nil {
		return fmt.Errorf("rename %s: %w", filepath.Base(final), err)
	}
	if err := syncDir(dir); err != nil {
		return errors.Join(err, os.Remove(final))
	}
	return nil
}
