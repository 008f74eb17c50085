package records

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// DefaultRoot is where the kernel's pstore filesystem is usually mounted.
const DefaultRoot = "/sys/fs/pstore"

// ErrTooLarge is wrapped by the error Read returns for a record larger than
// its size limit. Such a record is returned without Data and is left in
// place.
var ErrTooLarge = errors.New("record too large")

// ErrBadName is wrapped by the error ParseName returns for a name that is not
// "<type>-<backend>-<id>[.enc.z]".
var ErrBadName = errors.New("not a pstore record name")

// compressedSuffix marks a record the kernel could not decompress.
const compressedSuffix = ".enc.z"

// types are the record types the kernel names (fs/pstore/platform.c,
// pstore_type_names), longest first where one is a prefix of another.
var types = []string{
	"powerpc-common",
	"powerpc-opal",
	"powerpc-ofw",
	"console",
	"unknown",
	"ftrace",
	"dmesg",
	"pmsg",
	"rtas",
	"mce",
}

// Record is one file of the pstore filesystem.
type Record struct {
	Name       string    // file name, e.g. "dmesg-ramoops-0"
	Path       string    // full path of the file
	Backend    string    // e.g. "ramoops", "efi", "erst", "pstore-blk"; empty if the name did not parse
	Type       string    // e.g. "dmesg", "console", "pmsg", "ftrace"; empty if the name did not parse
	ID         string    // the backend's record id, decimal
	Compressed bool      // the name ends in ".enc.z": Data is compressed
	Data       []byte    // contents; nil if the record was not read in full
	ModTime    time.Time // the record's time as the kernel reports it
	Size       int64     // size in bytes; equals len(Data) when the record was read in full

	// Set by Inflate: Data is the decompressed text of a ".enc.z" record
	// (Name keeps the suffix), or Data is compressed and not a valid
	// deflate stream.
	Decompressed bool
	Corrupt      bool

	// Set by the caller for a part of a multi-part crash (see Crashes):
	// the crash's ID, this record's part number and the number of parts.
	CrashID     string
	Part, Parts int

	// BootID, set by the caller, is the boot the record came from when
	// it is known (lastgasp's ring records carry it); empty for the
	// kernel's pstore records, which do not say.
	BootID string
}

// Complete reports whether Data holds the whole record: Data is not nil and
// its length equals Size. Read sets Data to a non-nil (possibly empty) slice
// exactly when it read the record in full; a record built by hand must set
// both fields. Only a complete record may be shipped and then removed.
func (r Record) Complete() bool {
	return r.Data != nil && int64(len(r.Data)) == r.Size
}

// ParseName splits a pstore file name such as "dmesg-ramoops-0" or
// "dmesg-efi-1700000000001.enc.z" into its type, backend and id, and reports
// whether the ".enc.z" suffix marks the data as compressed.
func ParseName(name string) (typ, backend, id string, compressed bool, err error) {
	rest := name
	if s, ok := strings.CutSuffix(rest, compressedSuffix); ok {
		rest, compressed = s, true
	}
	for _, t := range types {
		if s, ok := strings.CutPrefix(rest, t+"-"); ok {
			typ, rest = t, s
			break
		}
	}
	if typ == "" {
		return "", "", "", false, fmt.Errorf("records: %q: unknown type: %w", name, ErrBadName)
	}
	i := strings.LastIndexByte(rest, '-')
	if i <= 0 {
		return "", "", "", false, fmt.Errorf("records: %q: missing backend or id: %w", name, ErrBadName)
	}
	backend, id = rest[:i], rest[i+1:]
	if !isDigits(id) || len(id) > 20 {
		return "", "", "", false, fmt.Errorf("records: %q: id %q is not decimal: %w", name, id, ErrBadName)
	}
	for _, c := range []byte(backend) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return "", "", "", false, fmt.Errorf("records: %q: bad backend %q: %w", name, backend, ErrBadName)
		}
	}
	return typ, backend, id, compressed, nil
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// Read reads every regular file in root, the pstore mount, in name order.
//
// A record larger than maxSize is returned without Data (so Complete reports
// false), together with an error wrapping ErrTooLarge; a file that cannot be
// read is returned the same way with its error. Records whose names do not parse are returned with
// empty Type, Backend and ID. Read never removes anything. If root itself
// cannot be listed, Read returns no records and that one error.
func Read(root string, maxSize int64) ([]Record, []error) {
	ents, err := os.ReadDir(root)
	if err != nil {
		return nil, []error{fmt.Errorf("records: list %s: %w", root, err)}
	}
	var (
		recs []Record
		errs []error
	)
	for _, e := range ents { // os.ReadDir sorts by name
		if !e.Type().IsRegular() {
			continue
		}
		r := Record{Name: e.Name(), Path: filepath.Join(root, e.Name())}
		if typ, backend, id, compressed, err := ParseName(r.Name); err == nil {
			r.Type, r.Backend, r.ID, r.Compressed = typ, backend, id, compressed
		} else if strings.HasSuffix(r.Name, compressedSuffix) {
			r.Compressed = true
		}
		if err := readRecord(&r, maxSize); err != nil {
			errs = append(errs, err)
		}
		recs = append(recs, r)
	}
	return recs, errs
}

// readRecord fills r's ModTime, Size and, if it is at most maxSize bytes,
// Data.
func readRecord(r *Record, maxSize int64) error {
	f, err := os.Open(r.Path)
	if err != nil {
		return fmt.Errorf("records: %s: %w", r.Name, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("records: %s: %w", r.Name, err)
	}
	r.ModTime, r.Size = fi.ModTime(), fi.Size()
	if r.Size > maxSize {
		return fmt.Errorf("records: %s: %d bytes exceeds limit of %d: %w", r.Name, r.Size, maxSize, ErrTooLarge)
	}
	// The size reported by stat is a hint; never read more than maxSize.
	data, err := io.ReadAll(io.LimitReader(f, maxSize+1))
	if err != nil {
		return fmt.Errorf("records: %s: read: %w", r.Name, err)
	}
	if int64(len(data)) > maxSize {
		r.Size = int64(len(data)) // at least this much
		return fmt.Errorf("records: %s: more than %d bytes: %w", r.Name, maxSize, ErrTooLarge)
	}
	if data == nil {
		data = []byte{}
	}
	r.Data, r.Size = data, int64(len(data))
	return nil
}

// Remove deletes r's file, which erases the record from its pstore backend.
// Call it only after the record has been stored elsewhere.
func Remove(r Record) error {
	if err := os.Remove(r.Path); err != nil {
		return fmt.Errorf("records: remove %s: %w", r.Name, err)
	}
	return nil
}

// maxPanicLine bounds the length of the line PanicLine returns.
const maxPanicLine = 256

// panicMarkers start the lines PanicLine looks for.
var panicMarkers = []string{
	"Kernel panic - not syncing:",
	"Oops:",
	"BUG:",
	"kernel BUG at ",
}

// PanicLine returns the first line of a dmesg record that reports the crash:
// one starting "Kernel panic - not syncing:", "Oops:", "BUG:" or
// "kernel BUG at", after any "<level>" and "[timestamp]" prefixes. The result
// starts at the marker, is printable UTF-8 without control characters and at
// most 256 bytes long. It returns "" if there is no such line.
func PanicLine(data []byte) string {
	for len(data) > 0 {
		line := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			data = nil
		}
		text := stripPrefixes(line)
		for _, m := range panicMarkers {
			if bytes.HasPrefix(text, []byte(m)) {
				return clean(bytes.TrimRight(text, " \t\r"))
			}
		}
	}
	return ""
}

// stripPrefixes removes the leading "<6>", "[   12.345678]", "[    T1]"
// decorations and blanks of a kernel log line.
func stripPrefixes(b []byte) []byte {
	for {
		b = bytes.TrimLeft(b, " \t")
		var end int
		switch {
		case len(b) > 0 && b[0] == '<':
			end = bytes.IndexByte(b, '>')
		case len(b) > 0 && b[0] == '[':
			end = bytes.IndexByte(b, ']')
		default:
			return b
		}
		if end < 0 || end > 32 {
			return b
		}
		b = b[end+1:]
	}
}

// clean makes b a printable, bounded, single-line string.
func clean(b []byte) string {
	var sb strings.Builder
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		b = b[n:]
		if r == utf8.RuneError && n <= 1 || !unicode.IsPrint(r) {
			r = '?'
		}
		if sb.Len()+utf8.RuneLen(r) > maxPanicLine {
			break
		}
		sb.WriteRune(r)
	}
	return strings.TrimRight(sb.String(), " ")
}

// CallTrace returns up to n frames of the first call trace in a dmesg
// record (x86 "Call Trace:", arm64 "Call trace:"), without the "?"
// (unreliable) frames, the <TASK> markers and the frames of the stack
// dumper itself (dump_stack_lvl, dump_backtrace, ...), e.g.
// ["panic+0x118/0x2f4", "sysrq_handle_crash+0x16/0x20"]. On arm64, whose
// unwinder prints return addresses, a frame at a function's first byte
// ("f+0x0/...") is the return past a call that does not return at the end
// of the function before f: it is returned as "before:f+0x0/...".
func CallTrace(data []byte, n int) []string {
	var out []string
	in, arm64 := false, false
	for len(data) > 0 && len(out) < n {
		line := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			data = nil
		}
		text := bytes.TrimSpace(stripPrefixes(line))
		switch {
		case !in:
			in = bytes.HasPrefix(text, []byte("Call Trace:"))
			if bytes.HasPrefix(text, []byte("Call trace:")) {
				in, arm64 = true, true
			}
		case bytes.HasPrefix(text, []byte("<")) || bytes.HasPrefix(text, []byte("? ")) || len(text) == 0:
			// <TASK>, <IRQ> markers and unreliable frames.
		case bytes.ContainsAny(text, ":") && !bytes.Contains(text, []byte("+0x")):
			return out // registers or the next section: the trace is over
		case bytes.HasPrefix(text, []byte("pc : ")) || bytes.HasPrefix(text, []byte("lr : ")):
			// arm64 registers of an interrupted context: not frames.
		case bytes.Contains(text, []byte("+0x")) || bytes.HasSuffix(text, []byte("]")):
			f := clean(bytes.Fields(text)[0])
			name, off, _ := strings.Cut(f, "+")
			switch {
			case stackDumpers[name]:
			case arm64 && strings.HasPrefix(off, "0x0/"):
				out = append(out, "before:"+f)
			default:
				out = append(out, f)
			}
		default:
			return out
		}
	}
	return out
}

// stackDumpers print the trace: their frames top every trace (x86
// lib/dump_stack.c and arch/x86/kernel/dumpstack.c, arm64
// arch/arm64/kernel/stacktrace.c).
var stackDumpers = map[string]bool{
	"dump_stack": true, "dump_stack_lvl": true, "show_stack": true, "show_trace_log_lvl": true,
	"dump_backtrace": true,
}
