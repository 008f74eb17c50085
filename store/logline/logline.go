// Package logline is the one definition of a kernel.log line in the
// collector's store: the netconsole receiver writes them with
// AppendMessage and AppendNote, and everything that reads a kernel.log back
// (the crash listing, tests, tools) uses Parse.
//
//	<received RFC 3339> <level> seq=<seq> ts=<sec.usec> <text>   an extended netconsole message
//	<received RFC 3339> <level>r seq=<seq> ts=<sec.usec> <text>  the same, replayed from the sender's kernel buffer
//	<received RFC 3339> - - - <text>                              a legacy (non-extended) message
//	<received RFC 3339> lastgaspd: <text>                         the collector's own note (gap, reboot, ...)
//
// A replayed message (wire.Packet.Replay: the agent sent it from /dev/kmsg
// after arming netconsole, see netconsole/replay) is marked by an "r" after
// its level: it is backfill, written where it arrived, so after lines with
// higher sequence numbers. The mark sits in the level field so that readers
// matching "<stamp> <level> seq=" keep reading the line.
//
// Text is sanitized (wire.Sanitize): one line never holds a newline, a
// control byte or a bidirectional override, so a message cannot forge
// another line.
package logline

import (
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/lastgasp/lastgasp/netconsole/wire"
)

// Kind says what a line holds.
type Kind int

// Line kinds.
const (
	// Message is an extended netconsole message.
	Message Kind = iota + 1
	// Legacy is a message without extended headers.
	Legacy
	// Note is a line the collector wrote itself.
	Note
)

// NotePrefix starts the text of the collector's own lines.
const NotePrefix = "lastgaspd: "

// ErrMalformed is returned by Parse for a line that is not in the format.
var ErrMalformed = errors.New("malformed kernel.log line")

// Line is one parsed kernel.log line.
type Line struct {
	// Time is when the collector received the message (or wrote the
	// note).
	Time time.Time
	// Kind says which of the fields below are set.
	Kind Kind
	// Level is the printk level, 0 to 7 (Message).
	Level int
	// Seq is the printk sequence number (Message).
	Seq uint64
	// TimestampUsec is the printk timestamp in microseconds (Message).
	TimestampUsec uint64
	// Replay marks a message replayed from the sender's kernel log buffer
	// (Message): backfill, older than the lines written before it.
	Replay bool
	// Text is the message, as sanitized when written; for a Note, the
	// text after NotePrefix.
	Text string
}

// AppendMessage appends the line for message p, received at t, and a
// newline to b: one line for an extended message, one per line of text for a
// legacy one.
func AppendMessage(b []byte, t time.Time, p wire.Packet) []byte {
	if !p.Extended {
		// A legacy datagram may hold several lines (printk's own
		// newlines): one log line each.
		text := strings.TrimSuffix(p.Text, "\n")
		for l := range strings.SplitSeq(text, "\n") {
			b = t.UTC().AppendFormat(b, time.RFC3339Nano)
			b = append(b, " - - - "...)
			b = append(b, wire.Sanitize(strings.TrimSuffix(l, "\r"))...)
			b = append(b, '\n')
		}
		return b
	}
	b = t.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(p.Level&7), 10)
	if p.Replay {
		b = append(b, 'r')
	}
	b = append(b, " seq="...)
	b = strconv.AppendUint(b, p.Seq, 10)
	b = append(b, " ts="...)
	b = strconv.AppendUint(b, p.TimestampUsec/1e6, 10)
	b = append(b, '.')
	us := p.TimestampUsec % 1e6
	for d := uint64(100000); d > 1 && us < d; d /= 10 {
		b = append(b, '0')
	}
	b = strconv.AppendUint(b, us, 10)
	b = append(b, ' ')
	b = append(b, wire.Sanitize(p.Text)...)
	return append(b, '\n')
}

// AppendNote appends the collector's note text, written at t, and a newline
// to b.
func AppendNote(b []byte, t time.Time, text string) []byte {
	b = t.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, ' ')
	b = append(b, NotePrefix...)
	b = append(b, wire.Sanitize(text)...)
	return append(b, '\n')
}

// AppendNoteBytes is AppendNote for a text built in a buffer, such as the
// receiver's gap notes: one per loss, so they are not worth a string each.
func AppendNoteBytes(b []byte, t time.Time, text []byte) []byte {
	for _, c := range text {
		if c < ' ' || c >= 0x7f {
			return AppendNote(b, t, string(text))
		}
	}
	b = t.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, ' ')
	b = append(b, NotePrefix...)
	b = append(b, text...)
	return append(b, '\n')
}

// Parse parses one line, without its newline.
func Parse(line string) (Line, error) {
	stamp, rest, ok := strings.Cut(line, " ")
	if !ok {
		return Line{}, ErrMalformed
	}
	t, err := time.Parse(time.RFC3339Nano, stamp)
	if err != nil {
		return Line{}, ErrMalformed
	}
	if text, ok := strings.CutPrefix(rest, "- - - "); ok {
		return Line{Time: t, Kind: Legacy, Text: text}, nil
	}
	if text, ok := strings.CutPrefix(rest, NotePrefix); ok {
		return Line{Time: t, Kind: Note, Text: text}, nil
	}
	f := strings.SplitN(rest, " ", 4)
	replay := len(f[0]) == 2 && f[0][1] == 'r'
	if len(f) < 3 || len(f[0]) != 1 && !replay || f[0][0] < '0' || f[0][0] > '7' {
		return Line{}, ErrMalformed
	}
	seqs, ok1 := strings.CutPrefix(f[1], "seq=")
	tss, ok2 := strings.CutPrefix(f[2], "ts=")
	if !ok1 || !ok2 {
		return Line{}, ErrMalformed
	}
	seq, err := strconv.ParseUint(seqs, 10, 64)
	if err != nil {
		return Line{}, ErrMalformed
	}
	sec, usec, ok := strings.Cut(tss, ".")
	if !ok || len(usec) != 6 {
		return Line{}, ErrMalformed
	}
	s, err1 := strconv.ParseUint(sec, 10, 64)
	u, err2 := strconv.ParseUint(usec, 10, 64)
	if err1 != nil || err2 != nil || s > (1<<64-1)/1_000_000-1 {
		return Line{}, ErrMalformed
	}
	l := Line{Time: t, Kind: Message, Level: int(f[0][0] - '0'), Seq: seq, TimestampUsec: s*1e6 + u, Replay: replay}
	if len(f) == 4 {
		l.Text = f[3]
	}
	return l, nil
}
