package wire

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// rep returns message seq as the agent replays it from /dev/kmsg.
func rep(seq uint64, text string) Packet {
	p := msg(seq, text)
	p.Replay = true
	return p
}

// live returns the messages from..to as netconsole sends them.
func live(from, to uint64) []step {
	var s []step
	for q := from; q <= to; q++ {
		s = append(s, feed(0, msg(q, "live")))
	}
	return s
}

// replayed returns the records from..to replayed at at.
func replayed(at time.Duration, from, to uint64) []step {
	var s []step
	for q := from; q <= to; q++ {
		s = append(s, feed(at, rep(q, "kmsg")))
	}
	return s
}

// seqMsgs returns the summary lines of messages from..to with text and suffix.
func seqMsgs(from, to uint64, text, suffix string) []string {
	var s []string
	for q := from; q <= to; q++ {
		s = append(s, fmt.Sprintf("msg %d %q%s", q, text, suffix))
	}
	return s
}

func dups(from, to uint64) []string {
	var s []string
	for q := from; q <= to; q++ {
		s = append(s, fmt.Sprintf("dup %d", q))
	}
	return s
}

func cat(parts ...[]string) []string {
	var out []string
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func steps(parts ...[]step) []step {
	var out []step
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// TestHostReplay covers the backfill of a boot's first records, replayed
// by the agent after its live stream started (the demo boot's live stream
// starts at seq 391; here at 10).
func TestHostReplay(t *testing.T) {
	for _, tt := range []struct {
		name  string
		steps []step
		want  []string
	}{
		{
			name:  "backfill fills the start, the overlap is dropped",
			steps: steps(live(10, 14), replayed(time.Second, 0, 14), []step{flush(3 * time.Second)}),
			want:  cat(seqMsgs(10, 14, "live", ""), seqMsgs(0, 9, "kmsg", " late replay"), dups(10, 14)),
		},
		{
			name:  "a wrapped ring buffer is one gap",
			steps: steps(live(10, 12), replayed(time.Second, 4, 12)),
			want:  cat(seqMsgs(10, 12, "live", ""), []string{"gap 0-3"}, seqMsgs(4, 9, "kmsg", " late replay"), dups(10, 12)),
		},
		{
			name:  "overwritten while reading: a gap in the backfill",
			steps: steps(live(10, 10), replayed(time.Second, 0, 2), replayed(time.Second, 6, 7)),
			want:  cat(seqMsgs(10, 10, "live", ""), seqMsgs(0, 2, "kmsg", " late replay"), []string{"gap 3-5"}, seqMsgs(6, 7, "kmsg", " late replay")),
		},
		{
			name:  "replayed twice: written once",
			steps: steps(live(10, 11), replayed(time.Second, 0, 3), replayed(2*time.Second, 0, 3)),
			want:  cat(seqMsgs(10, 11, "live", ""), seqMsgs(0, 3, "kmsg", " late replay"), dups(0, 3)),
		},
		{
			name: "fragmented backfill is reassembled",
			steps: steps(live(10, 10), []step{
				feed(time.Second, func() Packet { p := frag(3, 0, 6, "abc"); p.Replay = true; return p }()),
				feed(time.Second, func() Packet { p := frag(3, 3, 6, "def"); p.Replay = true; return p }()),
			}),
			want: []string{`msg 10 "live"`, "gap 0-2", `msg 3 "abcdef" late replay`},
		},
		{
			name: "a record skipped live (below the console loglevel) fills its hole in order",
			steps: []step{
				feed(0, msg(10, "live")), feed(0, msg(12, "live")), feed(50*time.Millisecond, rep(11, "debug")),
			},
			want: []string{`msg 10 "live"`, `msg 11 "debug" replay`, `msg 12 "live"`},
		},
		{
			name: "a live gap already reported is filled late",
			steps: steps(live(10, 11), []step{feed(0, msg(13, "live")), flush(time.Second),
				feed(2*time.Second, rep(12, "kmsg"))}),
			want: []string{`msg 10 "live"`, `msg 11 "live"`, "gap 12-12", `msg 13 "live"`, `msg 12 "kmsg" late replay`},
		},
		{
			// 100 live messages: 10..45 are older than the history
			// (64) and were delivered: dropped, not written again.
			name:  "overlap older than the history is dropped",
			steps: steps(live(10, 109), replayed(time.Second, 0, 109)),
			want:  cat(seqMsgs(10, 109, "live", ""), seqMsgs(0, 9, "kmsg", " late replay"), dups(10, 109)),
		},
		{
			name: "a new boot's live stream, then its replay",
			steps: steps(live(10, 109), []step{feed(time.Second, withTS(msg(20, "new boot"), 3000))},
				[]step{feed(time.Second, withTS(rep(0, "Linux version"), 0)), feed(time.Second, withTS(rep(1, "kmsg"), 1))}),
			want: cat(seqMsgs(10, 109, "live", ""), []string{"reboot 110->20", `msg 20 "new boot"`,
				`msg 0 "Linux version" late replay`, `msg 1 "kmsg" late replay`}),
		},
		{
			name:  "without the mark an old seq is still a reboot",
			steps: steps(live(10, 109), []step{feed(time.Second, withTS(msg(0, "Linux version"), 0))}),
			want:  cat(seqMsgs(10, 109, "live", ""), []string{"reboot 110->0", `msg 0 "Linux version"`}),
		},
		{
			name:  "a stream heard first through its replay is ordinary",
			steps: steps(replayed(0, 0, 2), live(3, 3)),
			want:  cat(seqMsgs(0, 2, "kmsg", " replay"), seqMsgs(3, 3, "live", "")),
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := NewHost(Config{})
			var got []Event
			for _, s := range tt.steps {
				if s.flush {
					got = append(got, h.Flush(t0.Add(s.at))...)
				} else {
					got = append(got, h.Feed(s.p, t0.Add(s.at))...)
				}
			}
			got = append(got, h.Flush(t0.Add(time.Minute))...)
			if diff := cmp.Diff(tt.want, summary(got)); diff != "" {
				t.Errorf("events mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestHostReplayAfterShed checks that the backfill state survives a shed
// (the collector keeps State for every sender): a replay after the Reset
// is still backfill, and what was backfilled is not written twice.
func TestHostReplayAfterShed(t *testing.T) {
	h := NewHost(Config{})
	for q := uint64(10); q <= 12; q++ {
		h.Feed(msg(q, "live"), t0)
	}
	h.Feed(rep(0, "kmsg"), t0)
	h.Feed(rep(1, "kmsg"), t0)
	st := h.State()
	if want := (State{Started: true, Next: 13, LastTS: 12000, Base: 10, Fill: 2}); st != want {
		t.Fatalf("State() = %+v, want %+v", st, want)
	}
	h2 := NewHost(Config{})
	h2.Reset(st)
	var got []string
	for _, q := range []uint64{1, 2, 3} {
		got = append(got, summary(h2.Feed(rep(q, "kmsg"), t0))...)
	}
	want := []string{"dup 1", `msg 2 "kmsg" late replay`, `msg 3 "kmsg" late replay`}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("events after Reset (-want +got):\n%s", diff)
	}
}
