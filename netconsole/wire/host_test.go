package wire

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// msg returns an unfragmented extended message with a timestamp derived
// from its sequence number.
func msg(seq uint64, text string) Packet {
	return Packet{Extended: true, Level: 6, Seq: seq, TimestampUsec: 1000 * seq, Text: text}
}

// withTS returns p with timestamp ts.
func withTS(p Packet, ts uint64) Packet {
	p.TimestampUsec = ts
	return p
}

// frag returns fragment [off, off+len(text)) of a total-byte message seq.
func frag(seq uint64, off, total int, text string) Packet {
	p := msg(seq, text)
	p.FragOffset, p.FragTotal = off, total
	return p
}

// step is one call on a Host: Feed p at t0+at, or Flush at t0+at.
type step struct {
	at    time.Duration
	p     Packet
	flush bool
	drain bool
}

func feed(at time.Duration, p Packet) step { return step{at: at, p: p} }
func flush(at time.Duration) step          { return step{at: at, flush: true} }

// summary renders events compactly for comparison.
func summary(evs []Event) []string {
	var out []string
	for _, e := range evs {
		switch e.Kind {
		case Message:
			s := fmt.Sprintf("msg %d %q", e.Packet.Seq, e.Packet.Text)
			if !e.Packet.Extended {
				s = fmt.Sprintf("legacy %q", e.Packet.Text)
			}
			if len(e.Packet.Dict) > 0 {
				s += fmt.Sprintf(" %q", e.Packet.Dict)
			}
			if e.Late {
				s += " late"
			}
			if e.Packet.Replay {
				s += " replay"
			}
			out = append(out, s)
		case Gap:
			out = append(out, fmt.Sprintf("gap %d-%d", e.From, e.To))
		case Duplicate:
			out = append(out, fmt.Sprintf("dup %d", e.Packet.Seq))
		case Reboot:
			out = append(out, fmt.Sprintf("reboot %d->%d", e.From, e.To))
		case Dropped:
			out = append(out, fmt.Sprintf("dropped %d: %s", e.Packet.Seq, e.Reason.Text()))
		default:
			out = append(out, e.Kind.String())
		}
	}
	return out
}

func TestHost(t *testing.T) {
	long := strings.Repeat("x", 600)
	for _, tt := range []struct {
		name  string
		cfg   Config
		steps []step
		want  []string
	}{
		{
			name:  "in order",
			steps: []step{feed(0, msg(1, "a")), feed(0, msg(2, "b")), feed(0, msg(3, "c"))},
			want:  []string{`msg 1 "a"`, `msg 2 "b"`, `msg 3 "c"`},
		},
		{
			name:  "first seq is arbitrary",
			steps: []step{feed(0, msg(423, "a")), feed(0, msg(424, "b"))},
			want:  []string{`msg 423 "a"`, `msg 424 "b"`},
		},
		{
			name:  "reordered within window",
			steps: []step{feed(0, msg(1, "a")), feed(0, msg(3, "c")), feed(0, msg(4, "d")), feed(0, msg(2, "b"))},
			want:  []string{`msg 1 "a"`, `msg 2 "b"`, `msg 3 "c"`, `msg 4 "d"`},
		},
		{
			name:  "gap after reorder wait",
			steps: []step{feed(0, msg(1, "a")), feed(0, msg(4, "d")), flush(100 * time.Millisecond), flush(250 * time.Millisecond)},
			want:  []string{`msg 1 "a"`, `gap 2-3`, `msg 4 "d"`},
		},
		{
			name:  "gap found by a later feed",
			steps: []step{feed(0, msg(1, "a")), feed(0, msg(3, "c")), feed(time.Second, msg(4, "d"))},
			want:  []string{`msg 1 "a"`, `gap 2-2`, `msg 3 "c"`, `msg 4 "d"`},
		},
		{
			name: "gap when window overflows",
			cfg:  Config{ReorderWindow: 2},
			steps: []step{
				feed(0, msg(1, "a")), feed(0, msg(3, "c")), feed(0, msg(4, "d")), feed(0, msg(5, "e")),
				feed(0, msg(7, "g")),
			},
			want: []string{`msg 1 "a"`, `gap 2-2`, `msg 3 "c"`, `msg 4 "d"`, `msg 5 "e"`},
		},
		{
			name:  "reordering disabled",
			cfg:   Config{ReorderWindow: -1},
			steps: []step{feed(0, msg(1, "a")), feed(0, msg(3, "c")), feed(0, msg(2, "b"))},
			want:  []string{`msg 1 "a"`, `gap 2-2`, `msg 3 "c"`, `msg 2 "b" late`},
		},
		{
			name: "late message after gap",
			steps: []step{
				feed(0, msg(1, "a")), feed(0, msg(3, "c")), flush(time.Second), feed(time.Second, msg(2, "b")),
				feed(time.Second, msg(2, "b")),
			},
			want: []string{`msg 1 "a"`, `gap 2-2`, `msg 3 "c"`, `msg 2 "b" late`, `dup 2`},
		},
		{
			name:  "reordered at stream start",
			steps: []step{feed(0, msg(5, "e")), feed(0, msg(4, "d"))},
			want:  []string{`msg 5 "e"`, `msg 4 "d" late`},
		},
		{
			name:  "duplicate delivered",
			steps: []step{feed(0, msg(1, "a")), feed(0, msg(1, "a"))},
			want:  []string{`msg 1 "a"`, `dup 1`},
		},
		{
			name:  "duplicate held",
			steps: []step{feed(0, msg(1, "a")), feed(0, msg(3, "c")), feed(0, msg(3, "c")), feed(0, msg(2, "b"))},
			want:  []string{`msg 1 "a"`, `dup 3`, `msg 2 "b"`, `msg 3 "c"`},
		},
		{
			name: "reboot: sequence far backwards",
			steps: func() []step {
				var s []step
				for i := uint64(1000); i < 1100; i++ {
					s = append(s, feed(0, msg(i, "")))
				}
				return append(s, feed(0, withTS(msg(423, "new boot"), 2_000_000)))
			}(),
			want: func() []string {
				var s []string
				for i := 1000; i < 1100; i++ {
					s = append(s, fmt.Sprintf(`msg %d ""`, i))
				}
				return append(s, "reboot 1100->423", `msg 423 "new boot"`)
			}(),
		},
		{
			name: "reboot: seen seq with another timestamp",
			steps: []step{
				feed(0, msg(420, "a")), feed(0, msg(421, "b")), feed(0, msg(422, "c")),
				feed(0, withTS(msg(421, "new"), 5)), feed(0, withTS(msg(422, "newer"), 6)),
			},
			want: []string{`msg 420 "a"`, `msg 421 "b"`, `msg 422 "c"`, "reboot 423->421", `msg 421 "new"`, `msg 422 "newer"`},
		},
		{
			name: "reboot: timestamp backwards with seq ahead",
			steps: []step{
				feed(0, withTS(msg(400, "old"), 10_000_000)), feed(0, withTS(msg(401, "old"), 11_000_000)),
				feed(0, withTS(msg(402, "new"), 3_000_000)),
			},
			want: []string{`msg 400 "old"`, `msg 401 "old"`, "reboot 402->402", `msg 402 "new"`},
		},
		{
			name: "small clock skew is not a reboot",
			steps: []step{
				feed(0, withTS(msg(400, "a"), 10_000_000)), feed(0, withTS(msg(401, "b"), 9_999_000)),
			},
			want: []string{`msg 400 "a"`, `msg 401 "b"`},
		},
		{
			name: "reboot: release changes",
			steps: []step{
				feed(0, Packet{Extended: true, Release: "6.1.0", Seq: 10, TimestampUsec: 1, Text: "a"}),
				feed(0, Packet{Extended: true, Release: "6.1.0", Seq: 11, TimestampUsec: 2, Text: "b"}),
				feed(0, Packet{Extended: true, Release: "6.6.0", Seq: 12, TimestampUsec: 3, Text: "c"}),
			},
			want: []string{`msg 10 "a"`, `msg 11 "b"`, "reboot 12->12", `msg 12 "c"`},
		},
		{
			name: "reboot delivers held messages first",
			steps: []step{
				feed(0, msg(1000, "a")), feed(0, msg(1002, "c")), feed(0, frag(1003, 0, 10, "01234")),
				feed(0, withTS(msg(5, "new"), 1)),
			},
			want: []string{
				`msg 1000 "a"`, "dropped 1003: incomplete message before reboot",
				"gap 1001-1001", `msg 1002 "c"`, "reboot 1001->5", `msg 5 "new"`,
			},
		},
		{
			name: "fragments in order",
			steps: []step{
				feed(0, frag(416, 0, 31, "the first chunk,")), feed(0, frag(416, 16, 31, " the 2nd chunk.")),
			},
			want: []string{`msg 416 "the first chunk, the 2nd chunk."`},
		},
		{
			name: "fragments reversed, dictionary split after reassembly",
			steps: []step{
				feed(0, frag(7, 6, 22, "\n SUBSYSTEM=net\n")), feed(0, frag(7, 0, 22, "link u")), feed(0, frag(7, 6, 22, "\n SUBSYSTEM=net\n")),
			},
			want: []string{`msg 7 "link u" ["SUBSYSTEM=net"]`, "dup 7"},
		},
		{
			name: "duplicate fragment",
			steps: []step{
				feed(0, frag(7, 0, 6, "abc")), feed(0, frag(7, 0, 6, "abc")), feed(0, frag(7, 3, 6, "def")),
			},
			want: []string{"dup 7", `msg 7 "abcdef"`},
		},
		{
			name: "overlapping fragment",
			steps: []step{
				feed(0, frag(7, 0, 6, "abc")), feed(0, frag(7, 2, 6, "cd")), feed(0, frag(7, 3, 6, "def")),
			},
			want: []string{"dropped 7: fragment overlaps another", `msg 7 "abcdef"`},
		},
		{
			name: "conflicting fragment header",
			steps: []step{
				feed(0, frag(7, 0, 6, "abc")), feed(0, frag(7, 3, 7, "defg")), feed(0, frag(7, 3, 6, "def")),
			},
			want: []string{"dropped 7: conflicts with fragments of the same message", `msg 7 "abcdef"`},
		},
		{
			name: "fragmented message holds later ones",
			steps: []step{
				feed(0, msg(1, "a")), feed(0, frag(2, 0, 4, "bb")), feed(0, msg(3, "c")), feed(0, frag(2, 2, 4, "BB")),
			},
			want: []string{`msg 1 "a"`, `msg 2 "bbBB"`, `msg 3 "c"`},
		},
		{
			name: "incomplete message times out without a gap",
			steps: []step{
				feed(0, msg(1, "a")), feed(0, frag(2, 0, 4, "bb")), feed(1500*time.Millisecond, msg(3, "c")),
				flush(2 * time.Second), feed(3*time.Second, frag(2, 2, 4, "BB")), feed(3*time.Second, msg(4, "d")),
			},
			want: []string{
				`msg 1 "a"`, "dropped 2: incomplete message timed out", `msg 3 "c"`, `msg 4 "d"`,
			},
		},
		{
			name: "incomplete message behind a gap",
			steps: []step{
				feed(0, msg(1, "a")), feed(0, frag(3, 0, 4, "cc")), feed(0, msg(4, "d")),
				flush(time.Second), flush(2 * time.Second),
				feed(3*time.Second, frag(3, 2, 4, "CC")), feed(3*time.Second, msg(5, "e")),
			},
			want: []string{`msg 1 "a"`, "gap 2-2", `msg 4 "d"`, "dropped 3: incomplete message timed out", `msg 5 "e"`},
		},
		{
			name: "message completed behind a gap is late",
			steps: []step{
				feed(0, msg(1, "a")), feed(0, frag(3, 0, 4, "cc")), feed(0, msg(4, "d")),
				flush(time.Second), feed(time.Second, frag(3, 2, 4, "CC")),
			},
			want: []string{`msg 1 "a"`, "gap 2-2", `msg 4 "d"`, `msg 3 "ccCC" late`},
		},
		{
			name: "late fragmented message",
			steps: []step{
				feed(0, msg(1, "a")), feed(0, msg(3, "c")), flush(time.Second),
				feed(time.Second, frag(2, 0, 4, "bb")), feed(time.Second, frag(2, 2, 4, "BB")),
			},
			want: []string{`msg 1 "a"`, "gap 2-2", `msg 3 "c"`, `msg 2 "bbBB" late`},
		},
		{
			name: "pending limit drops oldest incomplete message",
			cfg:  Config{MaxPendingBytes: 2000},
			steps: []step{
				feed(0, msg(1, "a")),
				feed(0, frag(2, 0, 1200, long)),
				feed(time.Millisecond, frag(3, 0, 700, long)),
				feed(time.Millisecond, frag(3, 600, 700, strings.Repeat("y", 100))),
			},
			want: []string{
				`msg 1 "a"`, "dropped 2: pending bytes limit exceeded", `msg 3 "` + long + strings.Repeat("y", 100) + `"`,
			},
		},
		{
			name: "message larger than the pending limit",
			cfg:  Config{MaxPendingBytes: 1000},
			steps: []step{
				feed(0, msg(1, "a")), feed(0, frag(2, 0, 2000, long)), feed(0, frag(2, 600, 2000, long)), feed(0, msg(3, "c")),
			},
			want: []string{`msg 1 "a"`, "dropped 2: message larger than pending limit", `msg 3 "c"`},
		},
		{
			name: "pending limit delivers held messages past their gap",
			cfg:  Config{MaxPendingBytes: 1000, ReorderWindow: 100},
			steps: []step{
				feed(0, msg(1, "a")), feed(0, msg(3, long)), feed(0, msg(4, long)),
			},
			want: []string{`msg 1 "a"`, "gap 2-2", `msg 3 "` + long + `"`, `msg 4 "` + long + `"`},
		},
		{
			name: "legacy passes through",
			steps: []step{
				feed(0, msg(1, "a")), feed(0, Packet{Text: "plain\n"}), feed(0, msg(3, "c")),
			},
			want: []string{`msg 1 "a"`, `legacy "plain\n"`},
		},
		{
			name: "drain",
			steps: []step{
				feed(0, msg(1, "a")), feed(0, msg(3, "c")), feed(0, frag(5, 0, 4, "ee")), feed(0, msg(6, "f")),
				{drain: true},
			},
			want: []string{`msg 1 "a"`, "dropped 5: incomplete message drained", "gap 2-2", `msg 3 "c"`, "gap 4-4", `msg 6 "f"`},
		},
		{
			name: "invalid fragment from caller",
			steps: []step{
				feed(0, frag(1, 5, 5, "x")), feed(0, frag(1, 0, 2, "xyz")), feed(0, frag(1, -1, 2, "x")),
			},
			want: []string{"dropped 1: invalid fragment", "dropped 1: invalid fragment", "dropped 1: invalid fragment"},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := NewHost(tt.cfg)
			var got []Event
			for _, s := range tt.steps {
				switch {
				case s.drain:
					got = append(got, h.Drain(t0.Add(s.at))...)
				case s.flush:
					got = append(got, h.Flush(t0.Add(s.at))...)
				default:
					got = append(got, h.Feed(s.p, t0.Add(s.at))...)
				}
				if h.PendingBytes() > h.cfg.MaxPendingBytes {
					t.Fatalf("PendingBytes() = %d, over limit %d", h.PendingBytes(), h.cfg.MaxPendingBytes)
				}
			}
			if diff := cmp.Diff(tt.want, summary(got)); diff != "" {
				t.Errorf("events mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestHostReceived(t *testing.T) {
	h := NewHost(Config{})
	h.Feed(msg(1, "a"), t0)
	h.Feed(msg(3, "c"), t0.Add(10*time.Millisecond))
	got := h.Feed(msg(2, "b"), t0.Add(20*time.Millisecond))
	want := []time.Time{t0.Add(20 * time.Millisecond), t0.Add(10 * time.Millisecond)}
	if len(got) != 2 {
		t.Fatalf("Feed = %v, want 2 messages", summary(got))
	}
	for i, e := range got {
		if !e.Received.Equal(want[i]) {
			t.Errorf("event %d (%s) Received = %v, want %v", i, summary(got[i:i+1]), e.Received, want[i])
		}
	}
	if n := h.PendingBytes(); n != 0 {
		t.Errorf("PendingBytes() = %d, want 0", n)
	}
}

func TestEventLost(t *testing.T) {
	for _, tt := range []struct {
		e    Event
		want uint64
	}{
		{Event{Kind: Gap, From: 2, To: 2}, 1},
		{Event{Kind: Gap, From: 2, To: 11}, 10},
		{Event{Kind: Message, From: 2, To: 11}, 0},
	} {
		if got := tt.e.Lost(); got != tt.want {
			t.Errorf("%+v.Lost() = %d, want %d", tt.e, got, tt.want)
		}
	}
}
