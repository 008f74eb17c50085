package store

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/lastgasp/lastgasp/pstore/records"
)

// The text of a multi-part crash put back together, <crash id>.dmesg.txt,
// is one format with one writer, WriteAssembled: the file store (Records)
// writes it to a file beside the parts, the shared store (store/pgstore)
// into its assembled table, byte for byte the same.

// CrashPart is the stored record of one part of a multi-part crash, as
// WriteAssembled reads it: a file of the file store, a row of the shared
// store, or a *bytes.Reader.
type CrashPart interface {
	io.ReaderAt
	Size() int64
}

// maxHeaderLine bounds the part header line ("Panic#1 Part12") looked for
// at the start of each part.
const maxHeaderLine = 64

// maxNote is room kept for the truncation note.
const maxNote = 128

// maxLineSearch bounds how far past a cut the next line start is looked
// for; a longer line is cut where it is.
const maxLineSearch = 4 << 10

// copyBuffer is what WriteAssembled reads the kept text through.
const copyBuffer = 32 << 10

// WriteAssembled writes to w the text of one multi-part crash put back
// together from its parts, parts[0] being Part1. The text is
// records.Assemble's (the oldest part, PartN, first; each part's header
// line left out and one for the whole crash, "Panic#1 Part1..N", in
// front), up to limit bytes (zero or negative: DefaultMaxAssembled).
// Beyond it the oldest text is left out, whole parts and then the start of
// one up to a line boundary, and a note after the header says how much:
// the newest part holds the panic.
//
// It reads the first bytes and the last byte of each part, at most 4 KiB
// past a cut, and the text it keeps, through one 32 KiB buffer, so memory
// does not depend on the parts' sizes. It returns the bytes written and
// whether text was left out.
func WriteAssembled(w io.Writer, parts []CrashPart, limit int64) (int64, bool, error) {
	if limit <= 0 {
		limit = DefaultMaxAssembled
	}
	texts := make([]partText, len(parts))
	var head []byte
	var total int64
	for i, p := range parts {
		t, hdr, err := measurePart(p)
		if err != nil {
			return 0, false, fmt.Errorf("part %d: %w", i+1, err)
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
				var err error
				if cut, err = lineStart(t.part, cut, t.end); err != nil {
					return 0, false, fmt.Errorf("part %d: %w", i+1, err)
				}
			}
			omitted += cut - t.start
			t.start = cut
			excess = 0
		}
		note = fmt.Appendf(nil, "[lastgaspd: %d bytes of the oldest text omitted, to keep this file within %d bytes]\n", omitted, limit)
	}

	cw := &countWriter{w: w}
	cw.Write(head)
	cw.Write(note)
	buf := make([]byte, min(copyBuffer, max(total, 1)))
	for i := len(texts) - 1; i >= 0; i-- {
		if err := texts[i].copyTo(cw, buf); err != nil {
			return cw.n, false, fmt.Errorf("part %d: %w", i+1, err)
		}
	}
	return cw.n, note != nil, cw.err
}

// partText is where the text of one part lies in its record.
type partText struct {
	part       CrashPart
	start, end int64 // the text, without the part header line
	newline    bool  // a newline must follow it
}

func (t partText) len() int64 {
	n := t.end - t.start
	if t.newline && n > 0 {
		n++
	}
	return n
}

// measurePart finds the text of part p: after its part header line, if it
// has one (returned), up to its end.
func measurePart(p CrashPart) (partText, *records.PartHeader, error) {
	t := partText{part: p, end: p.Size()}
	buf := make([]byte, min(maxHeaderLine, t.end))
	n, err := p.ReadAt(buf, 0)
	if err != nil && !(errors.Is(err, io.EOF) && n == len(buf)) {
		return partText{}, nil, err
	}
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
		if _, err := p.ReadAt(last, t.end-1); err != nil && !errors.Is(err, io.EOF) {
			return partText{}, nil, err
		}
		t.newline = last[0] != '\n'
	}
	return t, hdr, nil
}

// lineStart returns the offset after the first newline at or after off in
// p, looking at most maxLineSearch bytes ahead and no further than end;
// off itself if there is none there.
func lineStart(p CrashPart, off, end int64) (int64, error) {
	buf := make([]byte, min(maxLineSearch, end-off))
	n, err := p.ReadAt(buf, off)
	if err != nil && !(errors.Is(err, io.EOF) && n == len(buf)) {
		return off, err
	}
	if i := bytes.IndexByte(buf[:n], '\n'); i >= 0 {
		return off + int64(i) + 1, nil
	}
	return off, nil
}

// copyTo writes the part's text to w through buf.
func (t partText) copyTo(w *countWriter, buf []byte) error {
	if t.end <= t.start {
		return nil
	}
	want := t.end - t.start
	n, err := io.CopyBuffer(w, io.NewSectionReader(t.part, t.start, want), buf)
	if w.err != nil {
		return w.err
	}
	if err != nil {
		return err
	}
	if n != want {
		return fmt.Errorf("read %d bytes of text, want %d: %w", n, want, io.ErrUnexpectedEOF)
	}
	if t.newline {
		w.Write([]byte{'\n'})
	}
	return nil
}

// countWriter counts what it writes and keeps the first error. It hides
// the writer's ReadFrom (a bytes.Buffer's), so that parts are read in
// copyBuffer chunks.
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
