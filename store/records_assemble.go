package store

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
)

// crashParts is what Records holds of one multi-part crash of a host.
type crashParts struct {
	parts     int            // the number of parts the uploads announced (the largest)
	bases     map[int]string // part number -> stored record's file name
	assembled bool           // the assembled text is durable
	busy      bool           // being assembled
}

// addPart records that part of crash id is stored as base, and reports
// whether the crash is now complete and should be assembled by the caller
// (which then owns it until assemble returns). hs.mu must be held.
func (hs *recordHost) addPart(id string, part, parts int, base string) bool {
	if hs.crashes == nil {
		hs.crashes = map[string]*crashParts{}
	}
	c := hs.crashes[id]
	if c == nil {
		c = &crashParts{bases: map[int]string{}}
		hs.crashes[id] = c
	}
	c.parts = max(c.parts, parts)
	if _, ok := c.bases[part]; !ok {
		c.bases[part] = base
	}
	return hs.claim(c)
}

// claim marks c busy if it is complete, unassembled and not being
// assembled, and reports whether it did. hs.mu must be held.
func (hs *recordHost) claim(c *crashParts) bool {
	if c.assembled || c.busy || len(c.bases) < c.parts {
		return false
	}
	for p := 1; p <= c.parts; p++ {
		if _, ok := c.bases[p]; !ok {
			return false // announced part counts differ; wait for the rest
		}
	}
	c.busy = true
	return true
}

// assemble writes the assembled text of crash id of hs if the caller
// claimed it or it can claim it now, without holding hs.mu while it reads
// and writes. It returns the text's path relative to Root and whether it
// was truncated, or "" when nothing was written. Failures are logged: the
// records themselves are stored, and a later upload of any part tries
// again.
func (r *Records) assemble(hs *recordHost, id string) (string, bool) {
	hs.mu.Lock()
	c := hs.crashes[id]
	if c == nil || !c.busy && !hs.claim(c) {
		hs.mu.Unlock()
		return "", false
	}
	parts := make([]string, c.parts)
	for p := range parts {
		parts[p] = c.bases[p+1]
	}
	hs.mu.Unlock()

	dir := filepath.Join(r.Root, hs.dir, CrashDir)
	name := id + AssembledSuffix
	var size int64
	var truncated bool
	var err error
	_, serr := os.Lstat(filepath.Join(dir, name))
	exists := serr == nil
	if !exists {
		size, truncated, err = r.writeAssembled(dir, name, parts)
	}

	hs.mu.Lock()
	defer hs.mu.Unlock()
	c.busy = false
	switch {
	case exists:
		c.assembled = true
		return "", false
	case err != nil:
		r.logf("store: host %s: assemble crash %s: %v", hs.dir, id, err)
		return "", false
	case !sameParts(c, parts):
		// A part was removed meanwhile (RemoveRecord, Expire): the text
		// goes with it, as it would have had it been written before.
		if err := os.Remove(filepath.Join(dir, name)); err != nil {
			r.logf("store: host %s: assembled crash %s outlived a part: %v", hs.dir, id, err)
		}
		return "", false
	}
	c.assembled = true
	hs.texts[name] = size
	hs.used += size
	r.stats.assembled.Add(1)
	if truncated {
		r.stats.truncated.Add(1)
	}
	return path.Join(hs.dir, CrashDir, name), truncated
}

// writeAssembled writes the assembled text of the crash whose parts are
// stored in dir as the files parts (parts[0] is Part1's) with
// WriteAssembled, streaming from the part files into a temporary file
// renamed to name, durably.
func (r *Records) writeAssembled(dir, name string, parts []string) (int64, bool, error) {
	files := &partFiles{}
	defer files.close()
	cps := make([]CrashPart, len(parts))
	for i, base := range parts {
		p := filepath.Join(dir, base)
		fi, err := os.Stat(p)
		if err != nil {
			return 0, false, err
		}
		cps[i] = filePart{files: files, path: p, size: fi.Size()}
	}

	f, err := r.createTemp(dir)
	if err != nil {
		return 0, false, fmt.Errorf("create temporary file: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	n, truncated, err := WriteAssembled(f, cps, r.MaxAssembled)
	if err != nil {
		return 0, false, fmt.Errorf("write %s: %w", name, err)
	}
	if err := f.Sync(); err != nil {
		return 0, false, fmt.Errorf("sync %s: %w", name, err)
	}
	if err := f.Close(); err != nil {
		return 0, false, fmt.Errorf("close %s: %w", name, err)
	}
	final := filepath.Join(dir, name)
	if err := os.Rename(f.Name(), final); err != nil {
		return 0, false, fmt.Errorf("rename %s: %w", name, err)
	}
	ok = true
	if err := syncDir(dir); err != nil {
		return 0, false, errors.Join(err, os.Remove(final))
	}
	return n, truncated, nil
}

// sameParts reports whether parts (Part1 first) are all still stored as
// parts of c.
func sameParts(c *crashParts, parts []string) bool {
	for p, base := range parts {
		if c.bases[p+1] != base {
			return false
		}
	}
	return true
}

// partFiles reads the part files of one crash, holding at most one open:
// WriteAssembled reads the parts one after the other, and a crash may
// have thousands.
type partFiles struct {
	path string
	f    *os.File
}

func (pf *partFiles) readAt(path string, b []byte, off int64) (int, error) {
	if pf.f == nil || pf.path != path {
		pf.close()
		f, err := os.Open(path)
		if err != nil {
			return 0, err
		}
		pf.f, pf.path = f, path
	}
	return pf.f.ReadAt(b, off)
}

func (pf *partFiles) close() {
	if pf.f != nil {
		pf.f.Close()
		pf.f = nil
	}
}

// filePart is a part file as a CrashPart.
type filePart struct {
	files *partFiles
	path  string
	size  int64
}

func (p filePart) ReadAt(b []byte, off int64) (int, error) { return p.files.readAt(p.path, b, off) }
func (p filePart) Size() int64                             { return p.size }
