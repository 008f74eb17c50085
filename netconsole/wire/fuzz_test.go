package wire

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

// parseSeeds are FuzzParse's seeds; the comment on each says what it covers.
var parseSeeds = []string{
	"0,423,3163223,-;Kernel panic - not syncing: sysrq triggered crash\n", // field notes capture
	"6.1.0-56-amd64,6,423,3163223,-;text",                                 // release prefix
	"6,416,1758426,-,ncfrag=0/31;the first chunk,",                        // netconsole.rst fragment
	"6,416,1758426,-,ncfrag=16/31; the 2nd chunk.",                        // netconsole.rst fragment
	"6,100,200,-;link up\n SUBSYSTEM=net\n DEVICE=+net:eth0\n",            // dictionary
	"6,5,6,-,caller=T123;hi\n",                                            // CONFIG_PRINTK_CALLER field
	"4,7,8,c;partial",                                                     // continuation
	"[    1.234567] legacy line\n",                                        // legacy
	"1,2,3;x",                                                             // legacy, too few fields
	"6,1,2,-,ncfrag=0/3;abcd",                                             // overrun: error
	"6,99999999999999999999,2,-;x",                                        // overflow: error
	"6,1,2,-;a\n\n  two spaces\nno space\n ",                              // odd dictionary lines
	"6,0,0,-,lastgasp_replay=1;Linux version 6.1.0-56-amd64\n",            // replayed record (netconsole/replay)
	"6,3,9,-,lastgasp_replay=1,ncfrag=0/9;abc",                            // replayed fragment
	"6,3,9,-,lastgasp_replay=2;not the mark",                              // another value: an unknown field
	"",
}

// parseRegressions are inputs the fuzzer found that once broke the round trip.
var parseRegressions = []string{}

func FuzzParse(f *testing.F) {
	for _, s := range append(parseSeeds, parseRegressions...) {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := Parse(b)
		if err != nil {
			return
		}
		if !p.Extended {
			if got := string(Format(p)); got != string(b) {
				t.Fatalf("Format(legacy Parse(%q)) = %q", b, got)
			}
			return
		}
		wire := Format(p)
		back, err := Parse(wire)
		if err != nil {
			t.Fatalf("Parse(Format(Parse(%q))) = %v; Format gave %q", b, err, wire)
		}
		if diff := cmp.Diff(p, back); diff != "" {
			t.Fatalf("round trip of %q via %q mismatch (-first +second):\n%s", b, wire, diff)
		}
	})
}

func FuzzSanitize(f *testing.F) {
	for _, s := range []string{"plain", "a\nb\x00\x7f", "\xff\xfe", "\u0085\u2028", "tab\there", `\x41`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := Sanitize(s)
		if !utf8.ValidString(got) {
			t.Fatalf("Sanitize(%q) = %q, not valid UTF-8", s, got)
		}
		for _, r := range got {
			if r != '\t' && unicode.IsControl(r) {
				t.Fatalf("Sanitize(%q) = %q, contains control %U", s, got, r)
			}
		}
		if again := Sanitize(got); again != got {
			t.Fatalf("Sanitize not idempotent: %q -> %q -> %q", s, got, again)
		}
	})
}

// hostRegressions are inputs the fuzzer found, by what they broke.
var hostRegressions = map[string][]byte{
	// Stream starting at seq 0 with a held message: next == 0 tripped an
	// unsigned underflow in the invariant check.
	"next is zero": []byte("\xc6\xc6\xc6\xc610\x9c\xe9\xbdG\xe9\x9al*\xbdm\xdb\xafG\xf8\xb4w$\xe6\xf1\xc9\x14g\x8a\x87\xfd\xc4*`1"),
}

// hostOps decodes fuzz input into calls on a Host.
type hostOps struct {
	b []byte
}

func (o *hostOps) byte() byte {
	if len(o.b) == 0 {
		return 0
	}
	c := o.b[0]
	o.b = o.b[1:]
	return c
}

func FuzzHost(f *testing.F) {
	// Input: four config bytes (window, pending limit, reorder wait,
	// fragment timeout), then operations: a time step, an opcode and its
	// arguments (see the switch below).
	cfg := []byte{4, 50, 20, 20}
	seed := func(ops ...[]byte) []byte {
		b := append([]byte(nil), cfg...)
		for _, op := range ops {
			b = append(b, op...)
		}
		return b
	}
	raw := func(dt byte, s string) []byte { return append([]byte{dt, 5, byte(len(s))}, s...) }
	f.Add(seed([]byte{0, 0, 1, 5, 0}, []byte{0, 0, 2, 5, 0}, []byte{0, 0, 0xff, 5, 0}, []byte{30, 2})) // reorder, flush
	f.Add(seed([]byte{0, 0, 1, 5, 0}, []byte{0, 0, 3, 5, 0}, []byte{40, 2}))                           // gap by timeout
	f.Add(seed([]byte{0, 1, 4, 0, 16, 0}, []byte{0, 1, 4, 2, 16, 0}))                                  // two fragments, complete
	f.Add(seed([]byte{0, 1, 200, 0, 16, 0}, []byte{0, 1, 200, 0, 16, 1}, []byte{63, 2}))               // incomplete, timeout
	f.Add(seed([]byte{0, 0, 100, 5, 0}, []byte{0, 0, 0x80, 5, 0}, []byte{0, 3}, []byte{0, 4}))         // jumps, drain, legacy
	f.Add(seed(raw(0, "6,1,2,-,ncfrag=0/9;abc"), raw(0, "6,1,2,-,ncfrag=3/9;defghi"), raw(0, "6,2,3,-;x")))
	f.Add(seed(raw(0, "6.1.0,6,5,5,-;a"), raw(0, "6.6.0,6,6,6,-;b"), raw(0, "6,3,1,-;c"))) // release change
	// live 100, 101, then the replay of 0, 1 (backfill), 0 again, 101 (overlap)
	f.Add(seed([]byte{0, 0, 0, 5, 0}, []byte{0, 0, 1, 5, 0}, []byte{0, 7, 0}, []byte{0, 7, 1}, []byte{0, 7, 0}, []byte{0, 7, 101}))
	f.Add(seed(raw(0, "6,100,100000,-;live"), raw(0, "6,3,3000,-,lastgasp_replay=1,ncfrag=0/4;ab"),
		raw(0, "6,3,3000,-,lastgasp_replay=1,ncfrag=2/4;cd"), []byte{0, 7, 2})) // fragmented backfill
	for _, b := range hostRegressions {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		o := &hostOps{b: data}
		cfg := Config{
			ReorderWindow:   int(o.byte()%8) - 1,
			MaxPendingBytes: 200 + int(o.byte())*16,
			ReorderWait:     time.Duration(o.byte()) * time.Millisecond,
			FragmentTimeout: time.Duration(o.byte()) * 10 * time.Millisecond,
		}
		h := NewHost(cfg)
		now := t0
		seq := uint64(100)
		var lastInOrder uint64
		haveInOrder := false
		// Replayed records delivered since the last reboot: the replay
		// must never write one twice.
		replayedSeqs := map[uint64]bool{}
		// The timestamp each seq was sent with, so that a replay is the
		// same record; a raw datagram (any timestamp) voids the
		// no-reboot check.
		sentTS := map[uint64]uint64{}
		rawSeen := false
		for len(o.b) > 0 {
			now = now.Add(time.Duration(o.byte()%64) * 10 * time.Millisecond)
			var evs []Event
			replayOp := false
			switch o.byte() % 8 {
			case 0: // message near the cursor
				seq = uint64(int64(seq) + int64(int8(o.byte())))
				seq %= 1 << 20
				n := int(o.byte() % 64)
				ts := seq*1000 + uint64(o.byte())
				if old, ok := sentTS[seq]; ok && old != ts {
					rawSeen = true // the same seq with another timestamp: a reboot by design
				}
				sentTS[seq] = ts
				evs = h.Feed(Packet{Extended: true, Seq: seq, TimestampUsec: ts, Text: strings.Repeat("m", n)}, now)
			case 1: // fragment
				total := 1 + int(o.byte())*8
				off := int(o.byte()) * 8 % total
				n := 1 + int(o.byte())%(total-off)
				fs := seq + uint64(o.byte()%4)
				if old, ok := sentTS[fs]; ok && old != seq*1000 {
					rawSeen = true
				}
				sentTS[fs] = seq * 1000
				evs = h.Feed(Packet{Extended: true, Seq: fs, TimestampUsec: seq * 1000,
					FragOffset: off, FragTotal: total, Text: strings.Repeat("f", n)}, now)
			case 2:
				evs = h.Flush(now)
			case 3:
				evs = h.Drain(now)
			case 4:
				evs = h.Feed(Packet{Text: "legacy"}, now)
			case 6: // shed and rebuilt from its State, as a collector does
				evs = append([]Event(nil), h.Shed(now)...)
				st := h.State()
				h.Reset(st)
				clear(replayedSeqs) // a Reset forgets the history, as documented
				if h.State() != st || h.PendingBytes() != 0 {
					t.Fatalf("Reset(%+v): State %+v, PendingBytes %d", st, h.State(), h.PendingBytes())
				}
			case 7: // a record replayed from the sender's kmsg, at a seq of its own
				replayOp = true
				q := uint64(o.byte())
				if o.byte()&1 == 1 {
					q += seq // near the cursor
				}
				q %= 1 << 20
				ts, ok := sentTS[q]
				if !ok {
					ts = q * 1000
					sentTS[q] = ts
				}
				evs = h.Feed(Packet{Extended: true, Replay: true, Seq: q, TimestampUsec: ts, Text: "kmsg"}, now)
			case 5: // raw datagram
				n := int(o.byte()) % (len(o.b) + 1)
				p, err := Parse(o.b[:n])
				o.b = o.b[n:]
				rawSeen = rawSeen || err == nil && p.Extended
				if err == nil {
					evs = h.Feed(p, now)
				}
			}
			for _, e := range evs {
				switch e.Kind {
				case Reboot:
					haveInOrder = false
					clear(replayedSeqs)
					if replayOp && !rawSeen {
						t.Fatalf("a replayed record with a consistent timestamp made a reboot: %+v", e)
					}
				case Gap:
					if e.From > e.To {
						t.Fatalf("Gap From %d > To %d", e.From, e.To)
					}
				case Message:
					if e.Packet.Replay {
						if replayedSeqs[e.Packet.Seq] {
							t.Fatalf("replayed seq %d delivered twice", e.Packet.Seq)
						}
						replayedSeqs[e.Packet.Seq] = true
					}
					if !e.Packet.Extended || e.Late {
						break
					}
					if e.Packet.FragTotal != 0 {
						t.Fatalf("Message with fragment fields %+v", e.Packet)
					}
					if haveInOrder && e.Packet.Seq <= lastInOrder {
						t.Fatalf("in-order Message seq %d after %d", e.Packet.Seq, lastInOrder)
					}
					lastInOrder, haveInOrder = e.Packet.Seq, true
				}
			}
			checkHostInvariants(t, h)
		}
		h.Drain(now)
		checkHostInvariants(t, h)
		if h.PendingBytes() != 0 || len(h.frags) != 0 || len(h.buf) != 0 {
			t.Fatalf("after Drain: PendingBytes() = %d, %d partial, %d held", h.PendingBytes(), len(h.frags), len(h.buf))
		}
	})
}

// checkHostInvariants checks the memory bound and the accounting behind it.
func checkHostInvariants(t *testing.T, h *Host) {
	t.Helper()
	if h.pending > h.cfg.MaxPendingBytes {
		t.Fatalf("PendingBytes() = %d, over limit %d", h.pending, h.cfg.MaxPendingBytes)
	}
	if len(h.buf) > h.cfg.ReorderWindow {
		t.Fatalf("%d messages held, window %d", len(h.buf), h.cfg.ReorderWindow)
	}
	sum := 0
	for s, pa := range h.frags {
		if s != pa.hdr.Seq {
			t.Fatalf("partial keyed %d has seq %d", s, pa.hdr.Seq)
		}
		if pa.have >= pa.hdr.FragTotal {
			t.Fatalf("complete message %d still held as partial", s)
		}
		sum += pa.cost
	}
	for s, sl := range h.buf {
		if h.started && s < h.next {
			t.Fatalf("held seq %d not after next %d", s, h.next)
		}
		sum += sl.cost
	}
	if sum != h.pending {
		t.Fatalf("pending = %d, sum of held costs = %d", h.pending, sum)
	}
}

// FuzzParseHeader checks ParseHeader against Parse: the same header
// fields, the body left as is, and false exactly where Parse gives legacy
// text or an error.
func FuzzParseHeader(f *testing.F) {
	for _, s := range parseSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		full, err := Parse(b)
		hdr, body, ok := ParseHeader(b)
		if want := err == nil && full.Extended; ok != want {
			t.Fatalf("ParseHeader(%q) ok = %v, Parse = %+v, %v", b, ok, full, err)
		}
		if !ok {
			return
		}
		full.Text, full.Dict = "", nil
		if hdr.Text != "" || hdr.Dict != nil || !reflect.DeepEqual(hdr, full) {
			t.Fatalf("ParseHeader(%q) = %+v, Parse's header %+v", b, hdr, full)
		}
		if !bytes.HasSuffix(b, body) || len(body) >= len(b) || b[len(b)-len(body)-1] != ';' {
			t.Fatalf("ParseHeader(%q) body %q is not what follows the header", b, body)
		}
	})
}
