package wire

import (
	"fmt"
	"slices"
	"sort"
	"time"
)

// Defaults used for zero Config fields.
const (
	DefaultReorderWindow   = 32
	DefaultReorderWait     = 250 * time.Millisecond
	DefaultFragmentTimeout = 2 * time.Second
	DefaultMaxPendingBytes = 256 << 10
	DefaultClockSkew       = time.Second
)

// Accounting costs, in bytes, of the bookkeeping around held data. They make
// MaxPendingBytes a bound on memory rather than only on payload.
const (
	slotOverhead    = 128 // one message held for reordering, or a dropped-seq marker
	partialOverhead = 128 // one message being reassembled
	chunkOverhead   = 48  // one fragment of it
	dictOverhead    = 16  // one dictionary entry
	minHistory      = 64  // remembered delivered seqs, for duplicates and reboots
)

// Config tunes a Host. The zero value uses the defaults.
type Config struct {
	// ReorderWindow is how many complete messages may wait for a missing
	// earlier sequence number before the missing ones are reported as a
	// Gap. Zero means DefaultReorderWindow; negative disables reordering.
	ReorderWindow int
	// ReorderWait is how long a message may wait for a missing earlier
	// one. Zero means DefaultReorderWait.
	ReorderWait time.Duration
	// FragmentTimeout is how long an incomplete fragmented message is kept
	// from its first fragment on. Zero means DefaultFragmentTimeout.
	FragmentTimeout time.Duration
	// MaxPendingBytes bounds the bytes a Host holds (fragments and messages
	// waiting to be delivered in order, with bookkeeping). When it is
	// exceeded the oldest incomplete message is dropped, then waiting
	// messages are delivered past their gap. Zero means
	// DefaultMaxPendingBytes.
	MaxPendingBytes int
	// ClockSkew is how far printk timestamps may run backwards between
	// messages of one boot (CPU clocks differ slightly). A larger step
	// backwards is taken as a reboot. Zero means DefaultClockSkew.
	ClockSkew time.Duration
}

func (c Config) withDefaults() Config {
	if c.ReorderWindow == 0 {
		c.ReorderWindow = DefaultReorderWindow
	} else if c.ReorderWindow < 0 {
		c.ReorderWindow = 0
	}
	if c.ReorderWait <= 0 {
		c.ReorderWait = DefaultReorderWait
	}
	if c.FragmentTimeout <= 0 {
		c.FragmentTimeout = DefaultFragmentTimeout
	}
	if c.MaxPendingBytes <= 0 {
		c.MaxPendingBytes = DefaultMaxPendingBytes
	}
	if c.ClockSkew <= 0 {
		c.ClockSkew = DefaultClockSkew
	}
	return c
}

// EventKind says what an Event reports.
type EventKind int

// Event kinds.
const (
	// Message is a complete message, reassembled if it was fragmented.
	Message EventKind = iota + 1
	// Gap reports sequence numbers From..To that did not arrive in time.
	// Sequence numbers also skip when the kernel filters messages below
	// the console log level, so a gap is not always a loss.
	Gap
	// Duplicate reports a datagram already received.
	Duplicate
	// Reboot reports that the sender's sequence restarted: its sequence
	// number went backwards, its timestamps did, or its release changed.
	// Events before it belong to the old boot, events after it to the new.
	Reboot
	// Dropped reports a message given up on: an incomplete fragmented
	// message that timed out or did not fit in MaxPendingBytes, or a
	// fragment that contradicts the others of its message.
	Dropped
)

// String returns the kind's name in lower case.
func (k EventKind) String() string {
	switch k {
	case Message:
		return "message"
	case Gap:
		return "gap"
	case Duplicate:
		return "duplicate"
	case Reboot:
		return "reboot"
	case Dropped:
		return "dropped"
	}
	return fmt.Sprintf("EventKind(%d)", int(k))
}

// Event is one output of a Host.
type Event struct {
	// Kind says what the event reports and which fields are set.
	Kind EventKind
	// Packet is the complete message (Message), the datagram concerned
	// (Duplicate, Reboot, a contradicting fragment) or the header of the
	// message given up on (Dropped, with empty Text).
	Packet Packet
	// Received is when the message (its last fragment) was fed to the
	// Host (Message).
	Received time.Time
	// From and To are the first and last missing sequence numbers (Gap).
	// For Reboot, From is the sequence number the Host expected next.
	From, To uint64
	// Late marks a Message whose sequence number was already reported in
	// a Gap, or that is older than the first message of its stream: a
	// replayed record (Packet.Replay) older than the live stream is
	// backfill, delivered Late where it arrives.
	Late bool
	// Reason says why a message or fragment was dropped (Dropped).
	Reason DropReason
}

// Lost returns how many sequence numbers a Gap event covers.
func (e Event) Lost() uint64 {
	if e.Kind != Gap || e.To < e.From {
		return 0
	}
	return e.To - e.From + 1
}

// Host is the receive state for one netconsole sender: it reassembles
// fragments, delivers messages in sequence order within a small reorder
// window and detects gaps, duplicates and reboots. It does no I/O and reads no
// clock: callers pass the time in. A Host is not safe for concurrent use.
type Host struct {
	cfg Config

	started bool   // next, lastTS and release are set
	next    uint64 // sequence number expected next
	lastTS  uint64 // highest timestamp delivered
	release string // last release seen
	base    uint64 // lowest sequence number of the live stream delivered
	fill    uint64 // one past the highest replayed record below base delivered

	frags   map[uint64]*partial // messages being reassembled
	buf     map[uint64]*slot    // messages (or drop markers) with seq > next
	pending int                 // accounted bytes held in frags and buf

	hist    []histEntry // ring of recently delivered or dropped seqs
	histPos int

	evs []Event // returned by the last call, reused by the next
}

// partial is a fragmented message being reassembled.
type partial struct {
	hdr    Packet // header of the first fragment, no text
	first  time.Time
	chunks []chunk // sorted by offset, not overlapping
	have   int     // bytes received
	cost   int
}

type chunk struct {
	off  int
	data string
}

// slot is a message waiting for earlier ones, or a marker for a dropped one.
type slot struct {
	msg     Packet // complete message, or header of the dropped one
	dropped bool
	at      time.Time
	cost    int
}

// histEntry is a remembered sequence number: seq+1 (0 marks an empty
// entry) and the timestamp, with the top bit set for a dropped message.
// Packed into 16 bytes because every active sender holds a ring of them.
type histEntry struct {
	seq1, ts uint64
}

const histDropped = 1 << 63

func (e histEntry) valid() bool      { return e.seq1 != 0 }
func (e histEntry) seq() uint64      { return e.seq1 - 1 }
func (e histEntry) stamp() uint64    { return e.ts &^ histDropped }
func (e histEntry) wasDropped() bool { return e.ts&histDropped != 0 }

// NewHost returns a Host configured by cfg.
func NewHost(cfg Config) *Host {
	cfg = cfg.withDefaults()
	return &Host{
		cfg:   cfg,
		frags: make(map[uint64]*partial),
		buf:   make(map[uint64]*slot),
		hist:  make([]histEntry, max(minHistory, 2*cfg.ReorderWindow)),
	}
}

// State is the part of a Host's receive state that a collector keeps for
// every sender it has seen, however many: where the sequence stands. The
// rest of a Host (fragments being reassembled, messages waiting in the
// reorder window, the ring of recent sequence numbers that tells a
// duplicate from a late message) may be shed and rebuilt; State may not,
// or gaps would go unreported.
type State struct {
	// Started is false before the first extended message of a boot.
	Started bool
	// Next is the sequence number expected next: every number below it
	// was delivered, dropped or reported in a Gap.
	Next uint64
	// LastTS is the highest printk timestamp delivered, in microseconds.
	LastTS uint64
	// Release is the kernel release last seen in a header, if any.
	Release string
	// Base is the lowest sequence number the live stream of this boot
	// delivered (where the stream was first heard). Replayed records
	// (Packet.Replay) below it are backfill: what the sender logged
	// before its netconsole target was armed.
	Base uint64
	// Fill is one past the highest backfilled sequence number: a replayed
	// record below it is a duplicate, one above it leaves a Gap from Fill
	// (the first replayed record above 0 is a ring buffer that wrapped).
	Fill uint64
}

// State returns where the Host's sequence stands. Call Drain (or Shed)
// first when the State is to outlive the Host: held messages move Next.
func (h *Host) State() State {
	return State{Started: h.started, Next: h.next, LastTS: h.lastTS, Release: h.release, Base: h.base, Fill: h.fill}
}

// Advance moves st past p and reports true when p is simply the message
// that follows st: extended, unfragmented, live (not replayed), numbered
// st.Next, of the same boot (no other release, its timestamp not behind by
// more than cfg.ClockSkew). A Host continuing from st would deliver it at
// once, in order, holding nothing, and end in the State Advance leaves.
// A collector that keeps only a State for a sender whose heavy state it
// shed delivers such a message without rebuilding a Host. Otherwise st is
// unchanged and p is for a Host to feed.
func (st *State) Advance(p Packet, cfg Config) bool {
	if !st.Started || !p.Extended || p.Fragmented() || p.Replay || p.Seq != st.Next || p.Seq >= MaxSeq ||
		p.Release != "" && st.Release != "" && p.Release != st.Release {
		return false
	}
	skew := cfg.ClockSkew
	if skew <= 0 {
		skew = DefaultClockSkew
	}
	if d := uint64(skew / time.Microsecond); st.LastTS > p.TimestampUsec && st.LastTS-p.TimestampUsec > d {
		return false // a new boot, for a Host to report
	}
	st.Next = p.Seq + 1
	st.LastTS = max(st.LastTS, p.TimestampUsec)
	if st.Release == "" && p.Release != "" {
		st.Release = p.Release
	}
	return true
}

// Reset empties the Host, dropping without events whatever it holds, and
// continues from st, so that one Host can serve sender after sender. With
// no history of recent sequence numbers, a message behind st.Next by less
// than the history's length (64, or twice ReorderWindow) is taken as late,
// further behind as a reboot; a duplicate of a message delivered before the
// Reset is therefore delivered again, marked Late.
func (h *Host) Reset(st State) {
	clear(h.frags)
	clear(h.buf)
	h.pending = 0
	clear(h.hist)
	h.histPos = 0
	h.started, h.next, h.lastTS, h.release = st.Started, st.Next, st.LastTS, st.Release
	h.base, h.fill = st.Base, st.Fill
}

// Pass accounts for extended message p as if it had been delivered, and
// reports true, when p is simply the next message: unfragmented, its
// sequence number the one expected, nothing held, the same boot. The
// caller then drops p on purpose (a rate limit) and counts it itself; p is
// neither a Message nor, later, part of a Gap. Otherwise Pass changes
// nothing and reports false: the caller feeds p.
func (h *Host) Pass(p Packet) bool {
	if !h.started || !p.Extended || p.Fragmented() || p.Seq != h.next || len(h.frags) > 0 || len(h.buf) > 0 ||
		p.Release != "" && h.release != "" && p.Release != h.release {
		return false
	}
	if skew := uint64(h.cfg.ClockSkew / time.Microsecond); h.lastTS > p.TimestampUsec && h.lastTS-p.TimestampUsec > skew {
		return false // a new boot, for Feed to report
	}
	h.record(p.Seq, p.TimestampUsec, false)
	h.advance(p.Seq, p.TimestampUsec)
	return true
}

// PendingBytes returns the bytes the Host holds, as counted against
// Config.MaxPendingBytes.
func (h *Host) PendingBytes() int { return h.pending }

// Feed processes one parsed datagram received at now and returns the events
// it completes, oldest first. The slice returned by Feed, Flush, Drain and
// Shed is valid until the next of those calls on the Host. It first expires what timed out by now, like
// Flush. Legacy packets are returned at once as a Message.
func (h *Host) Feed(p Packet, now time.Time) []Event {
	ev := h.expire(now, h.evs[:0])
	if !p.Extended {
		return h.keep(append(h.settle(now, ev), Event{Kind: Message, Packet: p, Received: now}))
	}
	return h.keep(h.settle(now, h.feed(p, now, ev)))
}

// keep remembers the events slice for reuse by the next call: the
// collector calls Feed for every datagram, and a fresh slice each time was
// a fifth of its allocations.
func (h *Host) keep(ev []Event) []Event {
	if cap(ev) <= 64 {
		h.evs = ev[:0]
	}
	return ev
}

// Flush expires incomplete messages older than Config.FragmentTimeout and
// delivers messages that waited longer than Config.ReorderWait for a missing
// one, reporting the Gap. Call it periodically so that held messages are
// delivered when no more datagrams arrive.
func (h *Host) Flush(now time.Time) []Event {
	return h.keep(h.settle(now, h.expire(now, h.evs[:0])))
}

// Drain delivers every held message and drops every incomplete one, as if
// all timeouts had passed, leaving the Host empty. Use it before discarding
// a Host.
func (h *Host) Drain(now time.Time) []Event {
	return h.keep(h.drainAll(now, DropDrained, h.evs[:0]))
}

// Shed frees everything the Host holds because a memory bound outside the
// Host (such as a collector-wide limit) was hit: incomplete messages are
// dropped with Reason DropMemory and held messages are delivered past their
// gaps, as Drain does. The sequence state is kept, so later datagrams are
// tracked as before.
func (h *Host) Shed(now time.Time) []Event {
	return h.keep(h.drainAll(now, DropMemory, h.evs[:0]))
}

// classification of an extended datagram against the Host's state.
type class int

const (
	classNew    class = iota // in order, ahead, or part of a message in progress
	classLate                // behind next, not seen: reported in a gap
	classDup                 // seen already
	classIgnore              // fragment of a message already dropped
	classReboot              // belongs to a new boot
)

func (h *Host) feed(p Packet, now time.Time, ev []Event) []Event {
	if p.Seq > MaxSeq {
		return append(ev, Event{Kind: Dropped, Packet: header(p), Reason: DropOutOfRange})
	}
	if p.Fragmented() {
		if p.FragOffset < 0 || p.FragTotal > MaxFragTotal || p.FragOffset >= p.FragTotal ||
			len(p.Text) == 0 || len(p.Text) > p.FragTotal-p.FragOffset {
			return append(ev, Event{Kind: Dropped, Packet: header(p), Reason: DropInvalidFragment})
		}
	}
	switch h.classify(p) {
	case classDup:
		return append(ev, Event{Kind: Duplicate, Packet: p})
	case classIgnore:
		return ev
	case classReboot:
		from := h.next
		ev = h.drainAll(now, DropReboot, ev)
		h.reset()
		ev = append(ev, Event{Kind: Reboot, Packet: p, From: from, To: p.Seq})
	}
	if !h.started {
		h.started = true
		h.next = p.Seq
		h.lastTS = p.TimestampUsec
		h.base, h.fill = p.Seq, 0
	}
	if p.Release != "" {
		h.release = p.Release
	}
	if p.Fragmented() {
		var done bool
		if p, done, ev = h.addFragment(p, now, ev); !done {
			return ev
		}
	} else if _, ok := h.frags[p.Seq]; ok {
		return append(ev, Event{Kind: Dropped, Packet: p, Reason: DropConflict})
	}
	return h.sequence(p, now, ev)
}

// classify places an extended datagram relative to what the Host has seen.
func (h *Host) classify(p Packet) class {
	if !h.started {
		return classNew
	}
	if p.Release != "" && h.release != "" && p.Release != h.release {
		return classReboot
	}
	s, ts := p.Seq, p.TimestampUsec
	if e, ok := h.histLookup(s); ok {
		return h.seen(e.stamp(), e.wasDropped(), ts)
	}
	if sl, ok := h.buf[s]; ok {
		return h.seen(sl.msg.TimestampUsec, sl.dropped, ts)
	}
	if pa, ok := h.frags[s]; ok {
		if pa.hdr.TimestampUsec != ts {
			return classReboot
		}
		return classNew
	}
	skew := uint64(h.cfg.ClockSkew / time.Microsecond)
	if s >= h.next {
		if h.lastTS > ts && h.lastTS-ts > skew {
			return classReboot
		}
		return classNew
	}
	// Behind next and never seen: late if its timestamp fits between its
	// neighbours, a new boot otherwise.
	lower, upper, haveLower, haveUpper := h.histNeighbours(s)
	if haveLower && lower > ts && lower-ts > skew {
		return classReboot
	}
	if haveUpper && ts > upper && ts-upper > skew {
		return classReboot
	}
	if p.Replay {
		// A record the sender replayed from its kernel log buffer is
		// never a new boot by its number: it is old on purpose.
		switch {
		case s < h.base && s < h.fill:
			return classDup // backfilled already
		case s < h.base:
			return classLate // backfill
		case haveLower:
			return classLate // a gap in the live stream that it fills
		}
		// Older than the remembered history of the live stream: sent
		// live and delivered (or reported in a Gap) long ago.
		return classDup
	}
	if !haveLower && h.next-s > uint64(len(h.hist)) {
		return classReboot // older than anything remembered
	}
	return classLate
}

// seen classifies a datagram whose sequence number was already seen with
// timestamp ts0: the same message again, or a new boot reusing the number.
func (h *Host) seen(ts0 uint64, dropped bool, ts uint64) class {
	switch {
	case ts0 != ts:
		return classReboot
	case dropped:
		return classIgnore
	}
	return classDup
}

// addFragment adds fragment p to its message and returns the message once
// complete.
func (h *Host) addFragment(p Packet, now time.Time, ev []Event) (Packet, bool, []Event) {
	pa := h.frags[p.Seq]
	if pa == nil {
		cost := p.FragTotal + partialOverhead
		if cost > h.cfg.MaxPendingBytes {
			ev = append(ev, Event{Kind: Dropped, Packet: header(p), Reason: DropTooLarge})
			return Packet{}, false, h.markDropped(header(p), now, ev)
		}
		pa = &partial{hdr: header(p), first: now, cost: cost}
		h.frags[p.Seq] = pa
		h.pending += cost
	} else if hd := header(p); hd.FragTotal != pa.hdr.FragTotal || hd.Release != pa.hdr.Release ||
		hd.Facility != pa.hdr.Facility || hd.Level != pa.hdr.Level || hd.Cont != pa.hdr.Cont {
		return Packet{}, false, append(ev, Event{Kind: Dropped, Packet: p, Reason: DropConflict})
	}
	off, end := p.FragOffset, p.FragOffset+len(p.Text)
	i := sort.Search(len(pa.chunks), func(i int) bool { return pa.chunks[i].off >= off })
	if i < len(pa.chunks) && pa.chunks[i].off == off && pa.chunks[i].data == p.Text {
		return Packet{}, false, append(ev, Event{Kind: Duplicate, Packet: p})
	}
	if (i > 0 && pa.chunks[i-1].off+len(pa.chunks[i-1].data) > off) || (i < len(pa.chunks) && pa.chunks[i].off < end) {
		return Packet{}, false, append(ev, Event{Kind: Dropped, Packet: p, Reason: DropOverlap})
	}
	pa.chunks = slices.Insert(pa.chunks, i, chunk{off: off, data: p.Text})
	pa.have += len(p.Text)
	pa.cost += chunkOverhead
	h.pending += chunkOverhead
	if pa.have < pa.hdr.FragTotal {
		return Packet{}, false, ev
	}
	delete(h.frags, p.Seq)
	h.pending -= pa.cost
	body := make([]byte, 0, pa.hdr.FragTotal)
	for _, c := range pa.chunks {
		body = append(body, c.data...)
	}
	msg := pa.hdr
	msg.FragOffset, msg.FragTotal = 0, 0
	msg.Text, msg.Dict = splitBody(string(body))
	return msg, true, ev
}

// sequence delivers complete message p in order, or holds it until the
// messages before it arrive.
func (h *Host) sequence(p Packet, now time.Time, ev []Event) []Event {
	switch s := p.Seq; {
	case s < h.next:
		if p.Replay && s < h.base {
			// Backfill is kept out of the history, which serves the
			// live stream (duplicates, reboots): Fill tracks it.
			ev = h.fillTo(s, ev)
			return append(ev, Event{Kind: Message, Packet: p, Received: now, Late: true})
		}
		if !p.Replay && s < h.base {
			h.base = s // the live stream's first message was overtaken
		}
		h.record(s, p.TimestampUsec, false)
		return append(ev, Event{Kind: Message, Packet: p, Received: now, Late: true})
	case s == h.next:
		ev = h.deliver(p, now, ev)
		return h.drain(ev)
	}
	sl := &slot{msg: p, at: now, cost: msgCost(p)}
	h.buf[p.Seq] = sl
	h.pending += sl.cost
	return ev
}

// deliver emits in-order message p and advances next past it.
func (h *Host) deliver(p Packet, at time.Time, ev []Event) []Event {
	h.record(p.Seq, p.TimestampUsec, false)
	h.advance(p.Seq, p.TimestampUsec)
	return append(ev, Event{Kind: Message, Packet: p, Received: at})
}

func (h *Host) advance(seq, ts uint64) {
	h.next = seq + 1
	h.lastTS = max(h.lastTS, ts)
}

// drain delivers held messages that continue the sequence.
func (h *Host) drain(ev []Event) []Event {
	for {
		sl, ok := h.buf[h.next]
		if !ok {
			return ev
		}
		delete(h.buf, h.next)
		h.pending -= sl.cost
		if sl.dropped {
			h.record(sl.msg.Seq, sl.msg.TimestampUsec, true)
			h.advance(sl.msg.Seq, sl.msg.TimestampUsec)
			continue
		}
		ev = h.deliver(sl.msg, sl.at, ev)
	}
}

// skip gives up on the sequence numbers before the lowest held message,
// reports them as gaps and delivers what follows. Sequence numbers of
// messages still being reassembled are left out of the gaps: they are
// delivered late or reported as Dropped.
func (h *Host) skip(ev []Event) []Event {
	lowest := uint64(0)
	first := true
	for s := range h.buf {
		if first || s < lowest {
			lowest, first = s, false
		}
	}
	if first {
		return ev
	}
	var inProgress []uint64
	for s := range h.frags {
		if s >= h.next && s < lowest {
			inProgress = append(inProgress, s)
		}
	}
	slices.Sort(inProgress)
	from := h.next
	for _, s := range inProgress {
		if s > from {
			ev = append(ev, Event{Kind: Gap, From: from, To: s - 1})
		}
		from = s + 1
	}
	if from < lowest {
		ev = append(ev, Event{Kind: Gap, From: from, To: lowest - 1})
	}
	h.next = lowest
	return h.drain(ev)
}

// fillTo moves the backfill past replayed record s, reporting the
// sequence numbers skipped since the last one as a Gap (those of
// backfill still being reassembled left out): records the sender's ring
// buffer had overwritten, or replayed datagrams lost.
func (h *Host) fillTo(s uint64, ev []Event) []Event {
	if s < h.fill {
		return ev
	}
	var inProgress []uint64
	for q := range h.frags {
		if q >= h.fill && q < s {
			inProgress = append(inProgress, q)
		}
	}
	slices.Sort(inProgress)
	from := h.fill
	for _, q := range inProgress {
		if q > from {
			ev = append(ev, Event{Kind: Gap, From: from, To: q - 1})
		}
		from = q + 1
	}
	if from < s {
		ev = append(ev, Event{Kind: Gap, From: from, To: s - 1})
	}
	h.fill = s + 1
	return ev
}

// markDropped records that the message with header hd was given up on, so
// the sequence moves past it without a Gap and its late fragments are
// ignored.
func (h *Host) markDropped(hd Packet, now time.Time, ev []Event) []Event {
	if hd.Replay && hd.Seq < h.base && hd.Seq < h.next {
		return h.fillTo(hd.Seq, ev) // its late fragments are below Fill
	}
	if hd.Seq < h.next {
		h.record(hd.Seq, hd.TimestampUsec, true)
		return ev
	}
	sl := &slot{msg: hd, dropped: true, at: now, cost: slotOverhead}
	h.buf[hd.Seq] = sl
	h.pending += sl.cost
	return h.drain(ev)
}

// dropPartial gives up on the incomplete message seq.
func (h *Host) dropPartial(seq uint64, reason DropReason, now time.Time, ev []Event) []Event {
	pa := h.frags[seq]
	delete(h.frags, seq)
	h.pending -= pa.cost
	ev = append(ev, Event{Kind: Dropped, Packet: pa.hdr, Reason: reason})
	return h.markDropped(pa.hdr, now, ev)
}

// settle applies the reorder window and the memory bound.
func (h *Host) settle(now time.Time, ev []Event) []Event {
	ev = h.enforce(now, ev) // may add drop markers to buf
	for len(h.buf) > h.cfg.ReorderWindow {
		ev = h.skip(ev)
	}
	return ev
}

// enforce brings pending bytes back under the limit: oldest incomplete
// messages go first, then held messages are delivered past their gaps.
func (h *Host) enforce(now time.Time, ev []Event) []Event {
	for h.pending > h.cfg.MaxPendingBytes {
		switch {
		case len(h.frags) > 0:
			var oldest *partial
			for _, pa := range h.frags {
				if oldest == nil || pa.first.Before(oldest.first) ||
					(pa.first.Equal(oldest.first) && pa.hdr.Seq < oldest.hdr.Seq) {
					oldest = pa
				}
			}
			ev = h.dropPartial(oldest.hdr.Seq, DropPendingLimit, now, ev)
		case len(h.buf) > 0:
			ev = h.skip(ev)
		default:
			return ev
		}
	}
	return ev
}

// expire drops incomplete messages and ends reorder waits that timed out.
func (h *Host) expire(now time.Time, ev []Event) []Event {
	if len(h.frags) > 0 {
		var old []uint64
		for s, pa := range h.frags {
			if now.Sub(pa.first) >= h.cfg.FragmentTimeout {
				old = append(old, s)
			}
		}
		slices.Sort(old)
		for _, s := range old {
			ev = h.dropPartial(s, DropTimeout, now, ev)
		}
	}
	for len(h.buf) > 0 {
		var oldest time.Time
		first := true
		for _, sl := range h.buf {
			if first || sl.at.Before(oldest) {
				oldest, first = sl.at, false
			}
		}
		if now.Sub(oldest) < h.cfg.ReorderWait {
			break
		}
		ev = h.skip(ev)
	}
	return ev
}

// drainAll drops all incomplete messages and delivers all held ones.
func (h *Host) drainAll(now time.Time, reason DropReason, ev []Event) []Event {
	seqs := make([]uint64, 0, len(h.frags))
	for s := range h.frags {
		seqs = append(seqs, s)
	}
	slices.Sort(seqs)
	for _, s := range seqs {
		ev = h.dropPartial(s, reason, now, ev)
	}
	for len(h.buf) > 0 {
		ev = h.skip(ev)
	}
	return ev
}

// reset forgets the sequence state, after a reboot.
func (h *Host) reset() {
	h.started = false
	h.next, h.lastTS, h.release = 0, 0, ""
	h.base, h.fill = 0, 0
	clear(h.hist)
	h.histPos = 0
}

func (h *Host) record(seq, ts uint64, dropped bool) {
	e := histEntry{seq1: seq + 1, ts: ts &^ histDropped}
	if dropped {
		e.ts |= histDropped
	}
	h.hist[h.histPos] = e
	h.histPos = (h.histPos + 1) % len(h.hist)
}

func (h *Host) histLookup(seq uint64) (histEntry, bool) {
	for _, e := range h.hist {
		if e.seq1 == seq+1 {
			return e, true
		}
	}
	return histEntry{}, false
}

// histNeighbours returns the timestamps of the remembered messages closest
// below and above seq.
func (h *Host) histNeighbours(seq uint64) (lowerTS, upperTS uint64, haveLower, haveUpper bool) {
	var lo, hi histEntry
	for _, e := range h.hist {
		switch {
		case !e.valid():
		case e.seq() < seq && (!lo.valid() || e.seq() > lo.seq()):
			lo = e
		case e.seq() > seq && (!hi.valid() || e.seq() < hi.seq()):
			hi = e
		}
	}
	return lo.stamp(), hi.stamp(), lo.valid(), hi.valid()
}

// header returns p without its text, as kept for a dropped message.
func header(p Packet) Packet {
	p.Text, p.Dict = "", nil
	return p
}

// msgCost is the accounted size of complete message p.
func msgCost(p Packet) int {
	n := slotOverhead + len(p.Text) + len(p.Release)
	for _, d := range p.Dict {
		n += len(d) + dictOverhead
	}
	return n
}
