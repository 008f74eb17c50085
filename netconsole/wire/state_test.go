package wire

import (
	"cmp"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"
)

// TestResetFromState checks that a Host rebuilt from another's State goes
// on where the first stopped: the next message after the hand-over is still
// compared with the last sequence number delivered.
func TestResetFromState(t *testing.T) {
	for _, tt := range []struct {
		name  string
		base  uint64 // messages 1..base fed to the first Host (5 if 0)
		after []step // fed to the rebuilt Host
		want  []string
	}{
		{
			name:  "in order continues without a gap",
			after: []step{feed(time.Second, msg(6, "six"))},
			want:  []string{`msg 6 "six"`},
		},
		{
			name:  "loss across the hand-over is a gap",
			after: []step{feed(time.Second, msg(11, "eleven")), flush(2 * time.Second)},
			want:  []string{"gap 6-10", `msg 11 "eleven"`},
		},
		{
			name:  "a little behind is late",
			after: []step{feed(time.Second, msg(3, "three again"))},
			want:  []string{`msg 3 "three again" late`},
		},
		{
			name:  "further behind than the history is a reboot",
			base:  100,
			after: []step{feed(time.Second, withTS(msg(0, "Linux version"), 5))},
			want:  []string{"reboot 101->0", `msg 0 "Linux version"`},
		},
		{
			// The limit of a Host without history: the receiver
			// also takes an announcement of a new boot id as a
			// reboot.
			name:  "within the history's length behind is late, even from a new boot",
			after: []step{feed(time.Second, withTS(msg(0, "Linux version"), 5))},
			want:  []string{`msg 0 "Linux version" late`},
		},
		{
			name: "fragments are reassembled after the hand-over",
			after: []step{
				feed(time.Second, frag(6, 0, 6, "abc")),
				feed(time.Second, frag(6, 3, 6, "def")),
			},
			want: []string{`msg 6 "abcdef"`},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			base := cmp.Or(tt.base, 5)
			a := NewHost(Config{})
			for s := uint64(1); s <= base; s++ {
				a.Feed(msg(s, "x"), t0)
			}
			st := a.State()
			if want := (State{Started: true, Next: base + 1, LastTS: 1000 * base, Base: 1}); st != want {
				t.Fatalf("State() = %+v, want %+v", st, want)
			}
			// A Host that served another sender is reused.
			b := NewHost(Config{})
			b.Feed(frag(100, 0, 10, "held"), t0)
			b.Reset(st)
			if b.PendingBytes() != 0 {
				t.Fatalf("PendingBytes after Reset = %d, want 0", b.PendingBytes())
			}
			var got []string
			for _, s := range tt.after {
				at := t0.Add(s.at)
				if s.flush {
					got = append(got, summary(b.Flush(at))...)
				} else {
					got = append(got, summary(b.Feed(s.p, at))...)
				}
			}
			if diff := gocmp.Diff(tt.want, got); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
		})
	}
}

// TestPass checks that a message passed over (rate-limited by the
// collector) is neither delivered nor, later, reported as lost.
func TestPass(t *testing.T) {
	late := func(seq uint64, text string) Packet { return withTS(msg(seq, text), 10_000_000+1000*seq) }
	h := NewHost(Config{})
	for s := uint64(1); s <= 5; s++ {
		h.Feed(late(s, "x"), t0)
	}
	for _, tt := range []struct {
		p    Packet
		want bool
	}{
		{late(6, "passed"), true},
		{late(8, "ahead: 7 is missing"), false},
		{withTS(frag(7, 0, 10, "part"), 10_007_000), false},
		{withTS(msg(7, "clock 10 s back: a new boot"), 5), false},
		{late(7, "passed too"), true},
	} {
		if got := h.Pass(tt.p); got != tt.want {
			t.Errorf("Pass(seq %d %q) = %v, want %v", tt.p.Seq, tt.p.Text, got, tt.want)
		}
	}
	got := summary(h.Feed(late(8, "eight"), t0.Add(time.Second)))
	got = append(got, summary(h.Flush(t0.Add(2*time.Second)))...)
	if diff := gocmp.Diff([]string{`msg 8 "eight"`}, got); diff != "" {
		t.Errorf("after passing 6 and 7 (-want +got):\n%s", diff)
	}
}

// TestStateAdvance checks State.Advance against a Host: a message Advance
// takes, a Host continuing from the same State delivers at once, in order,
// as its only event, and ends in the State Advance left; every other
// message Advance leaves to a Host.
func TestStateAdvance(t *testing.T) {
	// The Host has delivered 1..5 with timestamps 10.001 s .. 10.005 s.
	at := func(seq uint64, text string) Packet { return withTS(msg(seq, text), 10_000_000+1000*seq) }
	rel := func(p Packet, r string) Packet { p.Release = r; return p }
	replay := func(p Packet) Packet { p.Replay = true; return p }
	for _, tt := range []struct {
		name string
		p    Packet
		want bool
	}{
		{"next in order", at(6, "six"), true},
		{"next, release first seen", rel(at(6, "six"), "6.1.0"), true},
		{"next, timestamp a little behind", withTS(at(6, "six"), 10_005_000-500_000), true},
		{"after a gap", at(8, "eight"), false},
		{"behind", at(4, "four"), false},
		{"duplicate", at(5, "five"), false},
		{"fragment", withTS(frag(6, 0, 10, "fragm"), 10_006_000), false},
		{"replayed", replay(at(6, "six")), false},
		{"legacy", Packet{Text: "plain"}, false},
		{"timestamp far behind: a reboot", withTS(at(6, "six"), 1), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := NewHost(Config{})
			now := time.Unix(1000, 0)
			for s := uint64(1); s <= 5; s++ {
				h.Feed(at(s, "x"), now)
			}
			st := h.State()
			adv := st
			if got := adv.Advance(tt.p, Config{}); got != tt.want {
				t.Fatalf("Advance(%+v) = %v, want %v", tt.p, got, tt.want)
			}
			if !tt.want {
				if adv != st {
					t.Errorf("Advance refused but changed the State: %+v -> %+v", st, adv)
				}
				return
			}
			h2 := NewHost(Config{})
			h2.Reset(st)
			evs := h2.Feed(tt.p, now.Add(time.Second))
			if len(evs) != 1 || evs[0].Kind != Message || evs[0].Late || evs[0].Packet.Seq != tt.p.Seq {
				t.Errorf("a Host from the same State: %v, want the message alone, in order", summary(evs))
			}
			if got := h2.State(); got != adv {
				t.Errorf("State after Advance %+v, a Host's after the message %+v", adv, got)
			}
		})
	}
	unstarted := State{}
	if unstarted.Advance(msg(0, "first"), Config{}) {
		t.Errorf("Advance on a State that has not started = true, want false (a Host starts the boot)")
	}
}
