package receiver

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/lastgasp/lastgasp/netconsole/wire"
)

// Defaults used for zero Server fields.
const (
	DefaultAnnounceTimeout = 2 * time.Second
	DefaultAnnounceLines   = 256
	DefaultAnnounceBytes   = 256 << 10
	DefaultMaxSources      = 1024
	DefaultFlushInterval   = 100 * time.Millisecond
)

// AnnouncePrefix starts the kernel log line with which the lastgasp agent
// binds its netconsole stream to a host and boot: the rest of the line holds
// space-separated key=value tokens, among them host=<name> and boot=<id>.
const AnnouncePrefix = "lastgasp: "

// maxDatagram is the largest UDP payload.
const maxDatagram = 64 << 10

// Server receives netconsole datagrams and files them in a Store. Set Store;
// the other fields are optional. Stats may be called at any time.
type Server struct {
	// Store receives the log lines.
	Store *Store
	// Logf, if set, reports problems (malformed datagrams, write errors),
	// at most once a second for each kind.
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
	// MaxSources bounds the senders (UDP source addresses) tracked; when
	// full, the one heard from least recently is drained and forgotten.
	// Zero means DefaultMaxSources.
	MaxSources int
	// FlushInterval is how often held data is checked for timeouts. Zero
	// means DefaultFlushInterval.
	FlushInterval time.Duration

	datagrams, messages, malformed                    atomic.Uint64
	gaps, lost, duplicates, reboots, dropped          atomic.Uint64
	writeErrors, evictions, announcements, legacyMsgs atomic.Uint64
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
	// Gaps is the gap events; Lost is the sequence numbers they cover.
	Gaps, Lost uint64
	// Duplicates is the datagrams received twice.
	Duplicates uint64
	// Reboots is the sequence restarts seen.
	Reboots uint64
	// Dropped is the messages given up on (incomplete or over limits).
	Dropped uint64
	// Announcements is the lastgasp announcements that bound a sender.
	Announcements uint64
	// WriteErrors is the failed appends to the Store.
	WriteErrors uint64
	// Evictions is the senders forgotten to stay within MaxSources.
	Evictions uint64
}

// Stats returns the Server's counters.
func (s *Server) Stats() Stats {
	return Stats{
		Datagrams:     s.datagrams.Load(),
		Messages:      s.messages.Load(),
		Legacy:        s.legacyMsgs.Load(),
		Malformed:     s.malformed.Load(),
		Gaps:          s.gaps.Load(),
		Lost:          s.lost.Load(),
		Duplicates:    s.duplicates.Load(),
		Reboots:       s.reboots.Load(),
		Dropped:       s.dropped.Load(),
		Announcements: s.announcements.Load(),
		WriteErrors:   s.writeErrors.Load(),
		Evictions:     s.evictions.Load(),
	}
}

// Serve reads datagrams from conn until ctx is done, then closes conn,
// writes out everything still held and returns nil. It returns an error if
// reading fails for another reason, after writing out what it holds. Each
// call keeps its own sender state; conn is typically
// net.ListenPacket("udp", ":6666").
func (s *Server) Serve(ctx context.Context, conn net.PacketConn) error {
	if s.Store == nil {
		return errors.New("receiver: server has no store")
	}
	in := s.newIngest()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	buf := make([]byte, maxDatagram)
	next := time.Now().Add(in.flushInterval)
	conn.SetReadDeadline(next)
	for {
		n, addr, err := conn.ReadFrom(buf)
		now := time.Now()
		if n > 0 && addr != nil {
			in.datagram(now, addr, buf[:n])
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

// ListenAndServe listens on the UDP address addr (such as ":6666") and
// calls Serve.
func (s *Server) ListenAndServe(ctx context.Context, addr string) error {
	conn, err := net.ListenPacket("udp", addr)
	if err != nil {
		return fmt.Errorf("receiver: %w", err)
	}
	return s.Serve(ctx, conn)
}

// ingest is the state of one Serve call.
type ingest struct {
	*Server
	announceTimeout time.Duration
	announceLines   int
	announceBytes   int
	maxSources      int
	flushInterval   time.Duration

	sources map[string]*list.Element // source address -> element holding *source
	lru     list.List                // most recently heard first
	limits  map[string]*rateLimit
}

// source is one sender, keyed by UDP source address.
type source struct {
	addr string // ip:port
	ip   string
	host *wire.Host

	bound    bool   // lines go straight to the store
	hostName string // when bound
	boot     string // when bound; "" for UnknownBoot
	prevHost string // host name before a reboot unbound the source

	held      []string // lines waiting for an announcement
	heldBytes int
	heldSince time.Time
}

type rateLimit struct {
	last       time.Time
	suppressed int
}

func (s *Server) newIngest() *ingest {
	in := &ingest{
		Server:          s,
		announceTimeout: cmpOr(s.AnnounceTimeout, DefaultAnnounceTimeout),
		announceLines:   cmpOr(s.AnnounceLines, DefaultAnnounceLines),
		announceBytes:   cmpOr(s.AnnounceBytes, DefaultAnnounceBytes),
		maxSources:      cmpOr(s.MaxSources, DefaultMaxSources),
		flushInterval:   cmpOr(s.FlushInterval, DefaultFlushInterval),
		sources:         make(map[string]*list.Element),
		limits:          make(map[string]*rateLimit),
	}
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

func (in *ingest) datagram(now time.Time, addr net.Addr, b []byte) {
	in.datagrams.Add(1)
	p, err := wire.Parse(b)
	if err != nil {
		in.malformed.Add(1)
		in.logf(now, "malformed", "receiver: from %s: %v", addr, err)
		return
	}
	src := in.source(now, addr)
	in.events(now, src, src.host.Feed(p, now))
}

// source returns the state for addr, making room for it if needed.
func (in *ingest) source(now time.Time, addr net.Addr) *source {
	key := addr.String()
	if e, ok := in.sources[key]; ok {
		in.lru.MoveToFront(e)
		return e.Value.(*source)
	}
	for len(in.sources) >= in.maxSources {
		old := in.lru.Back().Value.(*source)
		in.forget(now, old)
		in.evictions.Add(1)
	}
	ip := key
	if ua, ok := addr.(*net.UDPAddr); ok {
		ip = ua.IP.String()
	} else if h, _, err := net.SplitHostPort(key); err == nil {
		ip = h
	}
	src := &source{addr: key, ip: ip, host: wire.NewHost(in.Config)}
	in.sources[key] = in.lru.PushFront(src)
	return src
}

// forget drains src to the store and drops its state.
func (in *ingest) forget(now time.Time, src *source) {
	in.events(now, src, src.host.Drain(now))
	if !src.bound {
		in.fallback(now, src)
	}
	in.lru.Remove(in.sources[src.addr])
	delete(in.sources, src.addr)
}

// flush runs timeouts: held wire data and held unannounced lines.
func (in *ingest) flush(now time.Time) {
	for e := in.lru.Front(); e != nil; e = e.Next() {
		src := e.Value.(*source)
		in.events(now, src, src.host.Flush(now))
		if !src.bound && len(src.held) > 0 && now.Sub(src.heldSince) >= in.announceTimeout {
			in.fallback(now, src)
		}
	}
}

// shutdown writes out everything held.
func (in *ingest) shutdown(now time.Time) {
	for in.lru.Len() > 0 {
		in.forget(now, in.lru.Front().Value.(*source))
	}
}

// events turns wire events into log lines.
func (in *ingest) events(now time.Time, src *source, evs []wire.Event) {
	for _, e := range evs {
		switch e.Kind {
		case wire.Message:
			in.messages.Add(1)
			if !e.Packet.Extended {
				in.legacyMsgs.Add(1)
			}
			if host, boot, ok := parseAnnouncement(e.Packet); ok {
				if !src.bound || src.hostName != host || src.boot != boot {
					in.announcements.Add(1)
					in.bind(now, src, host, boot)
				}
			}
			in.emit(now, src, messageLines(e)...)
		case wire.Gap:
			in.gaps.Add(1)
			in.lost.Add(e.Lost())
			in.emit(now, src, fmt.Sprintf("%s lastgaspd: gap seq=%d-%d lost=%d", stamp(now), e.From, e.To, e.Lost()))
		case wire.Duplicate:
			in.duplicates.Add(1)
		case wire.Reboot:
			in.reboots.Add(1)
			in.emit(now, src, fmt.Sprintf("%s lastgaspd: reboot seq=%d expected=%d", stamp(now), e.To, e.From))
			if src.bound {
				src.prevHost = src.hostName
				src.bound, src.hostName, src.boot = false, "", ""
			}
		case wire.Dropped:
			in.dropped.Add(1)
			in.emit(now, src, fmt.Sprintf("%s lastgaspd: dropped seq=%d: %s", stamp(now), e.Packet.Seq, e.Reason))
		}
	}
}

// emit writes lines for src, or holds them until it is bound.
func (in *ingest) emit(now time.Time, src *source, lines ...string) {
	if src.bound {
		in.write(now, src.hostName, src.boot, lines)
		return
	}
	if len(src.held) == 0 {
		src.heldSince = now
	}
	for _, l := range lines {
		src.held = append(src.held, l)
		src.heldBytes += len(l)
	}
	if len(src.held) > in.announceLines || src.heldBytes > in.announceBytes {
		in.fallback(now, src)
	}
}

// bind files src's lines under host and boot from now on, starting with
// the lines held so far.
func (in *ingest) bind(now time.Time, src *source, host, boot string) {
	src.bound, src.hostName, src.boot, src.prevHost = true, host, boot, ""
	held := src.held
	src.held, src.heldBytes = nil, 0
	in.write(now, host, boot, held)
}

// fallback binds src, which has not announced itself, to its IP address
// (or its host before a reboot) and UnknownBoot.
func (in *ingest) fallback(now time.Time, src *source) {
	host := src.prevHost
	if host == "" {
		host = src.ip
	}
	note := fmt.Sprintf("%s lastgaspd: no announcement from %s", stamp(now), src.addr)
	src.held = append([]string{note}, src.held...)
	in.bind(now, src, host, "")
}

func (in *ingest) write(now time.Time, host, boot string, lines []string) {
	if err := in.Store.Append(host, boot, lines...); err != nil {
		in.writeErrors.Add(1)
		in.logf(now, "write", "%v", err)
	}
}

// messageLines formats a delivered message as log lines.
func messageLines(e wire.Event) []string {
	p, t := e.Packet, stamp(e.Received)
	if p.Extended {
		return []string{fmt.Sprintf("%s %d seq=%d ts=%d.%06d %s", t, p.Level, p.Seq,
			p.TimestampUsec/1e6, p.TimestampUsec%1e6, wire.Sanitize(p.Text))}
	}
	text := strings.TrimSuffix(p.Text, "\n")
	var lines []string
	for l := range strings.SplitSeq(text, "\n") {
		lines = append(lines, fmt.Sprintf("%s - - - %s", t, wire.Sanitize(strings.TrimSuffix(l, "\r"))))
	}
	return lines
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// parseAnnouncement reports whether p is a lastgasp announcement and returns
// its host and boot. Legacy lines may carry a "[ seconds] " printk prefix.
func parseAnnouncement(p wire.Packet) (host, boot string, ok bool) {
	text := p.Text
	if !p.Extended && strings.HasPrefix(text, "[") {
		if i := strings.Index(text, "] "); i > 0 {
			text = text[i+2:]
		}
	}
	rest, ok := strings.CutPrefix(text, AnnouncePrefix)
	if !ok {
		return "", "", false
	}
	for _, f := range strings.Fields(rest) {
		switch k, v, _ := strings.Cut(f, "="); k {
		case "host":
			host = v
		case "boot":
			boot = v
		}
	}
	if host == "" || boot == "" {
		return "", "", false
	}
	return host, boot, true
}
