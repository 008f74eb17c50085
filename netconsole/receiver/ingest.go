package receiver

import (
	"bytes"
	"container/list"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lastgasp/lastgasp/netconsole/announce"
	"github.com/lastgasp/lastgasp/netconsole/wire"
	"github.com/lastgasp/lastgasp/pstore/ship"
	"github.com/lastgasp/lastgasp/store"
	"github.com/lastgasp/lastgasp/store/logline"
)

// ingest is the state of one Serve call. It is used by one goroutine only.
type ingest struct {
	*Server
	c               *counters
	announceTimeout time.Duration
	announceLines   int
	announceBytes   int
	maxHosts        int64
	hostTTL         time.Duration
	maxActive       int64
	flushInterval   time.Duration
	writeDelay      time.Duration
	writeBytes      int
	limit           limiter
	noteInterval    time.Duration
	saveInterval    time.Duration
	maxNames        int
	index           int    // in Server.counters, names this ingest's saved state
	timedGen        uint32 // flushes so far, to visit each of timed once

	idents     map[netip.AddrPort]*ident // every sender seen
	active     list.List                 // *ident with heavy state, most recently heard first
	pool       []*heavy                  // heavy states to reuse
	dirty      []dirtyEntry              // batches waiting to be written, oldest first
	timed      []timedEntry              // heavy states holding something a timeout applies to
	limitedIDs []*ident                  // idents with rate-limited messages not yet noted
	wq         chan batch                // to the writer goroutine
	wdone      chan struct{}             // closed when the writer is done
	free       chan []byte               // written batches' buffers, for reuse

	saving chan struct{} // closed when the last state save is written

	logLimits map[string]*logLimit
	lastSweep time.Time
	lastSave  time.Time
	scratch   []byte
	lightEv   [1]wire.Event // a message delivered from an ident's State
	noteText  []byte        // the text of a note being built
	noteLine  []byte        // a note's line on its way to emit
}

// ident is what an ingest keeps for every sender it has seen: who it is,
// where its sequence stands and what it still has to write. It stays small:
// see Server's documentation for the budget.
type ident struct {
	key       netip.AddrPort
	st        wire.State // where the sequence stands, when h is nil
	h         *heavy     // nil when shed
	host      string     // bound host; "" when unbound
	boot      string     // bound boot; "" for UnknownBoot
	prevHost  string     // host before a reboot unbound the sender
	lastHeard int64      // unix nanoseconds
	bucket    bucket
	o         *outState   // lines waiting to be written; nil when none
	l         *limitState // rate-limited messages to note; nil if never limited
	claimGen  uint32      // claimTable.takeovers when id last found itself the owner
	names     uint8       // distinct host names this sender announced
	fallback  bool        // bound to its address (or prevHost) for want of an announcement
	noted     bool        // the "no announcement" line was written for this boot
	conflict  bool        // a conflicting claim was noted for this binding
}

// outState is a sender's batch of lines on their way to the store, kept
// apart from ident so that a quiet sender costs nothing for it.
type outState struct {
	from    netip.Addr // if valid: the binding was announced from here, not yet recorded
	out     []byte
	msgs    int   // messages in out
	since   int64 // unix nanoseconds of the oldest line in out
	inDirty bool  // in ingest.dirty
}

// limitState is what a rate-limited sender has not yet noted in its log.
type limitState struct {
	n           uint64 // rate-limited since the last note
	unpublished uint64 // not yet added to Server.RateLimitedHosts
	first, last uint64 // their first and last sequence numbers
	noted       int64  // unix nanoseconds of the last note
	inList      bool   // in ingest.limitedIDs
}

// dirtyEntry is a batch on ingest.dirty: id's batch o, while id.o is o
// and o.inDirty. Batches are added as their first line is queued, so the
// list is oldest first and a flush writes the due ones from its front
// instead of visiting every waiting host (at 65,536 hosts, 10 times a
// second, that visit was 6% of the collector's CPU).
type dirtyEntry struct {
	id *ident
	o  *outState
}

// valid reports whether e is still a waiting batch.
func (e dirtyEntry) valid() bool { return e.id.o == e.o && e.o.inDirty }

// timedEntry is a heavy state on ingest.timed: id's h, while id.h is h and
// h.timed. A flush runs the timeouts of these only, not of every active
// sender: most hold nothing.
type timedEntry struct {
	id *ident
	h  *heavy
}

// heavy is the state that may be shed: a wire.Host with fragments, reorder
// window and history, and the lines waiting for an announcement.
type heavy struct {
	host      *wire.Host
	elem      *list.Element
	held      []heldLine
	heldBytes int
	heldSince time.Time
	cost      int64  // bytes counted in Server.pending
	timed     bool   // on ingest.timed
	timedGen  uint32 // the flush that last kept it on ingest.timed
}

// heldLine is a log line waiting for its sender to be bound, with the
// message it came from (to forward) if any.
type heldLine struct {
	line []byte
	msg  *wire.Event
}

type logLimit struct {
	last       time.Time
	suppressed int
}

func (s *Server) newIngest() *ingest {
	in := &ingest{
		Server:          s,
		c:               &counters{},
		announceTimeout: cmpOr(s.AnnounceTimeout, DefaultAnnounceTimeout),
		announceLines:   cmpOr(s.AnnounceLines, DefaultAnnounceLines),
		announceBytes:   cmpOr(s.AnnounceBytes, DefaultAnnounceBytes),
		maxHosts:        int64(cmpOr(s.MaxHosts, DefaultMaxHosts)),
		hostTTL:         s.HostTTL,
		maxActive:       int64(cmpOr(s.MaxActive, DefaultMaxActive)),
		flushInterval:   cmpOr(s.FlushInterval, DefaultFlushInterval),
		writeDelay:      cmpOr(s.WriteDelay, DefaultWriteDelay),
		writeBytes:      cmpOr(s.WriteBytes, DefaultWriteBytes),
		noteInterval:    cmpOr(s.RateNoteInterval, DefaultRateNoteInterval),
		saveInterval:    cmpOr(s.SaveInterval, DefaultSaveInterval),
		maxNames:        min(cmpOr(s.MaxNamesPerSender, DefaultMaxNamesPerSender), 255),
		idents:          make(map[netip.AddrPort]*ident),
		logLimits:       make(map[string]*logLimit),
	}
	if in.hostTTL == 0 {
		in.hostTTL = DefaultHostTTL
	}
	if s.RateLimit >= 0 {
		in.limit = limiter{rate: cmpOr(s.RateLimit, DefaultRateLimit), burst: float64(cmpOr(s.RateBurst, DefaultRateBurst))}
	}
	s.mu.Lock()
	in.index = len(s.counters)
	s.counters = append(s.counters, in.c)
	s.mu.Unlock()
	now := time.Now()
	in.lastSweep, in.lastSave = now, now
	return in
}

// logf logs at most once a second per kind, counting what it suppresses.
func (in *ingest) logf(now time.Time, kind, format string, args ...any) {
	if in.Logf == nil {
		return
	}
	l := in.logLimits[kind]
	if l == nil {
		l = &logLimit{}
		in.logLimits[kind] = l
	}
	if !l.last.IsZero() && now.Sub(l.last) < time.Second {
		l.suppressed++
		return
	}
	if l.suppressed > 0 {
		format += fmt.Sprintf(" (%d more suppressed)", l.suppressed)
	}
	l.last, l.suppressed = now, 0
	in.Logf(format, args...)
}

// datagram handles datagram b from addr.
func (in *ingest) datagram(now time.Time, addr net.Addr, b []byte, truncated bool) {
	in.datagramFrom(now, sourceKey(addr), b, truncated)
}

// datagramFrom handles datagram b from the sender key.
func (in *ingest) datagramFrom(now time.Time, key netip.AddrPort, b []byte, truncated bool) {
	in.c.datagrams.Add(1)
	if truncated {
		in.c.truncated.Add(1)
		in.logf(now, "truncated", "receiver: from %s: datagram longer than %d bytes dropped", logAddr(key), len(b))
		return
	}
	if in.passLimited(now, key, b) {
		return
	}
	p, err := wire.Parse(b)
	if err != nil {
		in.c.malformed.Add(1)
		in.logf(now, "malformed", "receiver: from %s: %v", logAddr(key), err)
		return
	}
	id := in.ident(now, key)
	id.lastHeard = now.UnixNano()
	if id.h == nil && id.host != "" && in.Server.active.Load() >= in.maxActive && id.st.Advance(p, in.Config) {
		// The next message, in order, of a bound sender whose heavy
		// state was shed, while every heavy state is in use: delivered
		// from its State. Attaching a Host would shed another sender's
		// (at 65,536 hosts heard in turn over 16,384 heavy states,
		// nearly every datagram did, 16% of the collector's CPU) and
		// would hold nothing for this message.
		in.lightEv[0] = wire.Event{Kind: wire.Message, Packet: p, Received: now}
		in.events(now, id, in.lightEv[:])
		in.lightEv[0] = wire.Event{}
		in.account(now, id)
		return
	}
	h := in.heavyFor(now, id)
	in.events(now, id, h.host.Feed(p, now))
	in.account(now, id)
	in.markTimed(id)
}

// markTimed puts id's heavy state on ingest.timed if it holds something a
// timeout applies to: fragments or messages waiting (wire.Host), or lines
// waiting for an announcement.
func (in *ingest) markTimed(id *ident) {
	h := id.h
	if h == nil || h.timed || h.host.PendingBytes() == 0 && (id.host != "" || len(h.held) == 0) {
		return
	}
	h.timed = true
	in.timed = append(in.timed, timedEntry{id, h})
}

// passLimited drops datagram b of sender key without parsing its text when
// the sender is being rate-limited and b is simply its next message: the
// flood's excess costs a header parse, not a message's, so that a flooding
// host leaves its socket's reader time for the other hosts on it. It
// reports whether it did.
func (in *ingest) passLimited(now time.Time, key netip.AddrPort, b []byte) bool {
	if in.limit.rate <= 0 {
		return false
	}
	id, ok := in.idents[key]
	if !ok || id.h == nil || id.host == "" || id.l == nil || id.l.n == 0 {
		return false
	}
	t := now.UnixNano()
	if id.bucket.peek(t, in.limit) {
		return false // a token: the message is stored
	}
	p, body, ok := wire.ParseHeader(b)
	if !ok || bytes.HasPrefix(body, announcePrefix) || bytes.Contains(body, []byte("\n host=")) {
		return false // announcements and userdata bindings are never limited
	}
	if !id.h.host.Pass(p) {
		return false
	}
	id.lastHeard = t
	in.rateLimited(id, p.Seq)
	return true
}

var announcePrefix = []byte(announce.Prefix)

// sourceKey returns the identity key of a sender address.
func sourceKey(addr net.Addr) netip.AddrPort {
	var key netip.AddrPort
	if ua, ok := addr.(*net.UDPAddr); ok {
		key = ua.AddrPort()
	} else if ap, err := netip.ParseAddrPort(addr.String()); err == nil {
		key = ap
	} else {
		// Not an IP address: key by its string form in a zone of the
		// unspecified address.
		key = netip.AddrPortFrom(netip.IPv6Unspecified().WithZone(addr.String()), 0)
	}
	return netip.AddrPortFrom(key.Addr().Unmap(), key.Port())
}

// logAddr returns the sender key as the log names it.
func logAddr(key netip.AddrPort) string {
	addr, _ := sourceName(key)
	return addr
}

// sourceName returns the address of id as written in notes, and the host
// name its lines fall back to.
func sourceName(key netip.AddrPort) (addr, ip string) {
	if a := key.Addr(); a.Zone() != "" && key.Port() == 0 && a.WithZone("").IsUnspecified() {
		return a.Zone(), a.Zone()
	}
	return key.String(), key.Addr().String()
}

// ident returns the identity of key, creating (or restoring) it and making
// room for it if needed.
func (in *ingest) ident(now time.Time, key netip.AddrPort) *ident {
	if id, ok := in.idents[key]; ok {
		return id
	}
	for in.nhosts.Load() >= in.maxHosts && len(in.idents) > 0 {
		in.forget(now, in.oldestSample(), &in.c.forgotten)
	}
	id := &ident{key: key}
	if sv, ok := in.restored.take(key); ok {
		sv.apply(id)
		in.c.restored.Add(1)
		if id.host != "" && !id.fallback {
			in.claims.claim(id.host, id.boot, key, now)
		}
	}
	in.idents[key] = id
	in.nhosts.Add(1)
	return id
}

// oldestSample returns the least recently heard of a few identities: Go's
// map iteration starts at a random place, which makes this an
// approximation of least recently used without a list through a million
// entries.
func (in *ingest) oldestSample() *ident {
	var old *ident
	n := 0
	for _, id := range in.idents {
		if old == nil || id.lastHeard < old.lastHeard {
			old = id
		}
		if n++; n == 8 {
			break
		}
	}
	return old
}

// forget writes out what id holds and drops it, counting it in c.
func (in *ingest) forget(now time.Time, id *ident, c interface{ Add(uint64) uint64 }) {
	if id.h != nil {
		in.shed(now, id, true)
	}
	in.noteLimited(now, id, true)
	in.writeOut(now, id)
	in.claims.release(id.host, id.key)
	delete(in.idents, id.key)
	in.nhosts.Add(-1)
	c.Add(1)
}

// heavyFor returns id's heavy state, attaching one (shedding another
// sender's if MaxActive is reached) if it has none.
func (in *ingest) heavyFor(now time.Time, id *ident) *heavy {
	if h := id.h; h != nil {
		in.active.MoveToFront(h.elem)
		return h
	}
	for in.active.Len() > 0 && in.Server.active.Load() >= in.maxActive {
		in.shed(now, in.active.Back().Value.(*ident), true)
		in.c.evictions.Add(1)
	}
	var h *heavy
	if n := len(in.pool); n > 0 {
		h, in.pool = in.pool[n-1], in.pool[:n-1]
	} else {
		h = &heavy{host: wire.NewHost(in.Config)}
	}
	h.host.Reset(id.st)
	h.elem = in.active.PushFront(id)
	id.h = h
	in.Server.active.Add(1)
	return h
}

// shed frees id's heavy state: held messages are delivered past their gaps,
// incomplete ones dropped (counted), held unannounced lines filed as on
// timeout. With detach, the heavy state goes back to the pool and id keeps
// only its wire.State; otherwise (a memory shed) the Host stays attached,
// emptied.
func (in *ingest) shed(now time.Time, id *ident, detach bool) {
	h := id.h
	in.events(now, id, h.host.Shed(now))
	if id.host == "" && len(h.held) > 0 {
		in.fallback(now, id)
	}
	if !detach {
		in.recost(id)
		return
	}
	id.st = h.host.State()
	in.pending.Add(-h.cost)
	h.cost = 0
	in.active.Remove(h.elem)
	h.elem = nil
	h.timed = false
	id.h = nil
	clear(h.held)
	h.held, h.heldBytes = h.held[:0], 0
	in.pool = append(in.pool, h)
	in.Server.active.Add(-1)
}

// account updates the memory held for id and enforces Server.MaxMemory.
func (in *ingest) account(now time.Time, id *ident) {
	in.recost(id)
	if in.MaxMemory <= 0 || in.pending.Load() <= in.MaxMemory {
		return
	}
	in.writeAll(now)
	if in.pending.Load() <= in.MaxMemory {
		return
	}
	if id.h != nil {
		in.shed(now, id, false)
	}
	n := 1
	for e := in.active.Back(); e != nil && n < maxShedPerDatagram && in.pending.Load() > in.MaxMemory; e = e.Prev() {
		if o := e.Value.(*ident); o != id && o.h.cost > 0 {
			in.shed(now, o, false)
			n++
		}
	}
}

// recost brings id's heavy share of Server.pending up to date.
func (in *ingest) recost(id *ident) {
	h := id.h
	if h == nil {
		return
	}
	cost := int64(h.host.PendingBytes() + h.heldBytes)
	if d := cost - h.cost; d != 0 {
		in.pending.Add(d)
		h.cost = cost
	}
}

// flush runs timeouts (held wire data and held unannounced lines), writes
// lines that are due (all of them with force) and notes rate limiting.
func (in *ingest) flush(now time.Time, force bool) {
	timeouts := func(id *ident) {
		h := id.h
		if h.host.PendingBytes() > 0 {
			in.events(now, id, h.host.Flush(now))
		}
		if id.host == "" && len(h.held) > 0 && (force || now.Sub(h.heldSince) >= in.announceTimeout) {
			in.fallback(now, id)
		}
		in.recost(id)
	}
	if force {
		for e := in.active.Front(); e != nil; {
			id := e.Value.(*ident)
			e = e.Next()
			timeouts(id)
		}
	}
	in.timedGen++
	kept := in.timed[:0]
	for _, e := range in.timed {
		h := e.h
		if e.id.h != h || !h.timed || h.timedGen == in.timedGen {
			continue // shed since, or already visited
		}
		if !force {
			timeouts(e.id)
		}
		if e.id.h == h && (h.host.PendingBytes() > 0 || e.id.host == "" && len(h.held) > 0) {
			h.timedGen = in.timedGen
			kept = append(kept, e)
		} else if e.id.h == h {
			h.timed = false
		}
	}
	clear(in.timed[len(kept):])
	in.timed = kept
	if len(in.limitedIDs) > 0 {
		kept := in.limitedIDs[:0]
		for _, id := range in.limitedIDs {
			in.publishLimited(id)
			if !in.noteLimited(now, id, force) {
				kept = append(kept, id)
			}
		}
		clear(in.limitedIDs[len(kept):])
		in.limitedIDs = kept
	}
	due := now.Add(-in.delay()).UnixNano()
	i := 0
	for ; i < len(in.dirty); i++ {
		e := in.dirty[i]
		if !e.valid() {
			continue // written since
		}
		if !force && e.o.since > due {
			break // and so are all after it
		}
		in.write(now, e.id, force)
		if e.valid() {
			break // the writer is behind: the rest waits too
		}
	}
	clear(in.dirty[:i])
	in.dirty = in.dirty[i:]
	if in.hostTTL > 0 && now.Sub(in.lastSweep) >= time.Minute {
		in.lastSweep = now
		cutoff := now.Add(-in.hostTTL).UnixNano()
		for _, id := range in.idents {
			if id.lastHeard < cutoff {
				in.forget(now, id, &in.c.expired)
			}
		}
	}
	if in.StateFile != "" && (force || now.Sub(in.lastSave) >= in.saveInterval) {
		in.lastSave = now
		in.save(now, force)
	}
}

// delay returns how long lines may wait to be written now: WriteDelay,
// stretched up to 4 times while more hosts have lines waiting than the
// store keeps logs open, since then nearly every batch costs an open and a
// close; not while half of MaxMemory is in use.
func (in *ingest) delay() time.Duration {
	files := cmpOr(in.Store.MaxOpenFiles, store.DefaultMaxOpenFiles)
	in.mu.Lock()
	n := len(in.counters)
	in.mu.Unlock()
	f := len(in.dirty) * n / files
	if f <= 1 || in.MaxMemory > 0 && in.pending.Load() > in.MaxMemory/2 {
		return in.writeDelay
	}
	return in.writeDelay * time.Duration(min(f, 4))
}

// writeAll writes every waiting line now.
func (in *ingest) writeAll(now time.Time) {
	kept := in.dirty[:0]
	for _, e := range in.dirty {
		if !e.valid() {
			continue
		}
		in.write(now, e.id, false)
		if e.valid() {
			kept = append(kept, e)
		}
	}
	clear(in.dirty[len(kept):])
	in.dirty = kept
}

// shutdown writes out everything held.
func (in *ingest) shutdown(now time.Time) {
	for in.active.Len() > 0 {
		in.shed(now, in.active.Front().Value.(*ident), true)
	}
	in.flush(now, true)
	in.stopWriter()
}

// events turns wire events into log lines.
func (in *ingest) events(now time.Time, id *ident, evs []wire.Event) {
	for i := range evs {
		e := &evs[i]
		switch e.Kind {
		case wire.Message:
			if a, ok := in.announcement(now, id, e.Packet); ok {
				if id.host != a.Host || id.boot != a.Boot || id.fallback {
					in.bind(now, id, a.Host, a.Boot)
				}
			} else if in.limit.rate > 0 && !id.bucket.take(now.UnixNano(), in.limit) {
				in.rateLimited(id, e.Packet.Seq)
				continue
			}
			in.c.messages.Add(1)
			if !e.Packet.Extended {
				in.c.legacy.Add(1)
			}
			in.scratch = logline.AppendMessage(in.scratch[:0], e.Received, e.Packet)
			in.emit(now, id, in.scratch, e)
		case wire.Gap:
			in.c.gaps.Add(1)
			in.c.lost.Add(e.Lost())
			in.noteGap(now, id, e.From, e.To, e.Lost())
		case wire.Duplicate:
			in.c.duplicates.Add(1)
		case wire.Reboot:
			in.c.reboots.Add(1)
			in.note(now, id, fmt.Sprintf("reboot seq=%d expected=%d", e.To, e.From))
			if id.host != "" {
				in.flushIdent(now, id)
				id.prevHost = id.host
				in.unbind(id)
			}
			id.noted = false
		case wire.Dropped:
			in.dropCounter(e.Reason).Add(1)
			in.c.dropByReason[e.Reason].Add(1)
			in.note(now, id, fmt.Sprintf("dropped seq=%d: %s", e.Packet.Seq, e.Reason.Text()))
		}
	}
}

// dropCounter maps the Reason of a wire.Dropped event to its counter.
func (in *ingest) dropCounter(reason wire.DropReason) interface{ Add(uint64) uint64 } {
	switch reason {
	case wire.DropMemory:
		return &in.c.dropMemory
	case wire.DropTimeout, wire.DropDrained, wire.DropReboot:
		return &in.c.dropIncomplete
	case wire.DropTooLarge, wire.DropPendingLimit:
		return &in.c.dropLimit
	}
	return &in.c.dropInvalid
}

// announcement reports whether p binds its sender: a lastgasp
// announcement, or host= and boot= userdata entries (Linux 6.9+), naming a
// host and boot the store accepts from a network the host may use.
func (in *ingest) announcement(now time.Time, id *ident, p wire.Packet) (announce.Announcement, bool) {
	var a announce.Announcement
	ok := false
	if len(p.Dict) > 0 {
		for _, d := range p.Dict {
			if v, found := strings.CutPrefix(d, "host="); found {
				a.Host = v
			} else if v, found := strings.CutPrefix(d, "boot="); found {
				a.Boot = v
			}
		}
		ok = a.Host != "" && a.Boot != ""
		if ok && a.Host == id.host && a.Boot == id.boot {
			return a, true // every message carries it: the common case
		}
	}
	if !ok {
		a, ok = announce.Parse(p.Text)
	}
	if !ok {
		return a, false
	}
	if err := ship.CheckHost(a.Host); err != nil {
		in.c.refused.Add(1)
		in.logf(now, "refused", "receiver: from %s: announcement refused: %v", id.key, err)
		return a, false
	}
	if err := store.CheckBoot(a.Boot); err != nil {
		in.c.refused.Add(1)
		in.logf(now, "refused", "receiver: from %s: announcement of host %s refused: %v", id.key, a.Host, err)
		return a, false
	}
	if a.Host != id.host && a.Host != id.prevHost {
		// A sender is one box: it announces one name for its life
		// (a new boot keeps it). Without a bound, one source could
		// make a directory per datagram.
		if int(id.names) >= in.maxNames {
			in.c.refused.Add(1)
			in.logf(now, "refused", "receiver: from %s: announcement of host %s refused: this sender already announced %d host names", id.key, a.Host, id.names)
			return a, false
		}
	}
	if !pinned(in.Pins, a.Host, id.key.Addr()) {
		in.c.refused.Add(1)
		in.logf(now, "refused", "receiver: from %s: announcement of host %s refused: pinned to other networks", id.key, a.Host)
		return a, false
	}
	return a, true
}

// emit writes a line (ending in a newline) for id, or holds it until id is
// bound. msg, if not nil, is the message the line shows, to be forwarded
// with it.
func (in *ingest) emit(now time.Time, id *ident, line []byte, msg *wire.Event) {
	if id.host != "" {
		in.queue(now, id, line, msg != nil)
		if msg != nil {
			in.forward(id, msg)
		}
		return
	}
	h := id.h
	if h == nil {
		// Only notes come without heavy state; an unbound sender
		// without it has nothing held.
		in.fallback(now, id)
		in.queue(now, id, line, msg != nil)
		return
	}
	if len(h.held) == 0 {
		h.heldSince = now
	}
	hl := heldLine{line: append([]byte(nil), line...)}
	if msg != nil && in.Forward != nil {
		m := *msg
		hl.msg = &m
	}
	h.held = append(h.held, hl)
	h.heldBytes += len(line) + 64
	if len(h.held) > in.announceLines || h.heldBytes > in.announceBytes {
		in.fallback(now, id)
	}
}

// note emits one of the collector's own lines for id.
func (in *ingest) note(now time.Time, id *ident, text string) {
	in.noteLine = logline.AppendNote(in.noteLine[:0], now, text)
	in.emit(now, id, in.noteLine, nil) // emit copies the line
}

// noteGap emits id's "gap seq=FROM-TO lost=N" line, built in place: there
// is one for every loss, and fmt and a string each were 6% of the
// collector's CPU at fleet scale.
func (in *ingest) noteGap(now time.Time, id *ident, from, to, lost uint64) {
	t := append(in.noteText[:0], "gap seq="...)
	t = strconv.AppendUint(t, from, 10)
	t = append(t, '-')
	t = strconv.AppendUint(t, to, 10)
	t = append(t, " lost="...)
	t = strconv.AppendUint(t, lost, 10)
	in.noteText = t
	in.noteLine = logline.AppendNoteBytes(in.noteLine[:0], now, t)
	in.emit(now, id, in.noteLine, nil)
}

// queue appends a line to id's batch.
func (in *ingest) queue(now time.Time, id *ident, line []byte, isMsg bool) {
	o := id.o
	if o == nil {
		o = &outState{}
		id.o = o
	}
	if len(o.out) == 0 {
		o.since = now.UnixNano()
		if o.out == nil {
			select {
			case o.out = <-in.free:
			default:
				o.out = make([]byte, 0, max(1024, 2*len(line)))
			}
		}
	}
	o.out = append(o.out, line...)
	in.pending.Add(int64(len(line)))
	if isMsg {
		o.msgs++
	}
	if !o.inDirty {
		o.inDirty = true
		in.dirty = append(in.dirty, dirtyEntry{id, o})
	}
	if len(o.out) >= in.writeBytes {
		in.write(now, id, false) // a full batch goes now, not at its age
	}
}

// flushIdent writes id's batch now, before its binding changes.
func (in *ingest) flushIdent(now time.Time, id *ident) {
	if id.o != nil && len(id.o.out) > 0 {
		in.write(now, id, true) // the batch carries the old binding
	}
}

// write hands id's batch to the writer goroutine, which writes it with one
// write. Unless block, a full queue leaves the batch with id (still dirty)
// or, over MaxMemory, drops it (Stats.DroppedBacklog).
func (in *ingest) write(now time.Time, id *ident, block bool) {
	o := id.o
	if o == nil {
		return
	}
	o.inDirty = false
	if len(o.out) == 0 && !o.from.IsValid() {
		id.o = nil // its entries on dirty are stale now
		return
	}
	if id.fallback || id.conflict {
		// Addresses are not claimed; a conflict is noted once.
	} else if gen := uint32(in.claims.takeovers.Load()); gen == id.claimGen {
		// No name changed hands since id last looked.
	} else if owner, ok := in.claims.owner(id.host); ok && owner != id.key {
		id.conflict = true
		in.c.conflicts.Add(1)
		in.logf(now, "conflict", "receiver: host %s claimed by %s and %s", id.host, owner, id.key)
		o.out = logline.AppendNote(o.out, now, fmt.Sprintf("host name also claimed by %s; this stream is from %s", owner, id.key))
	} else {
		id.claimGen = gen
	}
	in.startWriter()
	b := batch{host: id.host, boot: id.boot, data: o.out, msgs: o.msgs, from: o.from}
	if block {
		in.wq <- b
	} else {
		select {
		case in.wq <- b:
		default:
			// The store is behind (a burst of new hosts, each a few
			// directory operations, or a slow disk). Keep the lines
			// while memory allows; beyond it, drop and count them.
			if in.MaxMemory <= 0 || in.pending.Load() <= in.MaxMemory {
				o.inDirty = true
				return
			}
			in.c.dropBacklog.Add(uint64(b.msgs))
			in.pending.Add(-int64(len(b.data)))
			in.logf(now, "backlog", "receiver: store behind and memory bound reached: %d messages of %s dropped", b.msgs, id.host)
			if b.from.IsValid() {
				// Keep the binding's record for the next batch.
				id.o = &outState{from: b.from}
				return
			}
		}
	}
	id.o = nil
}

// batch is one host's lines on their way to the store.
type batch struct {
	host, boot string
	data       []byte
	msgs       int
	from       netip.Addr // if valid: host announced boot from here; recorded before data is written
}

// writeQueue is how many batches may wait for the writer of an ingest;
// when it is full, receiving waits (and the socket's buffer, then the
// kernel, drops and counts).
const writeQueue = 4096

// startWriter starts the goroutine that writes an ingest's batches to the
// store, in order. Writing is apart from receiving because the first write
// of a host and boot creates two directories and a file, which on ext4
// takes a few hundred microseconds: 65,536 hosts announcing at once would
// otherwise stall the socket for seconds.
func (in *ingest) startWriter() {
	if in.wq != nil {
		return
	}
	in.wq = make(chan batch, writeQueue)
	in.wdone = make(chan struct{})
	in.free = make(chan []byte, writeQueue)
	go func() {
		defer close(in.wdone)
		var last time.Time
		suppressed := 0
		for b := range in.wq {
			if b.from.IsValid() {
				if err := in.Store.NoteBootFrom(b.host, b.boot, b.from); err != nil {
					in.c.writeErrors.Add(1)
					if in.Logf != nil {
						in.Logf("receiver: %v", err)
					}
				}
			}
			if len(b.data) == 0 {
				continue
			}
			if err := in.Store.Write(b.host, b.boot, b.data); err != nil {
				in.c.writeErrors.Add(1)
				in.c.dropWrite.Add(uint64(b.msgs))
				if now := time.Now(); in.Logf != nil && now.Sub(last) >= time.Second {
					msg := fmt.Sprintf("%v (%d lost)", err, b.msgs)
					if suppressed > 0 {
						msg += fmt.Sprintf(" (%d more errors suppressed)", suppressed)
					}
					in.Logf("receiver: %s", msg)
					last, suppressed = now, 0
				} else {
					suppressed++
				}
			}
			in.pending.Add(-int64(len(b.data)))
			if cap(b.data) <= 4*in.writeBytes {
				select {
				case in.free <- b.data[:0]:
				default:
				}
			}
		}
	}()
}

// stopWriter waits until every batch is written.
func (in *ingest) stopWriter() {
	if in.wq == nil {
		return
	}
	close(in.wq)
	<-in.wdone
	in.wq = nil
}

// writeOut writes id's batch if it has one, and takes id off the dirty
// list.
func (in *ingest) writeOut(now time.Time, id *ident) {
	if id.o == nil {
		return
	}
	if len(id.o.out) > 0 {
		in.write(now, id, true)
	}
	if id.o != nil && id.o.inDirty {
		id.o.inDirty = false
	}
	in.dirty = slices.DeleteFunc(in.dirty, func(d dirtyEntry) bool { return d.id == id })
	id.o = nil
}

func (in *ingest) forward(id *ident, e *wire.Event) {
	if in.Forward == nil {
		return
	}
	in.c.forwarded.Add(1)
	in.Forward(Forwarded{Host: id.host, Boot: id.boot, Message: e.Packet, Received: e.Received})
}

// bind files id's lines under host and boot from now on, starting with the
// lines held so far.
func (in *ingest) bind(now time.Time, id *ident, host, boot string) {
	in.c.announcements.Add(1)
	in.flushIdent(now, id)
	if id.host != "" && id.host != host {
		in.claims.release(id.host, id.key)
	}
	// Copies, not substrings of the announcement's text, which would keep
	// the whole message alive for as long as the identity (and the claim
	// and boot index entries keyed by them).
	if host != id.host && host != id.prevHost && id.names < 255 {
		id.names++
	}
	host, boot = strings.Clone(host), strings.Clone(boot)
	if prev, same := in.claims.claim(host, boot, id.key, now); prev.IsValid() && same {
		in.c.conflicts.Add(1)
		in.logf(now, "conflict", "receiver: host %s boot %s announced by %s, earlier by %s", host, boot, id.key, prev)
	}
	id.host, id.boot, id.prevHost, id.fallback, id.conflict = host, boot, "", false, false
	// The boot index and the boot's "announced" file are written by the
	// writer with the boot's first batch, before its lines; nothing here
	// waits for the disk.
	o := id.o
	if o == nil {
		o = &outState{}
		id.o = o
	}
	o.from = id.key.Addr()
	if !o.inDirty {
		o.since = now.UnixNano()
		o.inDirty = true
		in.dirty = append(in.dirty, dirtyEntry{id, o})
	}
	in.release(now, id)
}

// unbind makes id unbound: its next lines wait for an announcement.
func (in *ingest) unbind(id *ident) {
	in.claims.release(id.host, id.key)
	id.host, id.boot, id.fallback, id.conflict = "", "", false, false
}

// release writes the lines id held while unbound.
func (in *ingest) release(now time.Time, id *ident) {
	h := id.h
	if h == nil || len(h.held) == 0 {
		return
	}
	for _, hl := range h.held {
		in.queue(now, id, hl.line, hl.msg != nil)
		if hl.msg != nil {
			in.forward(id, hl.msg)
		}
	}
	clear(h.held)
	h.held, h.heldBytes = h.held[:0], 0
}

// fallback binds id, which has not announced itself, to its IP address (or
// its host before a reboot) and UnknownBoot. The "no announcement" line is
// written once per sender and boot.
func (in *ingest) fallback(now time.Time, id *ident) {
	addr, ip := sourceName(id.key)
	host := id.prevHost
	if host == "" {
		host = ip
	}
	id.host, id.boot, id.fallback = host, "", true
	if !id.noted {
		id.noted = true
		in.c.noAnnouncement.Add(1)
		in.queue(now, id, logline.AppendNote(nil, now, "no announcement from "+addr), false)
	}
	in.release(now, id)
}

// rateLimited counts a message of id dropped by the rate limit.
func (in *ingest) rateLimited(id *ident, seq uint64) {
	in.c.rateLimited.Add(1)
	l := id.l
	if l == nil {
		l = &limitState{}
		id.l = l
	}
	if l.n == 0 {
		l.first = seq
	}
	l.n++
	l.unpublished++
	l.last = seq
	if !l.inList {
		l.inList = true
		in.limitedIDs = append(in.limitedIDs, id)
	}
}

// publishLimited adds id's rate-limited messages to the per-host totals
// that /metrics shows, every flush (not only with the log's note, every
// RateNoteInterval).
func (in *ingest) publishLimited(id *ident) {
	l := id.l
	if l == nil || l.unpublished == 0 {
		return
	}
	host := id.host
	if host == "" {
		_, host = sourceName(id.key)
	}
	in.rateTop.add(host, l.unpublished)
	l.unpublished = 0
}

// noteLimited writes id's "rate-limited" line if one is due (or force) and
// reports whether id has nothing left to note.
func (in *ingest) noteLimited(now time.Time, id *ident, force bool) bool {
	l := id.l
	if l == nil {
		return true
	}
	if l.n == 0 {
		l.inList = false
		return true
	}
	if !force && now.UnixNano()-l.noted < int64(in.noteInterval) {
		return false
	}
	in.publishLimited(id)
	in.note(now, id, fmt.Sprintf("rate-limited %d messages seq=%d-%d (limit %g/s, burst %g)", l.n, l.first, l.last, in.limit.rate, in.limit.burst))
	l.n, l.noted, l.inList = 0, now.UnixNano(), false
	return true
}
