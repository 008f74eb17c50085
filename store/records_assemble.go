package store

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"

	"github.com/lastgasp/lastgasp/pstore/records"
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

// partText is where the text of one part lies in its record file.
type partText struct {
	file       string
	start, end int64 // the text, without the part header line
	newline    bool  // a newline must follow it
}

// maxHeaderLine bounds the part header line ("Panic#1 Part12") looked for
// at the start of each part.
const maxHeaderLine = 64

// writeAssembled puts the parts of one crash back together as
// records.Assemble does (the oldest part first, each part's header line
// replaced by one for the whole crash), streaming from the part files into
// a temporary file renamed to name, durably. parts[0] is the file of
// Part1. If the text would exceed MaxAssembled, the oldest text is left
// out, up to a line boundary, and a note says how much: the newest part
// holds the panic. Memory use does not depend on the parts' sizes.
func (r *Records) writeAssembled(dir, name string, parts []string) (int64, bool, error) {
	limit := r.MaxAssembled
	if limit <= 0 {
		limit = DefaultMaxAssembled
	}
	texts := make([]partText, len(parts))
	var head []byte
	var total int64
	for i, base := range parts {
		t, hdr, err := measurePart(filepath.Join(dir, base))
		if err != nil {
			return 0, false, err
		}
		if i == 0 && hdr != nil {
			head = fmt.Appendf(nil, "%s#%d Part1..%d\n", hdr.Reason, hdr.Count, len(parts))
		}
		texts[i] = t
		total += t.len()
	}

	// Leave out the oldest text beyond the limit: whole parts (the
	// highest numbered first), then the start of the next up to a line.
	var note []byte
	var omitted int64
	if budget := limit - int64(len(head)) - maxNote; int64(len(head))+total > limit {
		excess := total - max(budget, 0)
		for i := len(texts) - 1; i >= 0 && excess > 0; i-- {
			t := &texts[i]
			n := t.len()
			if n <= excess {
				excess -= n
				omitted += n
				*t = partText{}
				continue
			}
			cut := t.start + excess
			if cut < t.end {
				cut = lineStart(t.file, cut, t.end)
			}
			omitted += cut - t.start
			t.start = cut
			excess = 0
		}
		note = fmt.Appendf(nil, "[lastgaspd: %d bytes of the oldest text omitted, to keep this file within %d bytes]\n", omitted, limit)
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
	w := &countWriter{w: f}
	w.Write(head)
	w.Write(note)
	for i := len(texts) - 1; i >= 0; i-- {
		if err := texts[i].copyTo(w); err != nil {
			return 0, false, err
		}
	}
	if w.err != nil {
		return 0, false, fmt.Errorf("write %s: %w", name, w.err)
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
	return w.n, note != nil, nil
}

// maxNote is room kept for the truncation note.
const maxNote = 128

func (t partText) len() int64 {
	n := t.end - t.start
	if t.newline && n > 0 {
		n++
	}
	return n
}

// measurePart finds the text of the part stored at p: after its part
// header line, if it has one (returned), up to its end.
func measurePart(p string) (partText, *records.PartHeader, error) {
	f, err := os.Open(p)
	if err != nil {
		return partText{}, nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return partText{}, nil, err
	}
	t := partText{file: p, end: fi.Size()}
	buf := make([]byte, maxHeaderLine)
	n, _ := f.ReadAt(buf, 0)
	var hdr *records.PartHeader
	if i := bytes.IndexByte(buf[:n], '\n'); i >= 0 {
		if h, ok := records.ParsePartHeader(buf[:i+1]); ok {
			hdr, t.start = &h, int64(i+1)
		}
	} else if int64(n) == t.end {
		if h, ok := records.ParsePartHeader(buf[:n]); ok {
			hdr, t.start = &h, t.end // nothing but the header
		}
	}
	if t.end > t.start {
		last := make([]byte, 1)
		if _, err := f.ReadAt(last, t.end-1); err != nil {
			return partText{}, nil, err
		}
		t.newline = last[0] != '\n'
	}
	return t, hdr, nil
}

// lineStart returns the offset after the first newline at or after off in
// the file p, looking at most 4 KiB ahead and no further than end; off
// itself if there is none there.
func lineStart(p string, off, end int64) int64 {
	f, err := os.Open(p)
	if err != nil {
		return off
	}
	defer f.Close()
	buf := make([]byte, min(4<<10, end-off))
	n, _ := f.ReadAt(buf, off)
	if i := bytes.IndexByte(buf[:n], '\n'); i >= 0 {
		return off + int64(i) + 1
	}
	return off
}

// copyTo writes the part's text to w.
func (t partText) copyTo(w *countWriter) error {
	if t.end <= t.start {
		return nil
	}
	f, err := os.Open(t.file)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := io.Copy(w, io.NewSectionReader(f, t.start, t.end-t.start)); err != nil {
		return fmt.Errorf("copy %s: %w", filepath.Base(t.file), err)
	}
	if t.newline {
		w.Write([]byte{'\n'})
	}
	return nil
}

// countWriter counts what it writes and keeps the first error.
type countWriter struct {
	w   io.Writer
	n   int64
	err error
}

func (c *countWriter) Write(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.w.Write(p)
	c.n += int64(n)
	c.err = err
	return n, err
}
