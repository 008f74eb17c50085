package ring

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const boot = "0f3c1c2e-6a1b-4c5d-9e8f-1a2b3c4d5e6f"

func newHalf(t *testing.T, size int) (*Ring, []byte) {
	t.Helper()
	half := make([]byte, size)
	r, err := Format(half, boot, 7, 8*SlotSize, 1700000000)
	if err != nil {
		t.Fatal(err)
	}
	return r, half
}

func TestRoundTrip(t *testing.T) {
	long := strings.Repeat("x", 3*MaxChunk+5)
	tests := []struct {
		name      string
		lines     []string
		want      []string
		overwrite bool
	}{
		{name: "empty", lines: nil, want: nil},
		{name: "one", lines: []string{"[    1.000000] lastgasp: start pid=1"}, want: []string{"[    1.000000] lastgasp: start pid=1"}},
		{name: "exactly one chunk", lines: []string{strings.Repeat("a", MaxChunk)}, want: []string{strings.Repeat("a", MaxChunk)}},
		{name: "multi-chunk", lines: []string{"a", long, "b"}, want: []string{"a", long, "b"}},
		{name: "empty line kept", lines: []string{"", "x"}, want: []string{"", "x"}},
		{name: "newline dropped", lines: []string{"x\n"}, want: []string{"x"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, half := newHalf(t, MinHalf*2)
			for _, l := range tt.lines {
				r.Append(Console, l)
			}
			s, err := Parse(half)
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tt.want, s.Console.Lines); d != "" {
				t.Errorf("console lines (-want +got):\n%s", d)
			}
			if s.Console.Torn || s.Console.Overwritten || len(s.Pmsg.Lines) != 0 {
				t.Errorf("torn=%v overwritten=%v pmsg=%q, want false, false, none", s.Console.Torn, s.Console.Overwritten, s.Pmsg.Lines)
			}
			if s.BootID != boot || s.Generation != 7 || s.Formatted != 1700000000 {
				t.Errorf("header = %+v", s.Header)
			}
		})
	}
}

// TestWrap: a full stream keeps the newest lines; a line whose first
// chunk was overwritten is left out.
func TestWrap(t *testing.T) {
	r, half := newHalf(t, MinHalf)
	n := int(r.Header().ConsoleSlots)
	var all []string
	for i := range 3 * n {
		l := fmt.Sprintf("line %d", i)
		if i%5 == 0 {
			l += strings.Repeat("y", MaxChunk) // two slots
		}
		all = append(all, l)
		r.Append(Console, l)
	}
	s, err := Parse(half)
	if err != nil {
		t.Fatal(err)
	}
	got := s.Console.Lines
	if !s.Console.Overwritten || len(got) == 0 || got[len(got)-1] != all[len(all)-1] {
		t.Fatalf("overwritten=%v last=%q, want true and %q", s.Console.Overwritten, got[len(got)-1:], all[len(all)-1])
	}
	if d := cmp.Diff(all[len(all)-len(got):], got); d != "" {
		t.Errorf("lines are not the newest tail (-want +got):\n%s", d)
	}
	if s.Console.Last-s.Console.First+1 != uint64(n) {
		t.Errorf("kept %d slots, want all %d", s.Console.Last-s.Console.First+1, n)
	}
}

// TestTorn: a reset during a slot's write (its CRC not yet written) leaves
// that slot invalid: the lines before it survive and Torn says so.
func TestTorn(t *testing.T) {
	r, half := newHalf(t, MinHalf)
	r.Append(Pmsg, "network: armed")
	r.Append(Pmsg, "ship: 1 records")
	// The next slot, cut before its seq and CRC were written.
	slot := streamSlots(half, r.Header(), Pmsg)[2*SlotSize:]
	slot[12], slot[13] = 5, ChunkFirst
	copy(slot[slotHdr:], "summ")
	s, _ := Parse(half)
	if d := cmp.Diff([]string{"network: armed", "ship: 1 records"}, s.Pmsg.Lines); d != "" || !s.Pmsg.Torn {
		t.Errorf("torn=%v lines (-want +got):\n%s", s.Pmsg.Torn, d)
	}
	// A flipped bit in a slot's data is caught by its CRC.
	streamSlots(half, r.Header(), Pmsg)[slotHdr] ^= 1
	s, _ = Parse(half)
	if d := cmp.Diff([]string{"ship: 1 records"}, s.Pmsg.Lines); d != "" {
		t.Errorf("after a flipped bit (-want +got):\n%s", d)
	}
}

// TestOtherBoot: slots left by another boot or generation never pass,
// even when the header is rewritten over them.
func TestOtherBoot(t *testing.T) {
	r, half := newHalf(t, MinHalf)
	r.Append(Console, "old boot's line")
	h := r.Header()
	h.BootID = "11111111-2222-3333-4444-555555555555"
	copy(half, encodeHeader(h))
	s, err := Parse(half)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Console.Lines) != 0 || !s.Console.Torn {
		t.Errorf("lines=%q torn=%v, want none and torn", s.Console.Lines, s.Console.Torn)
	}
}

func TestHeaderErrors(t *testing.T) {
	_, good := newHalf(t, MinHalf)
	tests := []struct {
		name string
		mod  func(b []byte)
		want error
	}{
		{name: "zero", mod: func(b []byte) { clear(b) }, want: ErrNoRing},
		{name: "crc", mod: func(b []byte) { b[40] ^= 1 }, want: ErrCorrupt},
		{name: "slots too many", mod: func(b []byte) {
			binary.LittleEndian.PutUint32(b[28:], 1<<20)
			binary.LittleEndian.PutUint32(b[124:], 0)
			h, _ := ParseHeader(good)
			h.ConsoleSlots = 1 << 20
			copy(b, encodeHeader(h))
		}, want: ErrCorrupt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := append([]byte(nil), good...)
			tt.mod(b)
			if _, err := Parse(b); !errors.Is(err, tt.want) {
				t.Errorf("Parse = %v, want %v", err, tt.want)
			}
		})
	}
}

// TestOpenResumes: a second writer (the console copier after the handoff)
// goes on after the first one's newest slot.
func TestOpenResumes(t *testing.T) {
	r, half := newHalf(t, MinHalf)
	r.Append(Console, "from the agent")
	r.Mark(Pmsg, "done")
	r2, err := Open(half)
	if err != nil {
		t.Fatal(err)
	}
	r2.Append(Console, "from the copier")
	s, _ := Parse(half)
	if d := cmp.Diff([]string{"from the agent", "from the copier"}, s.Console.Lines); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
	if !s.Pmsg.HasMarker("done") || len(s.Pmsg.Lines) != 0 {
		t.Errorf("pmsg = %+v, want only the marker done", s.Pmsg)
	}
	if err := MarkShipped(half, FlagConsoleShipped); err != nil {
		t.Fatal(err)
	}
	if s, _ := Parse(half); s.Flags != FlagConsoleShipped || len(s.Console.Lines) != 2 {
		t.Errorf("after MarkShipped flags=%d lines=%d", s.Flags, len(s.Console.Lines))
	}
}

func TestHalves(t *testing.T) {
	h, err := Halves(make([]byte, 64<<10))
	if err != nil || len(h[0]) != 32<<10 || len(h[1]) != 32<<10 {
		t.Fatalf("Halves(64K) = %d, %d, %v", len(h[0]), len(h[1]), err)
	}
	if _, err := Halves(make([]byte, MinHalf)); err == nil {
		t.Error("Halves of a too small region succeeded")
	}
}

func FuzzParse(f *testing.F) {
	r, half := newHalfF(f)
	r.Append(Console, "a line")
	r.Append(Console, strings.Repeat("z", 300))
	r.Mark(Pmsg, "done")
	f.Add(half)
	f.Add(make([]byte, MinHalf))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := Parse(b)
		if err != nil {
			return
		}
		if len(s.Console.Lines) > len(b)/SlotSize*MaxChunk+1 {
			t.Fatalf("%d lines from %d bytes", len(s.Console.Lines), len(b))
		}
		// Whatever parses can be opened and written to.
		if w, err := Open(b); err == nil {
			w.Append(Console, "more")
			if s2, err := Parse(b); err != nil || len(s2.Console.Lines) == 0 || s2.Console.Lines[len(s2.Console.Lines)-1] != "more" {
				t.Fatalf("after Append: %v %q", err, s2.Console.Lines)
			}
		}
	})
}

func newHalfF(f *testing.F) (*Ring, []byte) {
	half := make([]byte, MinHalf)
	r, err := Format(half, boot, 1, 0, 0)
	if err != nil {
		f.Fatal(err)
	}
	return r, half
}
