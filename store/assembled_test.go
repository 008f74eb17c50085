package store

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/lastgasp/lastgasp/pstore/records"
)

// assembleBytes runs WriteAssembled on parts held in memory.
func assembleBytes(t *testing.T, parts [][]byte, limit int64) ([]byte, bool) {
	t.Helper()
	cps := make([]CrashPart, len(parts))
	for i, p := range parts {
		cps[i] = bytes.NewReader(p)
	}
	var out bytes.Buffer
	n, truncated, err := WriteAssembled(&out, cps, limit)
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(out.Len()) {
		t.Fatalf("WriteAssembled says %d bytes, wrote %d", n, out.Len())
	}
	return out.Bytes(), truncated
}

// FuzzWriteAssembled: unbounded, the .dmesg.txt text is records.Assemble
// (systemd-pstore's dmesg.txt order); bounded, it keeps the newest text,
// from a line start or a cut, within the bound, with a note.
func FuzzWriteAssembled(f *testing.F) {
	f.Add([]byte("Panic#1 Part1\nnewest\n\x00Panic#1 Part2\nmiddle\n\x00Panic#1 Part3\noldest\n"), uint16(40))
	f.Add([]byte("Panic#2 Part1\nnewest\x00Panic#2 Part2\nolder"), uint16(0))
	f.Add([]byte("Oops#1 Part1\nnewest\n\x00Oops#1 Part2"), uint16(200))
	f.Add([]byte("Panic#1 Part1\r\nnewest\n\x00\x00no header\n"), uint16(150))
	f.Add([]byte("a\nb\nc\nd\n\x00e\nf\n"), uint16(3))
	f.Fuzz(func(t *testing.T, in []byte, limit uint16) {
		parts := bytes.Split(in, []byte{0})
		if len(parts) > 16 {
			parts = parts[:16]
		}
		full := records.Assemble(parts)
		got, truncated := assembleBytes(t, parts, 1<<40)
		if truncated || !bytes.Equal(got, full) {
			t.Fatalf("unbounded = %q (truncated %v), records.Assemble = %q", got, truncated, full)
		}
		if limit == 0 {
			return
		}
		got, truncated = assembleBytes(t, parts, int64(limit))
		var head []byte
		if h, ok := records.ParsePartHeader(parts[0]); ok {
			head = fmt.Appendf(nil, "%s#%d Part1..%d\n", h.Reason, h.Count, len(parts))
		}
		if !truncated {
			if !bytes.Equal(got, full) || len(full) > int(limit) {
				t.Fatalf("not truncated: %q, want %q within %d", got, full, limit)
			}
			return
		}
		rest, ok := bytes.CutPrefix(got, head)
		if !ok {
			t.Fatalf("truncated %q does not start with the header %q", got, head)
		}
		i := bytes.IndexByte(rest, '\n')
		if i < 0 || !bytes.HasPrefix(rest, []byte("[lastgaspd: ")) {
			t.Fatalf("truncated %q: no note after the header", got)
		}
		kept := rest[i+1:]
		if !bytes.HasSuffix(full, kept) {
			t.Fatalf("kept text %q is not the newest text of %q", kept, full)
		}
		if len(got) > max(int(limit), len(head)+i+1) {
			t.Fatalf("%d bytes, over the bound %d", len(got), limit)
		}
	})
}

// shortPart is a part whose reads stop early, as a file truncated under
// the store would.
type shortPart struct{ *bytes.Reader }

func (p shortPart) Size() int64 { return p.Reader.Size() + 10 }

// TestWriteAssembledShortPart: a part that yields less than its size is
// an error, not a shorter text.
func TestWriteAssembledShortPart(t *testing.T) {
	parts := []CrashPart{bytes.NewReader([]byte("Panic#1 Part1\nnew\n")), shortPart{bytes.NewReader([]byte("Panic#1 Part2\nold\n"))}}
	if _, _, err := WriteAssembled(&bytes.Buffer{}, parts, 0); err == nil {
		t.Fatal("WriteAssembled with a short part succeeded")
	}
}
