package forward

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/lastgasp/lastgasp/netconsole/sink"
)

// AppName is the RFC 5424 APP-NAME of forwarded messages.
const AppName = "kernel"

// MsgID is the RFC 5424 MSGID of forwarded messages.
const MsgID = "netconsole"

// SDID is the structured data element carrying lastgasp's fields. 32473 is
// the private enterprise number reserved for documentation (RFC 5612); the
// element is "lastgasp@32473" until lastgasp has a number of its own.
const SDID = "lastgasp@32473"

// MaxFrame bounds the length of a frame ReadFrame accepts.
const MaxFrame = 64 << 10

// ErrFrame is wrapped by ReadFrame's errors for input that is not an
// octet-counted frame.
var ErrFrame = errors.New("malformed octet-counted frame")

// Format returns m as an RFC 5424 message:
//
//	<PRI>1 TIMESTAMP HOSTNAME kernel - netconsole [lastgasp@32473 seq="…" ts="…" boot="…"] TEXT
//
// The TIMESTAMP is m.Received; seq and ts are left out for a legacy
// (non-extended) message, boot when it is unknown. Fields that would not fit
// the RFC's syntax are repaired: HOSTNAME keeps printable ASCII (others
// become '_', at most 255 bytes, "-" if empty), PRI is clamped to the valid
// range, parameter values are escaped and line breaks and NULs in the text
// become spaces.
func Format(m sink.Message) []byte {
	return AppendFormat(nil, m)
}

// AppendFormat appends Format(m) to b.
func AppendFormat(b []byte, m sink.Message) []byte {
	fac, lvl := m.Facility, m.Level
	if fac < 0 || fac > 23 {
		fac = 1 // user-level, as RFC 5424 suggests for unknown sources
	}
	if lvl < 0 || lvl > 7 {
		lvl = 7
	}
	b = append(b, '<')
	b = strconv.AppendInt(b, int64(fac*8+lvl), 10)
	b = append(b, ">1 "...)
	t := m.Received
	if t.IsZero() {
		b = append(b, '-')
	} else {
		b = t.UTC().AppendFormat(b, "2006-01-02T15:04:05.000000Z07:00")
	}
	b = append(b, ' ')
	b = appendName(b, m.Host, 255)
	b = append(b, " "+AppName+" - "+MsgID+" ["+SDID...)
	if m.Extended {
		b = append(b, ` seq="`...)
		b = strconv.AppendUint(b, m.Seq, 10)
		b = append(b, `" ts="`...)
		b = strconv.AppendUint(b, m.TimestampUsec/1e6, 10)
		b = append(b, '.')
		us := strconv.FormatUint(m.TimestampUsec%1e6, 10)
		for range 6 - len(us) {
			b = append(b, '0')
		}
		b = append(b, us...)
		b = append(b, '"')
	}
	if m.Boot != "" {
		b = append(b, ` boot="`...)
		b = appendParam(b, m.Boot)
		b = append(b, '"')
	}
	b = append(b, ']')
	if m.Text != "" {
		b = append(b, ' ')
		for i := 0; i < len(m.Text); i++ {
			if c := m.Text[i]; c == '\n' || c == '\r' || c == 0 {
				b = append(b, ' ')
			} else {
				b = append(b, c)
			}
		}
	}
	return b
}

// appendName appends s as an RFC 5424 header field: PRINTUSASCII, at most
// limit bytes, "-" (NILVALUE) if empty.
func appendName(b []byte, s string, limit int) []byte {
	if s == "" {
		return append(b, '-')
	}
	if len(s) > limit {
		s = s[:limit]
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 33 || c > 126 {
			c = '_'
		}
		b = append(b, c)
	}
	return b
}

// appendParam appends s as a PARAM-VALUE: '"', '\' and ']' escaped with a
// backslash, control bytes replaced by '?'.
func appendParam(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\' || c == ']':
			b = append(b, '\\', c)
		case c < 32 || c == 127:
			b = append(b, '?')
		default:
			b = append(b, c)
		}
	}
	return b
}

// AppendFrame appends msg with RFC 6587 octet-counting framing:
// "<length> <msg>".
func AppendFrame(b, msg []byte) []byte {
	b = strconv.AppendInt(b, int64(len(msg)), 10)
	b = append(b, ' ')
	return append(b, msg...)
}

// ReadFrame reads one octet-counted frame from r and returns its message.
// It returns io.EOF at a clean end of input and an error wrapping ErrFrame
// for a length that is missing, not a number, zero, longer than MaxFrame or
// not followed by a space.
func ReadFrame(r *bufio.Reader) ([]byte, error) {
	n := 0
	digits := 0
	for {
		c, err := r.ReadByte()
		if err != nil {
			if err == io.EOF && digits > 0 {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		if c == ' ' && digits > 0 {
			break
		}
		if c < '0' || c > '9' || (digits == 0 && c == '0') {
			return nil, fmt.Errorf("forward: frame length: byte %q: %w", c, ErrFrame)
		}
		n = n*10 + int(c-'0')
		digits++
		if n > MaxFrame {
			return nil, fmt.Errorf("forward: frame length over %d: %w", MaxFrame, ErrFrame)
		}
	}
	msg := make([]byte, n)
	if _, err := io.ReadFull(r, msg); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("forward: frame of %d bytes: %w", n, err)
	}
	return msg, nil
}
