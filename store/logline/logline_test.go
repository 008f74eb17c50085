package logline

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/lastgasp/lastgasp/netconsole/wire"
)

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 123456789, time.UTC)

func TestAppend(t *testing.T) {
	for _, tt := range []struct {
		name string
		got  []byte
		want string
	}{
		{"extended", AppendMessage(nil, t0, wire.Packet{Extended: true, Level: 6, Seq: 422, TimestampUsec: 2_345_007, Text: "lastgasp: netconsole armed"}),
			"2026-11-25T12:00:00.123456789Z 6 seq=422 ts=2.345007 lastgasp: netconsole armed\n"},
		{"extended escapes", AppendMessage(nil, t0, wire.Packet{Extended: true, Level: 0, Seq: 1, Text: "a\nb\u202e"}),
			"2026-11-25T12:00:00.123456789Z 0 seq=1 ts=0.000000 a\\x0ab\\xe2\\x80\\xae\n"},
		{"replayed", AppendMessage(nil, t0, wire.Packet{Extended: true, Replay: true, Level: 5, Seq: 0, TimestampUsec: 0, Text: "Linux version 6.1.0-56-amd64"}),
			"2026-11-25T12:00:00.123456789Z 5r seq=0 ts=0.000000 Linux version 6.1.0-56-amd64\n"},
		{"legacy", AppendMessage(nil, t0, wire.Packet{Text: "[    1.0] hello"}),
			"2026-11-25T12:00:00.123456789Z - - - [    1.0] hello\n"},
		{"note", AppendNote(nil, t0, "gap seq=5-9 lost=5"),
			"2026-11-25T12:00:00.123456789Z lastgaspd: gap seq=5-9 lost=5\n"},
		{"note from bytes", AppendNoteBytes([]byte("kept "), t0, []byte("gap seq=5-9 lost=5")),
			"kept 2026-11-25T12:00:00.123456789Z lastgaspd: gap seq=5-9 lost=5\n"},
		{"note from bytes escapes", AppendNoteBytes(nil, t0, []byte("a\nb\u202e")),
			"2026-11-25T12:00:00.123456789Z lastgaspd: a\\x0ab\\xe2\\x80\\xae\n"},
	} {
		if string(tt.got) != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, tt.got, tt.want)
		}
	}
}

func TestParse(t *testing.T) {
	for _, tt := range []struct {
		line string
		want Line
		err  bool
	}{
		// Captured from a panic-roundtrip store.
		{"2026-11-25T12:00:00.5Z 0 seq=812 ts=8.123456 Kernel panic - not syncing: sysrq triggered crash",
			Line{Time: t0.Add(-123456789 + 5e8), Kind: Message, Level: 0, Seq: 812, TimestampUsec: 8123456, Text: "Kernel panic - not syncing: sysrq triggered crash"}, false},
		{"2026-11-25T12:00:00Z - - - hello", Line{Time: t0.Truncate(time.Second), Kind: Legacy, Text: "hello"}, false},
		{"2026-11-25T12:00:00Z lastgaspd: reboot seq=0 expected=17", Line{Time: t0.Truncate(time.Second), Kind: Note, Text: "reboot seq=0 expected=17"}, false},
		{"2026-11-25T12:00:00Z 6 seq=1 ts=0.000001", Line{Time: t0.Truncate(time.Second), Kind: Message, Level: 6, Seq: 1, TimestampUsec: 1}, false},
		{"2026-11-25T12:00:00Z 5r seq=0 ts=0.000000 Linux version 6.1.0-56-amd64",
			Line{Time: t0.Truncate(time.Second), Kind: Message, Level: 5, Seq: 0, Replay: true, Text: "Linux version 6.1.0-56-amd64"}, false},
		{"2026-11-25T12:00:00Z 5x seq=0 ts=0.000000 x", Line{}, true},
		{"2026-11-25T12:00:00Z 5rr seq=0 ts=0.000000 x", Line{}, true},
		{"2026-11-25T12:00:00Z r seq=0 ts=0.000000 x", Line{}, true},
		{"garbage", Line{}, true},
		{"2026-11-25T12:00:00Z 8 seq=1 ts=0.000001 x", Line{}, true},
		{"2026-11-25T12:00:00Z 6 seq=x ts=0.000001 x", Line{}, true},
		{"2026-11-25T12:00:00Z 6 seq=1 ts=0.1 x", Line{}, true},
		{"yesterday 6 seq=1 ts=0.000001 x", Line{}, true},
	} {
		got, err := Parse(tt.line)
		if (err != nil) != tt.err {
			t.Errorf("Parse(%q) error = %v, want error %v", tt.line, err, tt.err)
			continue
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("Parse(%q) (-want +got):\n%s", tt.line, diff)
		}
	}
}

func FuzzRoundTrip(f *testing.F) {
	f.Add(uint8(6), uint64(422), uint64(2345007), "lastgasp: netconsole armed", true, false)
	f.Add(uint8(0), uint64(0), uint64(0), "a\nb\x1b", false, false)
	f.Add(uint8(5), uint64(0), uint64(0), "Linux version 6.1.0-56-amd64", true, true)
	f.Fuzz(func(t *testing.T, level uint8, seq, ts uint64, text string, ext, replay bool) {
		p := wire.Packet{Extended: ext, Level: int(level & 7), Seq: seq, TimestampUsec: ts % (1 << 60), Text: text, Replay: replay}
		b := AppendMessage(nil, t0, p)
		if !ext {
			parts := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
			lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
			if len(lines) != len(parts) {
				t.Fatalf("AppendMessage(legacy %q) = %d lines, want %d", text, len(lines), len(parts))
			}
			for i, l := range lines {
				got, err := Parse(l)
				want := Line{Time: t0, Kind: Legacy, Text: wire.Sanitize(strings.TrimSuffix(parts[i], "\r"))}
				if err != nil || got != want {
					t.Fatalf("line %d of legacy %q: Parse = %+v, %v; want %+v", i, text, got, err, want)
				}
			}
			return
		}
		if strings.Count(string(b), "\n") != 1 || b[len(b)-1] != '\n' {
			t.Fatalf("AppendMessage(%+v) = %q: not one line", p, b)
		}
		l, err := Parse(string(b[:len(b)-1]))
		if err != nil {
			t.Fatalf("Parse(AppendMessage(%+v)) = %v", p, err)
		}
		want := Line{Time: t0, Kind: Legacy, Text: wire.Sanitize(text)}
		if ext {
			want = Line{Time: t0, Kind: Message, Level: p.Level, Seq: seq, TimestampUsec: p.TimestampUsec, Text: wire.Sanitize(text), Replay: replay}
		}
		if diff := cmp.Diff(want, l); diff != "" {
			t.Fatalf("round trip of %+v (-want +got):\n%s", p, diff)
		}
	})
}

func FuzzParse(f *testing.F) {
	f.Add("2026-11-25T12:00:00Z 6 seq=1 ts=0.000001 x")
	f.Add("2026-11-25T12:00:00Z lastgaspd: x")
	f.Fuzz(func(t *testing.T, s string) {
		Parse(s) // must not panic
	})
}
