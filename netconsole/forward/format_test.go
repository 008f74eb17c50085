package forward

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/lastgasp/lastgasp/netconsole/sink"
)

var t0 = time.Date(2026, 11, 25, 16, 4, 5, 123456789, time.UTC)

func TestFormat(t *testing.T) {
	for _, tt := range []struct {
		name string
		m    sink.Message
		want string
	}{
		{
			name: "extended",
			m: sink.Message{Host: "52-54-00-12-34-56", Boot: "1b6f", Level: 0, Seq: 812, TimestampUsec: 3163223, Extended: true, Received: t0,
				Text: "Kernel panic - not syncing: sysrq triggered crash"},
			want: `<0>1 2026-11-25T16:04:05.123456Z 52-54-00-12-34-56 kernel - netconsole [lastgasp@32473 seq="812" ts="3.163223" boot="1b6f"] Kernel panic - not syncing: sysrq triggered crash`,
		},
		{
			name: "legacy, unknown boot, no text",
			m:    sink.Message{Host: "10.0.2.15", Level: 6, Received: t0},
			want: `<6>1 2026-11-25T16:04:05.123456Z 10.0.2.15 kernel - netconsole [lastgasp@32473]`,
		},
		{
			name: "repairs",
			m:    sink.Message{Host: "a b\x00", Boot: `x"]\`, Facility: 99, Level: 9, Text: "one\ntwo"},
			want: `<15>1 - a_b_ kernel - netconsole [lastgasp@32473 boot="x\"\]\\"] one two`,
		},
		{
			name: "empty host",
			m:    sink.Message{Facility: 3, Level: 4, Received: t0},
			want: `<28>1 2026-11-25T16:04:05.123456Z - kernel - netconsole [lastgasp@32473]`,
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(Format(tt.m)); got != tt.want {
				t.Errorf("Format(%+v) =\n%s\nwant\n%s", tt.m, got, tt.want)
			}
		})
	}
}

func TestFrameRoundTrip(t *testing.T) {
	msgs := []string{"a", "<6>1 - h kernel - netconsole [lastgasp@32473] hello world", strings.Repeat("z", 5000)}
	var b []byte
	for _, m := range msgs {
		b = AppendFrame(b, []byte(m))
	}
	if !bytes.HasPrefix(b, []byte("1 a57 <6>1")) {
		t.Errorf("frames start %q, want %q", b[:10], "1 a57 <6>1")
	}
	r := bufio.NewReader(bytes.NewReader(b))
	for _, want := range msgs {
		got, err := ReadFrame(r)
		if err != nil || string(got) != want {
			t.Fatalf("ReadFrame = %.20q, %v, want %.20q", got, err, want)
		}
	}
	if _, err := ReadFrame(r); err != io.EOF {
		t.Errorf("ReadFrame at end = %v, want io.EOF", err)
	}
}

func TestReadFrameErrors(t *testing.T) {
	for _, tt := range []struct {
		name, in string
		want     error
	}{
		{"no length", " x", ErrFrame},
		{"leading zero", "01 x", ErrFrame},
		{"letters", "1a x", ErrFrame},
		{"too long", "999999 x", ErrFrame},
		{"short body", "5 abc", io.ErrUnexpectedEOF},
		{"length only", "5", io.ErrUnexpectedEOF},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ReadFrame(bufio.NewReader(strings.NewReader(tt.in)))
			if !errors.Is(err, tt.want) {
				t.Errorf("ReadFrame(%q) = %v, want %v", tt.in, err, tt.want)
			}
		})
	}
}

// FuzzReadFrame checks that ReadFrame never accepts more than MaxFrame and
// that what it accepts frames back to the same bytes.
func FuzzReadFrame(f *testing.F) {
	f.Add([]byte("3 abc"))                  // one frame
	f.Add([]byte("1 a2 bc"))                // two frames
	f.Add([]byte("0 "))                     // zero length: invalid
	f.Add([]byte("65537 x"))                // over MaxFrame
	f.Add([]byte("12 <6>1 - h k"))          // truncated
	f.Add([]byte("<6>1 non-transparent\n")) // the other framing: invalid here
	f.Fuzz(func(t *testing.T, in []byte) {
		r := bufio.NewReader(bytes.NewReader(in))
		var out []byte
		for {
			msg, err := ReadFrame(r)
			if err != nil {
				break
			}
			if len(msg) == 0 || len(msg) > MaxFrame {
				t.Fatalf("ReadFrame returned %d bytes", len(msg))
			}
			out = AppendFrame(out, msg)
		}
		if !bytes.HasPrefix(in, out) {
			t.Fatalf("re-framed %q is not a prefix of input %q", out, in)
		}
	})
}

// FuzzFormat checks that any Message formats to one line with a valid
// header.
func FuzzFormat(f *testing.F) {
	f.Add("host", "boot", 0, 6, uint64(1), "text")
	f.Add("a b", `"]\`, -1, 99, uint64(1<<63), "x\ny\r\x00")
	f.Fuzz(func(t *testing.T, host, boot string, fac, lvl int, seq uint64, text string) {
		b := Format(sink.Message{Host: host, Boot: boot, Facility: fac, Level: lvl, Seq: seq, Extended: seq%2 == 0, Text: text, Received: t0})
		if bytes.ContainsAny(b, "\n\r\x00") {
			t.Fatalf("Format = %q: contains a line break or NUL", b)
		}
		f := bytes.SplitN(b, []byte(" "), 7)
		if len(f) < 7 || !bytes.HasPrefix(f[0], []byte("<")) || !bytes.HasSuffix(f[0], []byte(">1")) ||
			string(f[3]) != AppName || string(f[5]) != MsgID || !bytes.HasPrefix(f[6], []byte("["+SDID)) {
			t.Fatalf("Format = %q: bad header", b)
		}
		for _, c := range f[2] {
			if c < 33 || c > 126 {
				t.Fatalf("Format = %q: HOSTNAME byte %q", b, c)
			}
		}
	})
}
