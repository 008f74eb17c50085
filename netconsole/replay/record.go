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
	i, f := 0, 0 // position in hdr, field number
	for ; f < 3; f++ {
		start := i
		for i < len(hdr) && hdr[i] >= '0' && hdr[i] <= '9' {
			i++
		}
		// The kernel prints %u: digits, no leading zero.
		if i == start || i >= len(hdr) || hdr[i] != ',' || hdr[start] == '0' && i-start > 1 || i-start > 20 {
			break
		}
		n, err := strconv.ParseUint(string(hdr[start:i]), 10, 64)
		if err != nil {
			break
		}
		nums[f] = n
		i++
	}
	// Then the flags, and optional fields such as caller=T123.
	if f < 3 || i >= len(hdr) || hdr[i] != '-' && hdr[i] != 'c' && hdr[i] != '+' ||
		i+1 < len(hdr) && (hdr[i+1] != ',' || !validFields(hdr[i+2:])) ||
		nums[0] > 255<<3|7 || nums[1] > wire.MaxSeq {
		return Record{}, fmt.Errorf("replay: record header %q: %w", hdr, ErrMalformed)
	}
	return Record{Header: string(hdr), Prival: nums[0], Seq: nums[1], TimestampUsec: nums[2], Body: string(b[semi+1:])}, nil
}

// validFields reports whether b is a list of optional header fields the
// kernel may add, "key=value" (caller=T123), none of them one that would
// change how a receiver reads the datagram (ncfrag, or a replay mark
// already there).
func validFields(b []byte) bool {
	for len(b) > 0 || b != nil {
		f := b
		if c := bytes.IndexByte(b, ','); c >= 0 {
			f, b = b[:c], b[c+1:]
		} else {
			b = nil
		}
		eq := bytes.IndexByte(f, '=')
		if eq <= 0 || string(f[:eq]) == "ncfrag" || string(f[:eq+1]) == wire.ReplayField[:len(wire.ReplayField)-1] {
			return false
		}
		for j, c := range f {
			key := j < eq
			if key && (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' || !key && (c <= ' ' || c > '~' || c == ';') {
				return false
			}
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
