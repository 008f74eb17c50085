package wire

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrMalformed is wrapped by every error Parse returns: the datagram carries an
// extended netconsole header whose values are invalid.
var ErrMalformed = errors.New("malformed netconsole datagram")

const (
	// MaxFragTotal is the largest message, in bytes, that Parse accepts as
	// the total of a fragmented message (the ncfrag=<off>/<total> field).
	MaxFragTotal = 64 << 10

	// MaxSeq is the largest sequence number Parse accepts. The kernel's
	// printk sequence starts at zero and counts messages, so it never gets
	// near; the limit keeps sequence arithmetic free of overflow.
	MaxSeq = 1<<63 - 1

	// maxPrival is the largest prival: an 8-bit facility and a 3-bit level.
	maxPrival = 255<<3 | 7
	// maxHeader bounds the header (the bytes before the first ';') of an
	// extended datagram: a 64-byte release, four numbers and a few fields.
	maxHeader = 512
	// maxRelease is the kernel's __NEW_UTS_LEN.
	maxRelease = 64
)

// ReplayField is the header field that marks a record replayed from the
// sender's kernel log buffer (/dev/kmsg) rather than sent live by the
// kernel's netconsole: "<prival>,<seq>,<ts>,<flags>,lastgasp_replay=1;text".
// It is a header field, not a dictionary line, because netconsole repeats the
// header in every fragment of a long message: a receiver knows a datagram is
// replayed from its first fragment on, before reassembly, which is when it
// must tell an old record of this boot from the start of a new boot. The
// kernel itself adds optional header fields (caller= with
// CONFIG_PRINTK_CALLER), so extended-format parsers skip fields they do not
// know.
const ReplayField = "lastgasp_replay=1"

const replayKey = "lastgasp_replay"

// Packet is one parsed netconsole datagram or, when returned by Host, one
// complete reassembled message.
type Packet struct {
	// Extended reports whether the datagram carried an extended header.
	// Legacy datagrams only set Text.
	Extended bool
	// Release is the kernel release prepended by netconsole's "release"
	// option, or empty.
	Release string
	// Facility and Level are the syslog facility and level (prival =
	// Facility*8 + Level).
	Facility, Level int
	// Seq is the printk sequence number.
	Seq uint64
	// TimestampUsec is the printk timestamp in microseconds since boot.
	TimestampUsec uint64
	// Cont reports the continuation flag ('c', or '+' on old kernels).
	Cont bool
	// Replay reports the ReplayField header field: the record was replayed
	// from the sender's kernel log buffer, after its live stream began.
	Replay bool
	// FragOffset and FragTotal are the ncfrag=<offset>/<total> field of a
	// fragment; both are zero for an unfragmented message.
	FragOffset, FragTotal int
	// Text is the message text as sent: the kernel escapes non-printable
	// bytes as \xNN in extended messages. For a fragment it is the raw
	// chunk, dictionary lines included; for a legacy datagram it is the
	// whole datagram.
	Text string
	// Dict holds the KEY=VALUE lines that follow the text of an
	// unfragmented extended message, without the leading space.
	Dict []string
}

// Fragmented reports whether p is one fragment of a longer message.
func (p Packet) Fragmented() bool { return p.FragTotal > 0 }

// Parse parses one UDP datagram. A datagram whose header (the text before the
// first ';') matches the extended format strictly is extended; any other
// datagram is legacy console text and is returned as Packet{Text: ...}.
// Errors wrap ErrMalformed: an empty datagram, or an extended header with out
// of range numbers, unknown syntax in its optional fields or a bad ncfrag.
func Parse(b []byte) (Packet, error) {
	if len(b) == 0 {
		return Packet{}, fmt.Errorf("netconsole: empty datagram: %w", ErrMalformed)
	}
	p, semi, ext, err := parseHeader(b)
	if err != nil {
		return Packet{}, err
	}
	if !ext {
		return Packet{Text: string(b)}, nil
	}
	body := string(b[semi+1:])
	if !p.Fragmented() {
		p.Text, p.Dict = splitBody(body)
		return p, nil
	}
	if err := checkFragment(p, len(body)); err != nil {
		return Packet{}, err
	}
	p.Text = body
	return p, nil
}

// ParseHeader parses the header of an extended datagram as Parse does,
// without copying its body, which it returns as is (text and dictionary
// lines, or a fragment). It reports false for a datagram Parse would return
// as legacy text or as an error. A collector uses it to pass over datagrams
// it drops anyway (rate limiting) at a fraction of Parse's cost.
func ParseHeader(b []byte) (p Packet, body []byte, ok bool) {
	if len(b) == 0 {
		return Packet{}, nil, false
	}
	p, semi, ext, err := parseHeader(b)
	if err != nil || !ext {
		return Packet{}, nil, false
	}
	body = b[semi+1:]
	if p.Fragmented() && checkFragment(p, len(body)) != nil {
		return Packet{}, nil, false
	}
	return p, body, true
}

// checkFragment checks a fragment's body length against its header.
func checkFragment(p Packet, n int) error {
	if n == 0 {
		return fmt.Errorf("netconsole: seq %d: empty fragment: %w", p.Seq, ErrMalformed)
	}
	if n > p.FragTotal-p.FragOffset {
		return fmt.Errorf("netconsole: seq %d: fragment %d+%d overruns total %d: %w",
			p.Seq, p.FragOffset, n, p.FragTotal, ErrMalformed)
	}
	return nil
}

// parseHeader parses the header of datagram b (not empty): ext is false for
// legacy text; semi is the index of the ';' that ends an extended header.
func parseHeader(b []byte) (p Packet, semi int, ext bool, err error) {
	semi = bytes.IndexByte(b, ';')
	if semi < 0 || semi > maxHeader {
		return Packet{}, 0, false, nil
	}
	fields := strings.Split(string(b[:semi]), ",")
	if !isDigits(fields[0]) {
		if !validRelease(fields[0]) {
			return Packet{}, 0, false, nil
		}
		p.Release = fields[0]
		fields = fields[1:]
	}
	if len(fields) < 4 || !isDigits(fields[0]) || !isDigits(fields[1]) || !isDigits(fields[2]) || !validFlags(fields[3]) {
		return Packet{}, 0, false, nil
	}
	// From here on the datagram is extended; problems are errors.
	p.Extended = true
	prival, err := strconv.ParseUint(fields[0], 10, 64)
	if err != nil || prival > maxPrival {
		return Packet{}, 0, true, fmt.Errorf("netconsole: prival %q out of range: %w", fields[0], ErrMalformed)
	}
	p.Facility, p.Level = int(prival>>3), int(prival&7)
	if p.Seq, err = strconv.ParseUint(fields[1], 10, 64); err != nil || p.Seq > MaxSeq {
		return Packet{}, 0, true, fmt.Errorf("netconsole: seq %q out of range: %w", fields[1], ErrMalformed)
	}
	if p.TimestampUsec, err = strconv.ParseUint(fields[2], 10, 64); err != nil {
		return Packet{}, 0, true, fmt.Errorf("netconsole: timestamp %q out of range: %w", fields[2], ErrMalformed)
	}
	p.Cont = fields[3] != "-"
	sawFrag := false
	for _, f := range fields[4:] {
		k, v, ok := strings.Cut(f, "=")
		if !ok || !validKey(k) || !validValue(v) {
			return Packet{}, 0, true, fmt.Errorf("netconsole: header field %q: %w", f, ErrMalformed)
		}
		if k == replayKey && v == "1" {
			p.Replay = true
			continue
		}
		if k != "ncfrag" {
			continue // e.g. caller=T123 from CONFIG_PRINTK_CALLER
		}
		if sawFrag {
			return Packet{}, 0, true, fmt.Errorf("netconsole: repeated ncfrag field: %w", ErrMalformed)
		}
		sawFrag = true
		if p.FragOffset, p.FragTotal, err = parseFrag(v); err != nil {
			return Packet{}, 0, true, err
		}
	}
	return p, semi, true, nil
}

// parseFrag parses the value of ncfrag=<offset>/<total>.
func parseFrag(v string) (off, total int, err error) {
	o, t, ok := strings.Cut(v, "/")
	if !ok || !isDigits(o) || !isDigits(t) {
		return 0, 0, fmt.Errorf("netconsole: ncfrag %q: %w", v, ErrMalformed)
	}
	off64, err1 := strconv.ParseUint(o, 10, 32)
	total64, err2 := strconv.ParseUint(t, 10, 32)
	if err1 != nil || err2 != nil || total64 == 0 || total64 > MaxFragTotal || off64 >= total64 {
		return 0, 0, fmt.Errorf("netconsole: ncfrag %q out of range: %w", v, ErrMalformed)
	}
	return int(off64), int(total64), nil
}

// splitBody splits the body of a complete extended message into its text and
// its dictionary: the text ends at the first newline and each following
// non-empty line (normally " KEY=VALUE") is one entry.
func splitBody(body string) (text string, dict []string) {
	text, rest, _ := strings.Cut(body, "\n")
	for line := range strings.SplitSeq(rest, "\n") {
		line = strings.TrimPrefix(line, " ")
		if line != "" {
			dict = append(dict, line)
		}
	}
	return text, dict
}

// Format returns the wire form of p. Parse(Format(p)) returns p for every
// Packet that Parse returned; Format does not validate other packets. An
// unfragmented extended message is written the way the kernel writes it: the
// text and each dictionary entry end in a newline.
func Format(p Packet) []byte {
	if !p.Extended {
		return []byte(p.Text)
	}
	b := make([]byte, 0, 64+len(p.Release)+len(p.Text))
	if p.Release != "" {
		b = append(b, p.Release...)
		b = append(b, ',')
	}
	b = strconv.AppendInt(b, int64(p.Facility)*8+int64(p.Level), 10)
	b = append(b, ',')
	b = strconv.AppendUint(b, p.Seq, 10)
	b = append(b, ',')
	b = strconv.AppendUint(b, p.TimestampUsec, 10)
	if p.Cont {
		b = append(b, ",c"...)
	} else {
		b = append(b, ",-"...)
	}
	if p.Replay {
		b = append(b, ',')
		b = append(b, ReplayField...)
	}
	if p.FragTotal > 0 {
		b = append(b, ",ncfrag="...)
		b = strconv.AppendInt(b, int64(p.FragOffset), 10)
		b = append(b, '/')
		b = strconv.AppendInt(b, int64(p.FragTotal), 10)
		b = append(b, ';')
		return append(b, p.Text...)
	}
	b = append(b, ';')
	b = append(b, p.Text...)
	b = append(b, '\n')
	for _, d := range p.Dict {
		b = append(b, ' ')
		b = append(b, d...)
		b = append(b, '\n')
	}
	return b
}

// isDigits reports whether s is a non-empty string of ASCII decimal digits.
func isDigits(s string) bool {
	if len(s) == 0 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// validFlags reports whether s is a printk flags field: '-' or 'c', or '+'
// (continued fragment) from kernels before 4.x.
func validFlags(s string) bool {
	return s == "-" || s == "c" || s == "+"
}

// validRelease reports whether s looks like a kernel release (uname -r):
// not a number, so that it cannot be mistaken for the prival.
func validRelease(s string) bool {
	if len(s) == 0 || len(s) > maxRelease || isDigits(s) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '.', c == '-', c == '_', c == '+', c == '~':
		default:
			return false
		}
	}
	return true
}

// validKey reports whether s is a header field name such as "ncfrag".
func validKey(s string) bool {
	if len(s) == 0 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' {
			return false
		}
	}
	return true
}

// validValue reports whether s is a printable header field value.
func validValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}
