package pgstore

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/lastgasp/lastgasp/store"
)

// memRows returns parts as rowParts whose data is fetched from memory, as
// assembleTx lists them (the first maxHeaderLine bytes and the last byte
// with the listing), and counts the fetches.
func memRows(parts [][]byte, fetches *int) []store.CrashPart {
	out := make([]store.CrashPart, len(parts))
	for i, p := range parts {
		var last []byte
		if len(p) > 0 {
			last = p[len(p)-1:]
		}
		out[i] = &rowPart{size: int64(len(p)), first: p[:min(len(p), maxHeaderLine)], last: last,
			fetch: func(off, n int64) ([]byte, error) {
				*fetches++
				if off < 0 || n < 0 || off+n > int64(len(p)) {
					return nil, fmt.Errorf("fetch %d+%d of a %d-byte part", off, n, len(p))
				}
				return p[off : off+n], nil
			}}
	}
	return out
}

// FuzzRowPart: the text store.WriteAssembled puts together from rows is
// the one it puts together from the same parts in memory, at any bound,
// and each part's data is fetched at most once (the listing serves the
// header and the final newline).
func FuzzRowPart(f *testing.F) {
	// Seeds about the rows' reads: text past the 64 bytes the listing
	// holds, cut inside it or past it, parts of 63, 64 and 65 bytes.
	long := "Panic#1 Part1\n" + strings.Repeat("<6>[    1.000000] a line of the newest part\n", 4)
	f.Add([]byte(long+"\x00Panic#1 Part2\n"+strings.Repeat("old line\n", 12)), uint16(120))
	f.Add([]byte(long+"\x00"+strings.Repeat("x", 63)+"\x00"+strings.Repeat("y", 64)+"\x00"+strings.Repeat("z", 65)), uint16(190))
	f.Add([]byte("Oops#2 Part1\n\x00Oops#2 Part2"), uint16(1))
	f.Fuzz(func(t *testing.T, in []byte, limit uint16) {
		parts := bytes.Split(in, []byte{0})
		if len(parts) > 16 {
			parts = parts[:16]
		}
		mem := make([]store.CrashPart, len(parts))
		for i, p := range parts {
			mem[i] = bytes.NewReader(p)
		}
		for _, lim := range []int64{1 << 40, int64(limit)} {
			var want, got bytes.Buffer
			_, wt, werr := store.WriteAssembled(&want, mem, lim)
			fetches := 0
			_, gt, gerr := store.WriteAssembled(&got, memRows(parts, &fetches), lim)
			if werr != nil || gerr != nil {
				t.Fatalf("limit %d: errors %v (memory), %v (rows)", lim, werr, gerr)
			}
			if !bytes.Equal(got.Bytes(), want.Bytes()) || gt != wt {
				t.Fatalf("limit %d: rows %q (truncated %v), memory %q (truncated %v)", lim, got.Bytes(), gt, want.Bytes(), wt)
			}
			if fetches > len(parts) {
				t.Fatalf("limit %d: %d fetches for %d parts", lim, fetches, len(parts))
			}
		}
	})
}
