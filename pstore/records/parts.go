package records

import (
	"bytes"
	"compress/flate"
	"compress/zlib"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"time"
)

// reasons are the kmsg_dump reasons the kernel writes into the first line of
// each dmesg record ("Panic#1 Part1"): kmsg_dump_reason_str() in
// kernel/printk/printk.c (Undefined, Panic, Oops, Emergency, Shutdown) and
// the older names of fs/pstore/platform.c get_reason_str() (Kexec, Restart,
// Halt, Poweroff, Unknown).
var reasons = []string{"Panic", "Oops", "Emergency", "Shutdown", "Undefined", "Kexec", "Restart", "Halt", "Poweroff", "Unknown"}

// maxPart bounds the part and count numbers ParsePartHeader accepts.
const maxPart = 1 << 20

// PartHeader is the first line pstore writes into each dmesg record of a
// crash: "<Reason>#<Count> Part<Part>" (fs/pstore/platform.c, pstore_dump).
// Count is the kernel's oops count at the time of the dump; Part 1 holds the
// newest (last) chunk of the log, higher parts older chunks.
type PartHeader struct {
	Reason string // e.g. "Panic", "Oops"
	Count  int    // the N of "#N"
	Part   int    // the M of "PartM", at least 1
}

// ParsePartHeader parses the first line of a dmesg record. ok is false if it
// is not a pstore part header.
func ParsePartHeader(data []byte) (h PartHeader, ok bool) {
	line, _, _ := bytes.Cut(data, []byte("\n"))
	line = bytes.TrimSuffix(line, []byte("\r"))
	head, rest, found := bytes.Cut(line, []byte("#"))
	if !found || !slices.Contains(reasons, string(head)) {
		return PartHeader{}, false
	}
	count, part, found := bytes.Cut(rest, []byte(" Part"))
	if !found {
		return PartHeader{}, false
	}
	c, err1 := strconv.Atoi(string(count))
	p, err2 := strconv.Atoi(string(part))
	if err1 != nil || err2 != nil || c < 0 || c > maxPart || p < 1 || p > maxPart ||
		!isDigits(string(count)) || !isDigits(string(part)) || len(count) > 1 && count[0] == '0' || part[0] == '0' {
		return PartHeader{}, false
	}
	return PartHeader{Reason: string(head), Count: c, Part: p}, true
}

// String formats h as the kernel does, without the newline.
func (h PartHeader) String() string {
	return fmt.Sprintf("%s#%d Part%d", h.Reason, h.Count, h.Part)
}

// Crash is the dmesg records of one crash in one backend.
type Crash struct {
	// ID names the crash: "dmesg-<backend>-<Reason>-<Count>-<unix time>",
	// the time being the newest record time of its parts, in seconds. It
	// is a valid record name and stays the same across boots as long as
	// the newest part is still there.
	ID      string
	Backend string
	Reason  string
	Count   int
	// Records holds the indexes, in the slice given to Crashes, of the
	// parts: Records[0] is Part1, Records[i] is Part i+1.
	Records []int
}

// Crashes groups the dmesg records of recs that carry a part header by
// backend, reason and count. A group is returned only when its parts are
// exactly Part1..PartK, each once, and each record is complete; the others
// (a part missing, two crashes with the same reason and count) are left
// ungrouped, to be shipped as single records, and described in skipped.
func Crashes(recs []Record) (crashes []Crash, skipped []string) {
	type key struct {
		backend, reason string
		count           int
	}
	groups := map[key]map[int][]int{}
	var order []key
	for i, r := range recs {
		if r.Type != "dmesg" || !r.Complete() {
			continue
		}
		h, ok := ParsePartHeader(r.Data)
		if !ok {
			continue
		}
		k := key{r.Backend, h.Reason, h.Count}
		if groups[k] == nil {
			groups[k] = map[int][]int{}
			order = append(order, k)
		}
		groups[k][h.Part] = append(groups[k][h.Part], i)
	}
	for _, k := range order {
		g := groups[k]
		c := Crash{Backend: k.backend, Reason: k.reason, Count: k.count}
		var newest time.Time
		ok := true
		for p := 1; p <= len(g); p++ {
			idx, found := g[p]
			if !found || len(idx) != 1 {
				ok = false
				break
			}
			c.Records = append(c.Records, idx[0])
			if t := recs[idx[0]].ModTime; t.After(newest) {
				newest = t
			}
		}
		if !ok {
			skipped = append(skipped, fmt.Sprintf("%s %s#%d: parts not exactly Part1..Part%d once each", k.backend, k.reason, k.count, len(g)))
			continue
		}
		c.ID = fmt.Sprintf("dmesg-%s-%s-%d-%d", k.backend, k.reason, k.count, max(newest.Unix(), 0))
		crashes = append(crashes, c)
	}
	return crashes, skipped
}

// Assemble puts the parts of one crash back together, as systemd-pstore's
// dmesg.txt does: parts[0] is Part1 (the newest chunk), so the text is
// PartK..Part1 in that order. Each part's header line is dropped; one header
// line for the whole crash ("Panic#1 Part1..3") starts the text, and a part
// that does not end in a newline gets one.
func Assemble(parts [][]byte) []byte {
	var out bytes.Buffer
	if len(parts) > 0 {
		if h, ok := ParsePartHeader(parts[0]); ok {
			fmt.Fprintf(&out, "%s#%d Part1..%d\n", h.Reason, h.Count, len(parts))
		}
	}
	for i := len(parts) - 1; i >= 0; i-- {
		p := parts[i]
		if _, ok := ParsePartHeader(p); ok {
			_, p, _ = bytes.Cut(p, []byte("\n"))
		}
		out.Write(p)
		if len(p) > 0 && p[len(p)-1] != '\n' {
			out.WriteByte('\n')
		}
	}
	return out.Bytes()
}

// ErrDecompressedTooLarge is wrapped by the error Decompress returns when the
// data inflates to more than its limit.
var ErrDecompressedTooLarge = errors.New("decompressed record too large")

// ErrCorrupt is wrapped by the error Decompress returns when the data is not
// a complete deflate stream.
var ErrCorrupt = errors.New("corrupt compressed record")

// Decompress inflates the data of a ".enc.z" record: pstore compresses with
// raw deflate (fs/pstore/platform.c: zlib_deflateInit2 with -MAX_WBITS; the
// older crypto API "deflate" is raw deflate too); a zlib-wrapped stream is
// accepted as well. Bytes after the end of the stream (ramoops' ECC notice)
// are ignored. It never produces more than limit bytes: a stream that
// inflates further returns an error wrapping ErrDecompressedTooLarge; one
// that is not valid or ends early wraps ErrCorrupt.
func Decompress(data []byte, limit int64) ([]byte, error) {
	var zr io.Reader
	if len(data) >= 2 && data[0]&0x0f == 8 && data[0]>>4 <= 7 && (uint16(data[0])<<8|uint16(data[1]))%31 == 0 {
		if r, err := zlib.NewReader(bytes.NewReader(data)); err == nil {
			if out, err := inflate(r, limit); err == nil || errors.Is(err, ErrDecompressedTooLarge) {
				return out, err
			}
		}
	}
	zr = flate.NewReader(bytes.NewReader(data))
	return inflate(zr, limit)
}

func inflate(r io.Reader, limit int64) ([]byte, error) {
	out, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, fmt.Errorf("inflate: %w: %w", ErrCorrupt, err)
	}
	if int64(len(out)) > limit {
		return nil, fmt.Errorf("inflate: more than %d bytes: %w", limit, ErrDecompressedTooLarge)
	}
	return out, nil
}

// Inflate replaces the Data of a complete compressed record by its
// decompressed text (see Decompress), keeping its Name, and sets
// Decompressed. On failure r is returned unchanged but with Corrupt set when
// the data is not a valid stream, with the error.
func Inflate(r Record, limit int64) (Record, error) {
	if !r.Compressed || !r.Complete() {
		return r, nil
	}
	out, err := Decompress(r.Data, limit)
	if err != nil {
		if errors.Is(err, ErrCorrupt) {
			r.Corrupt = true
		}
		return r, fmt.Errorf("records: %s: %w", r.Name, err)
	}
	r.Data, r.Size, r.Compressed, r.Decompressed = out, int64(len(out)), false, true
	return r, nil
}
