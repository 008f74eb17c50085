package receiver

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lastgasp/lastgasp/netconsole/announce"
	"github.com/lastgasp/lastgasp/netconsole/wire"
	"github.com/lastgasp/lastgasp/pstore/ship"
	"github.com/lastgasp/lastgasp/store"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// Defaults used for zero Server fields.
const (
	DefaultAnnounceTimeout = 2 * time.Second
	DefaultAnnounceLines   = 256
	DefaultAnnounceBytes   = 256 << 10
	DefaultMaxSources      = 1024
	DefaultFlushInterval   = 100 * time.Millisecond
	DefaultBatchSize       = 32
	DefaultDatagramSize    = 16 << 10
)

// maxShedPerDatagram bounds the senders shed after one datagram when the
// Server's memory bound is exceeded, so that one datagram costs bounded work.
const maxShedPerDatagram = 16

// Server receives netconsole datagrams and files them in a Store. Set Store;
// the other fields are optional and must not change once serving started.
// Stats may be called at any time. Serve may run on several sockets at once
// (see ServeConns); each call keeps its own sender state, so a sender's
// datagrams must all arrive on one socket, as they do with SO_REUSEPORT.
type Server struct {
	// Store receives the log lines.
	Store *store.Store
	// Logf, if set, reports problems (malformed datagrams, write errors),
	// at most once a second for each kind and Serve call.
	Logf func(format string, args ...any)
	// Config configures each sender's wire.Host.
	Config wire.Config
	// AnnounceTimeout is how long lines from a sender that has not
	// announced itself are held before they are filed under its IP
	// address and UnknownBoot. Zero means DefaultAnnounceTimeout.
	AnnounceTimeout time.Duration
	// AnnounceLines and AnnounceBytes bound the lines held per sender
	// while waiting for an announcement; when exceeded the lines are filed
	// as on timeout. Zero means DefaultAnnounceLines and
	// DefaultAnnounceBytes.
	AnnounceLines, AnnounceBytes int
	// MaxSources bounds the senders (UDP source addresses) tracked by
	// each Serve call; when full, the one heard from least recently is
	// drained and forgotten. Zero means DefaultMaxSources.
	MaxSources int
	// MaxMemory bounds the bytes held for all senders of all Serve calls
	// together: fragments being reassembled, messages waiting in reorder
	// windows and lines waiting for an announcement, as accounted by
	// wire.Host.PendingBytes plus the held lines. When a datagram takes
	// the total over the bound, its sender (then up to 15 other senders
	// heard from least recently) is shed: incomplete messages are dropped
	// and counted (Stats.DroppedMemory), held messages are written past
	// their gaps and held lines are filed as on announcement timeout.
	// Zero means no bound beyond the per-sender Config.MaxPendingBytes.
	MaxMemory int64
	// FlushInterval is how often held data is checked for timeouts and
	// buffered log lines are written to their files. Zero means
	// DefaultFlushInterval.
	FlushInterval time.Duration
	// BatchSize is how many datagrams one read system call (recvmmsg)
	// may return. Zero means DefaultBatchSize.
	BatchSize int
	// DatagramSize is the read buffer per datagram; longer datagrams are
	// counted as truncated and dropped. Zero means DefaultDatagramSize
	// (netconsole sends at most about 1100 bytes).
	DatagramSize int
	// Sockets and ReadBuffer are what ListenAndServe passes to ListenUDP:
	// how many SO_REUSEPORT sockets to read (zero means one) and their
	// receive buffer size in bytes (zero leaves the system default).
	Sockets, ReadBuffer int
	// Forward, if set, is called with every message as it is written to
	// the store, from the receive goroutines. It must not block and must
	// not keep the Forwarded after it returns.
	Forward func(Forwarded)

	pending atomic.Int64 // bytes held by all ingests, for MaxMemory

	mu       sync.Mutex
	counters []*counters // one per Serve call, never removed
}

// Forwarded is one stored message, as passed to Server.Forward.
type Forwarded struct {
	// Host and Boot are the names the message is filed under; Boot is ""
	// when the boot is unknown.
	Host, Boot string
	// Message is the complete message.
	Message wire.Packet
	// Received is when its (last) datagram arrived.
	Received time.Time
}

// counters are one Serve call's statistics, kept apart so that receive
// goroutines do not share cache lines.
type counters struct {
	datagrams, messages, legacy, malformed, truncated  atomic.Uint64
	gaps, lost, duplicates, reboots                    atomic.Uint64
	dropIncomplete, dropLimit, dropInvalid, dropMemory atomic.Uint64
	announcements, writeErrors, evictions, forwarded   atomic.Uint64
	sources                                            atomic.Int64
	dropByReason                                       [256]atomic.Uint64 // by wire.DropReason
	_                                                  [64]byte
}

// Stats counts what a Server has received since it was created.
type Stats struct {
	// Datagrams is every datagram read.
	Datagrams uint64
	// Messages is the complete messages (legacy datagrams included)
	// written or held for writing.
	Messages uint64
	// Legacy is the part of Messages that came without extended headers.
	Legacy uint64
	// Malformed is the datagrams wire.Parse rejected.
	Malformed uint64
	// Truncated is the datagrams longer than Server.DatagramSize, dropped.
	Truncated uint64
	// Gaps is the gap events; Lost is the sequence numbers they cover.
	Gaps, Lost uint64
	// Duplicates is the datagrams received twice.
	Duplicates uint64
	// Reboots is the sequence restarts seen.
	Reboots uint64
	// Dropped is the messages given up on, the sum of the four reasons
	// below.
	Dropped uint64
	// DroppedIncomplete is fragmented messages that timed out or were
	// incomplete when their sender was drained (reboot, eviction,
	// shutdown).
	DroppedIncomplete uint64
	// DroppedLimit is messages dropped by the per-sender bound
	// (wire.Config.MaxPendingBytes).
	DroppedLimit uint64
	// DroppedInvalid is fragments and messages dropped because they
	// contradict others of the same sequence number or are out of range.
	DroppedInvalid uint64
	// DroppedMemory is incomplete messages dropped by Server.MaxMemory.
	DroppedMemory uint64
	// DroppedByReason breaks Dropped down by wire.DropReason (every
	// reason in wire.DropReasons has an entry).
	DroppedByReason map[wire.DropReason]uint64
	// Announcements is the lastgasp announcements that bound a sender.
	Announcements uint64
	// WriteErrors is the failed appends to the Store.
	WriteErrors uint64
	// Evictions is the senders forgotten to stay within MaxSources.
	Evictions uint64
	// Forwarded is the messages passed to Server.Forward.
	Forwarded uint64
	// Sources is the senders currently tracked (a gauge).
	Sources int64
	// PendingBytes is the bytes currently held, as bounded by MaxMemory
	// (a gauge).
	PendingBytes int64
}

// Stats returns the Server's counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	cs := s.counters
	s.mu.Unlock()
	st := Stats{DroppedByReason: make(map[wire.DropReason]uint64, len(wire.DropReasons))}
	for _, r := range wire.DropReasons {
		st.DroppedByReason[r] = 0
	}
	for _, c := range cs {
		for _, r := range wire.DropReasons {
			st.DroppedByReason[r] += c.dropByReason[r].Load()
		}
		st.Datagrams += c.datagrams.Load()
		st.Messages += c.messages.Load()
		st.Legacy += c.legacy.Load()
		st.Malformed += c.malformed.Load()
		st.Truncated += c.truncated.Load()
		st.Gaps += c.gaps.Load()
		st.Lost += c.lost.Load()
		st.Duplicates += c.duplicates.Load()
		st.Reboots += c.reboots.Load()
		st.DroppedIncomplete += c.dropIncomplete.Load()
		st.DroppedLimit += c.dropLimit.Load()
		st.DroppedInvalid += c.dropInvalid.Load()
		st.DroppedMemory += c.dropMemory.Load()
		st.Announcements += c.announcements.Load()
		st.WriteErrors += c.writeErrors.Load()
		st.Evictions += c.evictions.Load()
		st.Forwarded += c.forwarded.Load()
		st.Sources += c.sources.Load()
	}
	st.Dropped = st.DroppedIncomplete + st.DroppedLimit + st.DroppedInvalid + st.DroppedMemory
	st.PendingBytes = s.pending.Load()
	return st
}

// Serve reads datagrams from conn until ctx is done, then closes conn,
// writes out everything still held and returns nil. It returns an error if
// reading fails for another reason, after writing out what it holds. Each
// call keeps its own sender state; conn is typically one of the sockets
// ListenUDP returns. On a *net.UDPConn, Serve reads up to BatchSize
// datagrams per system call (recvmmsg).
func (s *Server) Serve(ctx context.Context, conn net.PacketConn) error {
	if s.Store == nil {
		return errors.New("receiver: server has no store")
	}
	in := s.newIngest()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	r := newBatchReader(conn, cmpOr(s.BatchSize, DefaultBatchSize), cmpOr(s.DatagramSize, DefaultDatagramSize))
	next := time.Now().Add(in.flushInterval)
	conn.SetReadDeadline(next)
	for {
		n, err := r.read()
		now := time.Now()
		for i := range n {
			m := &r.msgs[i]
			if m.Addr != nil {
				in.datagram(now, m.Addr, m.Buffers[0][:m.N], m.Flags&msgTrunc != 0)
			}
		}
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			in.shutdown(now)
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("receiver: read: %w", err)
		}
		if !now.Before(next) {
			in.flush(now)
			next = now.Add(in.flushInterval)
			conn.SetReadDeadline(next)
		}
	}
}

// ServeConns calls Serve on each conn concurrently until ctx is done or one
// of them fails; then it stops the others and returns the first error.
func (s *Server) ServeConns(ctx context.Context, conns ...net.PacketConn) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, len(conns))
	for _, c := range conns {
		go func() { errc <- s.Serve(ctx, c) }()
	}
	var first error
	for range conns {
		if err := <-errc; err != nil && first == nil {
			first = err
			cancel()
		}
	}
	return first
}

// ListenAndServe listens on the UDP address addr (such as ":6666", which
// takes IPv4 and IPv6) with ListenUDP(addr, s.Sockets, s.ReadBuffer) and
// calls ServeConns.
func (s *Server) ListenAndServe(ctx context.Context, addr string) error {
	conns, err := ListenUDP(addr, s.Sockets, s.ReadBuffer)
	if err != nil {
		return err
	}
	pcs := make([]net.PacketConn, len(conns))
	for i, c := range conns {
		pcs[i] = c
	}
	return s.ServeConns(ctx, pcs...)
}

// batchReader reads datagrams in batches: recvmmsg on UDP sockets, one
// ReadFrom at a time otherwise.
type batchReader struct {
	conn  net.PacketConn
	batch interface {
		ReadBatch([]ipv4.Message, int) (int, error)
	}
	msgs []ipv4.Message
}

func newBatchReader(conn net.PacketConn, n, size int) *batchReader {
	r := &batchReader{conn: conn}
	if uc, ok := conn.(*net.UDPConn); ok {
		if la, ok := uc.LocalAddr().(*net.UDPAddr); ok && la.IP.To4() == nil {
			r.batch = ipv6.NewPacketConn(uc)
		} else {
			r.batch = ipv4.NewPacketConn(uc)
		}
	} else {
		n = 1
	}
	r.msgs = make([]ipv4.Message, n)
	for i := range r.msgs {
		r.msgs[i].Buffers = [][]byte{make([]byte, size)}
	}
	return r
}

func (r *batchReader) read() (int, error) {
	if r.batch != nil {
		return r.batch.ReadBatch(r.msgs, 0)
	}
	m := &r.msgs[0]
	n, addr, err := r.conn.ReadFrom(m.Buffers[0])
	m.N, m.Addr, m.Flags = n, addr, 0
	if n == 0 && addr == nil {
		return 0, err
	}
	return 1, err
}

// ingest is the state of one Serve call.
type ingest struct {
	*Server
	c               *counters
	announceTimeout time.Duration
	announceLines   int
	announceBytes   int
	maxSources      int
	flushInterval   time.Duration

	sources map[netip.AddrPort]*list.Element // source address -> element holding *source
	lru     list.List                        // most recently heard first
	limits  map[string]*rateLimit
	scratch []byte // formatting buffer
}

// source is one sender, keyed by UDP source address.
type source struct {
	key  netip.AddrPort
	addr string // ip:port
	ip   string
	host *wire.Host
	cost int64 // bytes counted in Server.pending

	bound    bool   // lines go straight to the store
	hostName string // when bound
	boot     string // when bound; "" for UnknownBoot
	path     string // the log file, when bound
	prevHost string // host name before a reboot unbound the source

	held      []heldLine // lines waiting for an announcement
	heldBytes int
	heldSince time.Time
}

// heldLine is a log line waiting for its sender to be bound, with the
// message it came from (to forward) if any.
type heldLine struct {
	line string
	msg  *wire.Event
}

type rateLimit struct {
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
		maxSources:      cmpOr(s.MaxSources, DefaultMaxSources),
		flushInterval:   cmpOr(s.FlushInterval, DefaultFlushInterval),
		sources:         make(map[netip.AddrPort]*list.Element),
		limits:          make(map[string]*rateLimit),
	}
	s.mu.Lock()
	s.counters = append(s.counters, in.c)
	s.mu.Unlock()
	return in
}

// cmpOr returns v if it is positive, def otherwise.
func cmpOr[T int | time.Duration](v, def T) T {
	if v > 0 {
		return v
	}
	return def
}

// logf logs at most once a second per kind, counting what it suppresses.
func (in *ingest) logf(now time.Time, kind, format string, args ...any) {
	if in.Logf == nil {
		return
	}
	l := in.limits[kind]
	if l == nil {
		l = &rateLimit{}
		in.limits[kind] = l
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

func (in *ingest) datagram(now time.Time, addr net.Addr, b []byte, truncated bool) {
	in.c.datagrams.Add(1)
	if truncated {
		in.c.truncated.Add(1)
		in.logf(now, "truncated", "receiver: from %s: datagram longer than %d bytes dropped", addr, len(b))
		return
	}
	p, err := wire.Parse(b)
	if err != nil {
		in.c.malformed.Add(1)
		in.logf(now, "malformed", "receiver: from %s: %v", addr, err)
		return
	}
	src := in.source(now, addr)
	in.events(now, src, src.host.Feed(p, now))
	in.account(now, src)
}

// account updates the memory held for src and enforces Server.MaxMemory.
func (in *ingest) account(now time.Time, src *source) {
	in.recost(src)
	if in.MaxMemory <= 0 || in.pending.Load() <= in.MaxMemory {
		return
	}
	in.shed(now, src)
	n := 1
	for e := in.lru.Back(); e != nil && n < maxShedPerDatagram && in.pending.Load() > in.MaxMemory; e = e.Prev() {
		if o := e.Value.(*source); o != src && o.cost > 0 {
			in.shed(now, o)
			n++
		}
	}
}

// recost brings src's share of Server.pending up to date.
func (in *ingest) recost(src *source) {
	cost := int64(src.host.PendingBytes() + src.heldBytes)
	if d := cost - src.cost; d != 0 {
		in.pending.Add(d)
		src.cost = cost
	}
}

// shed frees what src holds: see Server.MaxMemory.
func (in *ingest) shed(now time.Time, src *source) {
	in.events(now, src, src.host.Shed(now))
	if !src.bound && len(src.held) > 0 {
		in.fallback(now, src)
	}
	in.recost(src)
}

// source returns the state for addr, making room for it if needed.
func (in *ingest) source(now time.Time, addr net.Addr) *source {
	var key netip.AddrPort
	if ua, ok := addr.(*net.UDPAddr); ok {
		key = ua.AddrPort()
	} else if ap, err := netip.ParseAddrPort(addr.String()); err == nil {
		key = ap
	} else {
		// Not an IP address: key by a hash-free stand-in, its string
		// form in a zone of the unspecified address.
		key = netip.AddrPortFrom(netip.IPv6Unspecified().WithZone(addr.String()), 0)
	}
	key = netip.AddrPortFrom(key.Addr().Unmap(), key.Port())
	if e, ok := in.sources[key]; ok {
		in.lru.MoveToFront(e)
		return e.Value.(*source)
	}
	for len(in.sources) >= in.maxSources {
		old := in.lru.Back().Value.(*source)
		in.forget(now, old)
		in.c.evictions.Add(1)
	}
	src := &source{key: key, host: wire.NewHost(in.Config)}
	if key.Addr().Zone() != "" && key.Port() == 0 && key.Addr().IsUnspecified() {
		src.addr, src.ip = key.Addr().Zone(), key.Addr().Zone()
	} else {
		src.addr, src.ip = key.String(), key.Addr().String()
	}
	in.sources[key] = in.lru.PushFront(src)
	in.c.sources.Add(1)
	return src
}

// forget drains src to the store and drops its state.
func (in *ingest) forget(now time.Time, src *source) {
	in.events(now, src, src.host.Drain(now))
	if !src.bound {
		in.fallback(now, src)
	}
	in.pending.Add(-src.cost)
	src.cost = 0
	in.lru.Remove(in.sources[src.key])
	delete(in.sources, src.key)
	in.c.sources.Add(-1)
}

// flush runs timeouts (held wire data and held unannounced lines) and writes
// buffered log lines to their files.
func (in *ingest) flush(now time.Time) {
	for e := in.lru.Front(); e != nil; e = e.Next() {
		src := e.Value.(*source)
		in.events(now, src, src.host.Flush(now))
		if !src.bound && len(src.held) > 0 && now.Sub(src.heldSince) >= in.announceTimeout {
			in.fallback(now, src)
		}
		in.recost(src)
	}
	if err := in.Store.Flush(); err != nil {
		in.c.writeErrors.Add(1)
		in.logf(now, "write", "%v", err)
	}
}

// shutdown writes out everything held.
func (in *ingest) shutdown(now time.Time) {
	for in.lru.Len() > 0 {
		in.forget(now, in.lru.Front().Value.(*source))
	}
	if err := in.Store.Flush(); err != nil {
		in.c.writeErrors.Add(1)
		in.logf(now, "write", "%v", err)
	}
}

// dropCounter maps the Reason of a wire.Dropped event to its counter.
func (in *ingest) dropCounter(reason wire.DropReason) *atomic.Uint64 {
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

// events turns wire events into log lines.
func (in *ingest) events(now time.Time, src *source, evs []wire.Event) {
	for i := range evs {
		e := &evs[i]
		switch e.Kind {
		case wire.Message:
			in.c.messages.Add(1)
			if !e.Packet.Extended {
				in.c.legacy.Add(1)
			}
			if host, boot, ok := parseAnnouncement(e.Packet); ok {
				if !src.bound || src.hostName != host || src.boot != boot {
					in.c.announcements.Add(1)
					in.bind(now, src, host, boot)
				}
			}
			in.message(now, src, e)
		case wire.Gap:
			in.c.gaps.Add(1)
			in.c.lost.Add(e.Lost())
			in.emit(now, src, fmt.Appendf(in.scratch[:0], "%s lastgaspd: gap seq=%d-%d lost=%d", stamp(now), e.From, e.To, e.Lost()), nil)
		case wire.Duplicate:
			in.c.duplicates.Add(1)
		case wire.Reboot:
			in.c.reboots.Add(1)
			in.emit(now, src, fmt.Appendf(in.scratch[:0], "%s lastgaspd: reboot seq=%d expected=%d", stamp(now), e.To, e.From), nil)
			if src.bound {
				src.prevHost = src.hostName
				src.bound, src.hostName, src.boot, src.path = false, "", "", ""
			}
		case wire.Dropped:
			in.dropCounter(e.Reason).Add(1)
			in.c.dropByReason[e.Reason].Add(1)
			in.emit(now, src, fmt.Appendf(in.scratch[:0], "%s lastgaspd: dropped seq=%d: %s", stamp(now), e.Packet.Seq, e.Reason.Text()), nil)
		}
	}
}

// message formats a delivered message as log lines and emits them.
func (in *ingest) message(now time.Time, src *source, e *wire.Event) {
	p := e.Packet
	if p.Extended {
		b := e.Received.UTC().AppendFormat(in.scratch[:0], time.RFC3339Nano)
		b = append(b, ' ')
		b = strconv.AppendInt(b, int64(p.Level), 10)
		b = append(b, " seq="...)
		b = strconv.AppendUint(b, p.Seq, 10)
		b = append(b, " ts="...)
		b = strconv.AppendUint(b, p.TimestampUsec/1e6, 10)
		b = append(b, '.')
		us := p.TimestampUsec % 1e6
		for d := uint64(100000); d > 1 && us < d; d /= 10 {
			b = append(b, '0')
		}
		b = strconv.AppendUint(b, us, 10)
		b = append(b, ' ')
		b = append(b, wire.Sanitize(p.Text)...)
		in.scratch = b
		in.emit(now, src, b, e)
		return
	}
	text := strings.TrimSuffix(p.Text, "\n")
	first := true
	for l := range strings.SplitSeq(text, "\n") {
		b := e.Received.UTC().AppendFormat(in.scratch[:0], time.RFC3339Nano)
		b = append(b, " - - - "...)
		b = append(b, wire.Sanitize(strings.TrimSuffix(l, "\r"))...)
		in.scratch = b
		if first {
			in.emit(now, src, b, e)
			first = false
		} else {
			in.emit(now, src, b, nil)
		}
	}
}

// emit writes a line for src, or holds it until src is bound. msg, if
// not nil, is the message the line shows, to be forwarded with it.
func (in *ingest) emit(now time.Time, src *source, line []byte, msg *wire.Event) {
	if src.bound {
		in.write(now, src, line)
		if msg != nil {
			in.forward(src, msg)
		}
		return
	}
	if len(src.held) == 0 {
		src.heldSince = now
	}
	h := heldLine{line: string(line)}
	if msg != nil && in.Forward != nil {
		m := *msg
		h.msg = &m
	}
	src.held = append(src.held, h)
	src.heldBytes += len(line) + 64
	if len(src.held) > in.announceLines || src.heldBytes > in.announceBytes {
		in.fallback(now, src)
	}
}

func (in *ingest) forward(src *source, e *wire.Event) {
	if in.Forward == nil {
		return
	}
	in.c.forwarded.Add(1)
	in.Forward(Forwarded{Host: src.hostName, Boot: src.boot, Message: e.Packet, Received: e.Received})
}

// bind files src's lines under host and boot from now on, starting with
// the lines held so far.
func (in *ingest) bind(now time.Time, src *source, host, boot string) {
	src.bound, src.hostName, src.boot, src.prevHost = true, host, boot, ""
	src.path = in.Store.Path(host, boot)
	in.Store.NoteBoot(host, boot)
	held := src.held
	src.held, src.heldBytes = nil, 0
	if len(held) == 0 {
		return
	}
	lines := make([]string, len(held))
	for i, h := range held {
		lines[i] = h.line
	}
	in.writeLines(now, src, lines...)
	for _, h := range held {
		if h.msg != nil {
			in.forward(src, h.msg)
		}
	}
}

// fallback binds src, which has not announced itself, to its IP address
// (or its host before a reboot) and UnknownBoot.
func (in *ingest) fallback(now time.Time, src *source) {
	host := src.prevHost
	if host == "" {
		host = src.ip
	}
	note := fmt.Sprintf("%s lastgaspd: no announcement from %s", stamp(now), src.addr)
	src.held = append([]heldLine{{line: note}}, src.held...)
	in.bind(now, src, host, "")
}

func (in *ingest) write(now time.Time, src *source, line []byte) {
	if err := in.Store.AppendLine(src.path, line); err != nil {
		in.c.writeErrors.Add(1)
		in.logf(now, "write", "%v", err)
	}
}

func (in *ingest) writeLines(now time.Time, src *source, lines ...string) {
	if in.Store.Root == "" {
		in.c.writeErrors.Add(1)
		in.logf(now, "write", "receiver: store root not set")
		return
	}
	if err := in.Store.AppendPath(src.path, lines...); err != nil {
		in.c.writeErrors.Add(1)
		in.logf(now, "write", "%v", err)
	}
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// parseAnnouncement reports whether p is a lastgasp announcement naming a
// host and boot the store accepts, and returns them.
func parseAnnouncement(p wire.Packet) (host, boot string, ok bool) {
	a, ok := announce.Parse(p.Text)
	if !ok || ship.CheckHost(a.Host) != nil || store.CheckBoot(a.Boot) != nil {
		return "", "", false
	}
	return a.Host, a.Boot, true
}
