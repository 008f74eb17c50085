package replay

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"

	"github.com/lastgasp/lastgasp/netconsole/wire"
)

// ErrMalformed is wrapped by every error ParseRecord returns.
var ErrMalformed = errors.New("malformed kmsg record")

// MaxPayload is the largest datagram netconsole sends (MAX_PRINT_CHUNK in
// drivers/net/netconsole.c); longer messages are split into fragments.
const MaxPayload = 1000

// maxHeader bounds a record's header: four numbers and a few optional
// fields such as caller=T123.
const maxHeader = 256

// Record is one /dev/kmsg record:
// "<prival>,<seq>,<ts_usec>,<flags>[,<field>...];<text>\n[ KEY=VALUE\n...]".
type Record struct {
	// Header is the text before the ';', as read.
	Header string
	// Seq is the printk sequence number.
	Seq uint64
	// TimestampUsec is the printk timestamp in microseconds since boot.
	TimestampUsec uint64
	// Prival is the syslog facility * 8 + level.
	Prival uint64
	// Body is the text after the ';' as read: the message (non-printable
	// bytes already escaped \xNN by the kernel), its newline, and the
	// dictionary lines, each " KEY=VALUE\n".
	Body string
}

// Text returns the message without its dictionary.
func (r Record) Text() string {
	t, _, _ := bytes.Cut([]byte(r.Body), []byte("\n"))
	return string(t)
}

// ParseRecord parses one record as one read(2) of /dev/kmsg returns it.
func ParseRecord(b []byte) (Record, error) {
	semi := bytes.IndexByte(b, ';')
	if semi < 0 || semi > maxHeader {
		return Record{}, fmt.Errorf("replay: record %.40q: no header: %w", b, ErrMalformed)
	}
	hdr := b[:semi]
	var nums [3]uint64
	rest := hdr
	for i := range nums {
		c := bytes.IndexByte(rest, ',')
		if c < 0 {
			return Record{}, fmt.Errorf("replay: record header %q: too few fields: %w", hdr, ErrMalformed)
		}
		n, err := parseNum(rest[:c])
		if err != nil {
			return Record{}, fmt.Errorf("replay: record header %q: field %d: %w", hdr, i, err)
		}
		nums[i], rest = n, rest[c+1:]
	}
	flags, extra, more := bytes.Cut(rest, []byte(","))
	if len(flags) != 1 || flags[0] != '-' && flags[0] != 'c' && flags[0] != '+' {
		return Record{}, fmt.Errorf("replay: record header %q: flags %q: %w", hdr, flags, ErrMalformed)
	}
	for f := range bytes.SplitSeq(extra, []byte(",")) {
		if more && !validField(f) {
			return Record{}, fmt.Errorf("replay: record header %q: field %q: %w", hdr, f, ErrMalformed)
		}
	}
	if nums[0] > 255<<3|7 || nums[1] > wire.MaxSeq {
		return Record{}, fmt.Errorf("replay: record header %q: out of range: %w", hdr, ErrMalformed)
	}
	return Record{Header: string(hdr), Prival: nums[0], Seq: nums[1], TimestampUsec: nums[2], Body: string(b[semi+1:])}, nil
}

// parseNum parses a decimal number as the kernel prints it: digits, no sign,
// no leading zero.
func parseNum(b []byte) (uint64, error) {
	if len(b) == 0 || len(b) > 1 && b[0] == '0' {
		return 0, ErrMalformed
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, ErrMalformed
		}
	}
	n, err := strconv.ParseUint(string(b), 10, 64)
	if err != nil {
		return 0, ErrMalformed
	}
	return n, nil
}

// validField reports whether f is an optional header field the kernel may
// add, "key=value" (caller=T123), and not one that would change how a
// receiver reads the datagram (ncfrag, or a replay mark already there).
func validField(f []byte) bool {
	k, v, ok := bytes.Cut(f, []byte("="))
	if !ok || len(k) == 0 || string(k) == "ncfrag" || bytes.HasPrefix([]byte(wire.ReplayField), append(k, '=')) {
		return false
	}
	for _, c := range k {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' {
			return false
		}
	}
	for _, c := range v {
		if c <= ' ' || c > '~' || c == ',' || c == ';' {
			return false
		}
	}
	return true
}

// Format returns the record as /dev/kmsg returned it.
func (r Record) Format() []byte {
	return append(append([]byte(r.Header), ';'), r.Body...)
}

// AppendDatagrams appends to dst the datagrams netconsole's extended mode
// would send for r, with the ReplayField mark in the header, and returns
// them: prefixed with "<release>," when release is set (the target's
// "release" option), userdata (" key=value\n" lines, Linux 6.9+) appended
// to the body, split into fragments "<header>,ncfrag=<off>/<total>;<chunk>"
// of at most MaxPayload bytes when longer, as send_ext_msg_udp does.
func (r Record) AppendDatagrams(dst [][]byte, release, userdata string) [][]byte {
	hdr := make([]byte, 0, len(release)+len(r.Header)+len(wire.ReplayField)+2)
	if release != "" {
		hdr = append(append(hdr, release...), ',')
	}
	hdr = append(append(append(hdr, r.Header...), ','), wire.ReplayField...)
	body := r.Body + userdata
	if len(hdr)+1+len(body) <= MaxPayload {
		return append(dst, append(append(append(make([]byte, 0, len(hdr)+1+len(body)), hdr...), ';'), body...))
	}
	for off := 0; off < len(body); {
		d := append(make([]byte, 0, MaxPayload), hdr...)
		d = append(d, ",ncfrag="...)
		d = strconv.AppendInt(d, int64(off), 10)
		d = append(d, '/')
		d = strconv.AppendInt(d, int64(len(body)), 10)
		d = append(d, ';')
		n := min(len(body)-off, MaxPayload-len(d))
		if n <= 0 {
			return dst // a header that leaves no room; the kernel warns and sends nothing
		}
		dst = append(dst, append(d, body[off:off+n]...))
		off += n
	}
	return dst
}
