package ring

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
)

// Format constants.
const (
	Magic    = "LGRING\x00\x01"
	Version  = 1
	SlotSize = 128
	// MaxChunk is the data one slot holds.
	MaxChunk = SlotSize - slotHdr
	// MaxLine bounds one appended line; longer lines are cut.
	MaxLine = 4096
	// MinHalf is the smallest half Format accepts: a header and 8 slots
	// per stream.
	MinHalf   = SlotSize * 17
	slotHdr   = 16
	maxBootID = 48
)

// Header flags.
const (
	FlagConsoleShipped = 1 << 0
	FlagPmsgShipped    = 1 << 1
)

// Chunk flags.
const (
	ChunkFirst  = 1 << 0 // the slot starts a line
	ChunkMore   = 1 << 1 // the line goes on in the next slot
	ChunkMarker = 1 << 2 // the line is a marker (see Stream.Markers), not text
)

// Stream names one of a half's two streams.
type Stream int

const (
	// Pmsg holds the agent's own stage lines (the pmsg equivalent).
	Pmsg Stream = iota
	// Console holds the kernel log's lines (the console equivalent).
	Console
)

func (s Stream) String() string {
	if s == Pmsg {
		return "pmsg"
	}
	return "console"
}

// Errors Parse returns for a half that holds no ring.
var (
	ErrNoRing  = errors.New("no ring (bad magic: never formatted, or cold boot)")
	ErrCorrupt = errors.New("ring header corrupt")
)

// Header is a half's header.
type Header struct {
	Version      uint16
	Flags        uint32
	Generation   uint64
	PmsgSlots    uint32
	ConsoleSlots uint32
	BootID       string
	Formatted    int64 // Unix seconds
}

// Halves splits a region into its two halves, each a multiple of SlotSize.
func Halves(region []byte) ([2][]byte, error) {
	h := len(region) / 2 / SlotSize * SlotSize
	if h < MinHalf {
		return [2][]byte{}, fmt.Errorf("ring: region of %d bytes: want at least %d", len(region), 2*MinHalf)
	}
	return [2][]byte{region[:h:h], region[h : 2*h : 2*h]}, nil
}

func (h Header) key() uint32 {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], h.Generation)
	return crcUpdate(crcChecksum([]byte(h.BootID)), b[:])
}

func encodeHeader(h Header) []byte {
	b := make([]byte, SlotSize)
	copy(b, Magic)
	binary.LittleEndian.PutUint16(b[8:], h.Version)
	binary.LittleEndian.PutUint16(b[10:], SlotSize)
	binary.LittleEndian.PutUint32(b[12:], h.Flags)
	binary.LittleEndian.PutUint64(b[16:], h.Generation)
	binary.LittleEndian.PutUint32(b[24:], h.PmsgSlots)
	binary.LittleEndian.PutUint32(b[28:], h.ConsoleSlots)
	copy(b[32:32+maxBootID], h.BootID)
	binary.LittleEndian.PutUint64(b[80:], uint64(h.Formatted))
	binary.LittleEndian.PutUint32(b[124:], crcChecksum(b[:124]))
	return b
}

// ParseHeader reads a half's header and checks it against the half's size.
func ParseHeader(half []byte) (Header, error) {
	if len(half) < SlotSize {
		return Header{}, ErrNoRing
	}
	b := half[:SlotSize]
	if string(b[:8]) != Magic {
		return Header{}, ErrNoRing
	}
	if crcChecksum(b[:124]) != binary.LittleEndian.Uint32(b[124:]) {
		return Header{}, fmt.Errorf("ring: header CRC mismatch: %w", ErrCorrupt)
	}
	h := Header{
		Version:      binary.LittleEndian.Uint16(b[8:]),
		Flags:        binary.LittleEndian.Uint32(b[12:]),
		Generation:   binary.LittleEndian.Uint64(b[16:]),
		PmsgSlots:    binary.LittleEndian.Uint32(b[24:]),
		ConsoleSlots: binary.LittleEndian.Uint32(b[28:]),
		BootID:       string(bytes.TrimRight(b[32:32+maxBootID], "\x00")),
		Formatted:    int64(binary.LittleEndian.Uint64(b[80:])),
	}
	if h.Version != Version || binary.LittleEndian.Uint16(b[10:]) != SlotSize {
		return Header{}, fmt.Errorf("ring: version %d slot size %d, want %d and %d: %w", h.Version, binary.LittleEndian.Uint16(b[10:]), Version, SlotSize, ErrCorrupt)
	}
	if h.PmsgSlots == 0 || h.ConsoleSlots == 0 || (1+uint64(h.PmsgSlots)+uint64(h.ConsoleSlots))*SlotSize > uint64(len(half)) {
		return Header{}, fmt.Errorf("ring: %d+%d slots do not fit %d bytes: %w", h.PmsgSlots, h.ConsoleSlots, len(half), ErrCorrupt)
	}
	return h, nil
}

// Format resets half for the boot bootID: it zeroes the half and writes a
// header with generation gen, giving pmsgBytes (rounded to slots, at least
// 8) to the pmsg stream and the rest to the console stream.
func Format(half []byte, bootID string, gen uint64, pmsgBytes int, now int64) (*Ring, error) {
	if len(half) < MinHalf || len(half)%SlotSize != 0 {
		return nil, fmt.Errorf("ring: half of %d bytes: want a multiple of %d, at least %d", len(half), SlotSize, MinHalf)
	}
	if len(bootID) > maxBootID || strings.IndexByte(bootID, 0) >= 0 {
		return nil, fmt.Errorf("ring: boot id %q: want at most %d bytes, no NUL", bootID, maxBootID)
	}
	total := len(half)/SlotSize - 1
	p := min(max(pmsgBytes/SlotSize, 8), total-8)
	h := Header{Version: Version, Generation: gen, PmsgSlots: uint32(p), ConsoleSlots: uint32(total - p), BootID: bootID, Formatted: now}
	clear(half[SlotSize:])
	copy(half, encodeHeader(h))
	return &Ring{half: half, hdr: h, key: h.key(), next: [2]uint64{1, 1}}, nil
}

// Ring is a formatted half, opened for writing. Each stream must have one
// writer at a time (the agent writes pmsg; the console copier console).
type Ring struct {
	half []byte
	hdr  Header
	key  uint32
	mu   sync.Mutex
	next [2]uint64 // next seq per stream
}

// Open opens a formatted half for writing; each stream's writes go on
// after the newest valid slot.
func Open(half []byte) (*Ring, error) {
	h, err := ParseHeader(half)
	if err != nil {
		return nil, err
	}
	r := &Ring{half: half, hdr: h, key: h.key()}
	for s := range 2 {
		r.next[s] = maxSeq(r.slots(Stream(s)), r.key) + 1
		if r.next[s] == 0 {
			return nil, fmt.Errorf("ring: %s stream: sequence number at its limit: %w", Stream(s), ErrCorrupt)
		}
	}
	return r, nil
}

// Header returns the ring's header.
func (r *Ring) Header() Header { return r.hdr }

func (r *Ring) slots(s Stream) []byte {
	return streamSlots(r.half, r.hdr, s)
}

func streamSlots(half []byte, h Header, s Stream) []byte {
	start, n := 1, int(h.PmsgSlots)
	if s == Console {
		start, n = 1+int(h.PmsgSlots), int(h.ConsoleSlots)
	}
	return half[start*SlotSize : (start+n)*SlotSize]
}

// Append writes one line to stream s (a trailing newline is dropped; a line
// longer than MaxLine is cut). Old lines are overwritten once the stream is
// full.
func (r *Ring) Append(s Stream, line string) {
	r.write(s, strings.TrimSuffix(line, "\n"), 0)
}

// Mark writes a marker to stream s: a word Parse returns in
// Stream.Markers, e.g. "done" when the agent handed off.
func (r *Ring) Mark(s Stream, marker string) { r.write(s, marker, ChunkMarker) }

func (r *Ring) write(s Stream, line string, flags byte) {
	if len(line) > MaxLine {
		line = line[:MaxLine]
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	area := r.slots(s)
	n := uint64(len(area) / SlotSize)
	first := true
	for first || len(line) > 0 {
		chunk := line[:min(len(line), MaxChunk)]
		line = line[len(chunk):]
		f := flags
		if first {
			f |= ChunkFirst
		}
		if len(line) > 0 {
			f |= ChunkMore
		}
		first = false
		seq := r.next[s]
		r.next[s]++
		slot := area[((seq-1)%n)*SlotSize:][:SlotSize]
		var b [SlotSize]byte
		binary.LittleEndian.PutUint64(b[0:], seq)
		b[12], b[13] = byte(len(chunk)), f
		copy(b[slotHdr:], chunk)
		binary.LittleEndian.PutUint32(b[8:], slotCRC(r.key, b[:]))
		// The CRC goes last, so that a slot cut by a reset is invalid.
		copy(slot[12:], b[12:])
		copy(slot[0:8], b[0:8])
		copy(slot[8:12], b[8:12])
	}
}

func slotCRC(key uint32, b []byte) uint32 {
	n := min(int(b[12]), MaxChunk)
	c := crcUpdate(key, b[0:8])
	return crcUpdate(c, b[12:slotHdr+n])
}

type chunk struct {
	seq   uint64
	flags byte
	data  []byte
}

// maxSeq returns the newest sequence number among the valid slots that sit
// where their sequence number puts them.
func maxSeq(area []byte, key uint32) uint64 {
	var m uint64
	n := uint64(len(area) / SlotSize)
	for i := uint64(0); i < n; i++ {
		if c, ok := readSlot(area[i*SlotSize:(i+1)*SlotSize], key); ok && (c.seq-1)%n == i && c.seq > m {
			m = c.seq
		}
	}
	return m
}

func readSlot(b []byte, key uint32) (chunk, bool) {
	seq := binary.LittleEndian.Uint64(b)
	if seq == 0 || int(b[12]) > MaxChunk || binary.LittleEndian.Uint32(b[8:]) != slotCRC(key, b) {
		return chunk{}, false
	}
	return chunk{seq: seq, flags: b[13], data: b[slotHdr : slotHdr+int(b[12])]}, true
}

// Lines is what Parse found in one stream.
type Lines struct {
	Lines   []string // text lines, oldest first
	Markers []string // markers, in order
	// First and Last are the sequence numbers of the oldest and newest
	// valid slots kept; Last is 0 for an empty stream.
	First, Last uint64
	// Overwritten reports that older lines were overwritten (the stream
	// wrapped) or lost to a gap: Lines is the newest part.
	Overwritten bool
	// Torn reports a slot cut by a reset while it was written (or
	// damaged): not all zero, and not valid.
	Torn bool
}

// Text returns the lines joined, each ending in a newline.
func (l Lines) Text() string {
	if len(l.Lines) == 0 {
		return ""
	}
	return strings.Join(l.Lines, "\n") + "\n"
}

// HasMarker reports whether m is among the markers.
func (l Lines) HasMarker(m string) bool { return slices.Contains(l.Markers, m) }

// Snapshot is a parsed half.
type Snapshot struct {
	Header
	Pmsg, Console Lines
}

// Parse reads a half left by a (previous) boot. It never fails on the
// streams' contents: invalid slots are left out (and reported as Torn);
// it fails only when the header is missing or corrupt.
func Parse(half []byte) (Snapshot, error) {
	h, err := ParseHeader(half)
	if err != nil {
		return Snapshot{}, err
	}
	k := h.key()
	return Snapshot{Header: h, Pmsg: parseStream(streamSlots(half, h, Pmsg), k), Console: parseStream(streamSlots(half, h, Console), k)}, nil
}

func parseStream(area []byte, key uint32) Lines {
	var l Lines
	n := len(area) / SlotSize
	slots := make([]chunk, n)
	var newest uint64
	for i := range n {
		b := area[i*SlotSize : (i+1)*SlotSize]
		c, ok := readSlot(b, key)
		if !ok {
			if slices.ContainsFunc(b, func(x byte) bool { return x != 0 }) {
				l.Torn = true
			}
			continue
		}
		slots[i] = c
		if (c.seq-1)%uint64(n) == uint64(i) {
			newest = max(newest, c.seq)
		}
	}
	if newest == 0 {
		return l
	}
	// Walk back from the newest slot while each sequence number is where
	// it belongs ((seq-1) mod n): anything before a gap is older than a
	// torn or lost slot. No sort: the position is the order.
	var cs []chunk
	for seq := newest; seq >= 1 && len(cs) < n; seq-- {
		c := slots[(seq-1)%uint64(n)]
		if c.seq != seq {
			break
		}
		cs = append(cs, c)
	}
	slices.Reverse(cs)
	l.First, l.Last = cs[0].seq, newest
	l.Overwritten = l.First != 1
	// A line whose start was overwritten is left out.
	for len(cs) > 0 && cs[0].flags&ChunkFirst == 0 {
		cs = cs[1:]
		l.Overwritten = true
	}
	var cur []byte
	marker, open := false, false
	flush := func() {
		if marker {
			l.Markers = append(l.Markers, string(cur))
		} else {
			l.Lines = append(l.Lines, string(cur))
		}
		cur, open = nil, false
	}
	for _, c := range cs {
		if c.flags&ChunkFirst != 0 && open {
			flush() // the line's end was lost: keep what there is
		}
		if c.flags&ChunkFirst != 0 {
			marker, open = c.flags&ChunkMarker != 0, true
		}
		if !open {
			continue
		}
		cur = append(cur, c.data...)
		if c.flags&ChunkMore == 0 {
			flush()
		}
	}
	if open {
		flush()
	}
	return l
}

// MarkShipped sets flags (FlagConsoleShipped, FlagPmsgShipped) in the
// header of a half a previous boot wrote, once the collector acknowledged
// its records. Only the agent writes that half's header.
func MarkShipped(half []byte, flags uint32) error {
	h, err := ParseHeader(half)
	if err != nil {
		return err
	}
	h.Flags |= flags
	copy(half, encodeHeader(h))
	return nil
}
