package wire

import (
	"testing"
	"time"
)

func TestShed(t *testing.T) {
	h := NewHost(Config{})
	h.Feed(Packet{Extended: true, Seq: 1, Text: "one"}, t0)
	h.Feed(Packet{Extended: true, Seq: 3, Text: "three"}, t0)                              // held: 2 missing
	h.Feed(Packet{Extended: true, Seq: 4, FragOffset: 0, FragTotal: 10, Text: "half"}, t0) // incomplete
	evs := h.Shed(t0.Add(time.Millisecond))
	var kinds []EventKind
	for _, e := range evs {
		kinds = append(kinds, e.Kind)
		if e.Kind == Dropped && e.Reason != DropMemory {
			t.Errorf("Dropped reason %q, want %q", e.Reason, DropMemory)
		}
	}
	if len(kinds) != 3 || kinds[0] != Dropped || kinds[1] != Gap || kinds[2] != Message || h.PendingBytes() != 0 {
		t.Errorf("Shed = %v, pending %d; want dropped, gap, message and nothing held", kinds, h.PendingBytes())
	}
	// The sequence state survives: 5 follows without a gap.
	if evs := h.Feed(Packet{Extended: true, Seq: 5, Text: "five"}, t0.Add(2*time.Millisecond)); len(evs) != 1 || evs[0].Kind != Message || evs[0].Late {
		t.Errorf("Feed after Shed = %+v, want one in-order message", evs)
	}
}
