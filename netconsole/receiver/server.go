package receiver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/lastgasp/lastgasp/netconsole/wire"
	"github.com/lastgasp/lastgasp/store"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// Defaults used for zero Server fields.
const (
	DefaultAnnounceTimeout   = 2 * time.Second
	DefaultAnnounceLines     = 256
	DefaultAnnounceBytes     = 256 << 10
	DefaultMaxHosts          = 1 << 20
	DefaultHostTTL           = 14 * 24 * time.Hour
	DefaultMaxActive         = 16384
	DefaultFlushInterval     = 100 * time.Millisecond
	DefaultWriteDelay        = time.Second
	DefaultWriteBytes        = 16 << 10
	DefaultRateLimit         = 1000
	DefaultRateBurst         = 20000
	DefaultRateNoteInterval  = 10 * time.Second
	DefaultSaveInterval      = time.Minute
	DefaultMaxNamesPerSender = 8
	DefaultBatchSize         = 32
	DefaultDatagramSize      = 16 << 10
)

// maxShedPerDatagram bounds the senders shed after one datagram when the
// Server's memory bound is exceeded, so that one datagram costs bounded work.
const maxShedPerDatagram = 16

// Server receives netconsole datagrams and files them in a Store. Set Store;
// the other fields are optional and must not change once serving started.
// Stats may be called at any time. Serve may run on several sockets at once
// (see ServeConns); each call keeps its own sender state, so a sender's
// datagrams must all arrive on one socket, as they do with SO_REUSEPORT.
//
// # What identifies a stream
//
// A sender is its UDP source address and port: a netconsole target sends
// from one local port (6665 by default) for its whole life. The stream is
// bound to a host and boot by the agent's announcement (package
// netconsole/announce), or by host= and boot= userdata entries on each
// message (Linux 6.9+), which survive everything below. For every sender
// the Server keeps a small identity (host, boot, where its sequence
// stands, counters: about 300 bytes) for HostTTL or until MaxHosts
// identities exist; the heavy state (fragments, reorder window, the ring of
// recent sequence numbers, lines waiting for an announcement) is kept for
// at most MaxActive senders and shed, least recently heard first. After a
// shed, the next message is still compared with the last sequence number
// written, so a gap is still reported and counted.
//
// With StateFile set, identities are saved every SaveInterval and on
// shutdown and loaded at start, so that a collector restarted in the middle
// of a boot files the rest of it under the same host and boot and counts
// what it missed as a gap. A host that comes back from a new address
// without announcing again (and without userdata) cannot be recognised: its
// lines go under the new address until it announces (its summary line
// does).
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
	// MaxHosts bounds the sender identities kept, all Serve calls
	// together. At the bound, the least recently heard of a sample is
	// forgotten (Stats.HostsForgotten). Zero means DefaultMaxHosts.
	MaxHosts int
	// HostTTL is how long an identity is kept after its sender was last
	// heard. Zero means DefaultHostTTL; negative keeps them until
	// MaxHosts forces one out.
	HostTTL time.Duration
	// MaxActive bounds the senders holding heavy state, all Serve calls
	// together; beyond it the least recently heard is shed
	// (Stats.Evictions). Zero means DefaultMaxActive.
	MaxActive int
	// MaxMemory bounds the bytes held for all senders of all Serve calls
	// together: fragments being reassembled, messages waiting in reorder
	// windows, lines waiting for an announcement and lines waiting to be
	// written. When a datagram takes the total over the bound, waiting
	// lines are written out, then its sender (and up to 15 others heard
	// from least recently) is shed: incomplete messages are dropped and
	// counted (Stats.DroppedMemory), held messages are written past their
	// gaps. Zero means no bound beyond the per-sender
	// Config.MaxPendingBytes and MaxActive.
	MaxMemory int64
	// FlushInterval is how often timeouts are checked and due lines are
	// written. Zero means DefaultFlushInterval.
	FlushInterval time.Duration
	// WriteDelay is how long a host's lines may wait in memory to be
	// written together, and WriteBytes how many bytes make a batch that
	// is written at once: one write (and at most one open) per host per
	// WriteDelay instead of one per message. Zero means DefaultWriteDelay
	// and DefaultWriteBytes.
	WriteDelay time.Duration
	WriteBytes int
	// RateLimit is the messages per second a host may send on average
	// and RateBurst how many above that it may send at once (a token
	// bucket per sender); the excess is dropped, counted per host
	// (Stats.RateLimited, RateLimitedHosts) and noted in the host's log
	// once per RateNoteInterval. Announcements are never limited. Zero
	// means DefaultRateLimit, DefaultRateBurst and
	// DefaultRateNoteInterval; a negative RateLimit turns limiting off.
	RateLimit        float64
	RateBurst        int
	RateNoteInterval time.Duration
	// MaxNamesPerSender bounds the distinct host names one sender (source
	// address and port) may announce; more are refused (Stats.Refused),
	// so that one source cannot create a directory per datagram. At most
	// 255; zero means DefaultMaxNamesPerSender.
	MaxNamesPerSender int
	// Pins restrict host names to source networks: an announcement of a
	// host matching a Pin's pattern is accepted only from an address in
	// one of the prefixes of the pins it matches (Stats.Refused).
	Pins []Pin
	// StateFile, if set, is where identities are saved every
	// SaveInterval (zero: DefaultSaveInterval) and on shutdown, and
	// loaded from at the first Serve: the first socket's senders in
	// StateFile, the others' in StateFile.1, StateFile.2 ...
	StateFile    string
	SaveInterval time.Duration
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
	active  atomic.Int64 // senders with heavy state, for MaxActive
	nhosts  atomic.Int64 // identities, for MaxHosts

	loadOnce sync.Once
	restored restoredTable
	claims   claimTable
	rateTop  topHosts

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
	dropWrite, rateLimited, noAnnouncement, refused    atomic.Uint64
	conflicts, forgotten, expired, restored, opens     atomic.Uint64
	dropBacklog, kernelDrops                           atomic.Uint64
	dropByReason                                       [256]atomic.Uint64 // by wire.DropReason
	_                                                  [64]byte
}

// Stats counts what a Server has received since it was created. Every
// message that was received but not written is in one of the Dropped
// counters or RateLimited; every sequence number that never arrived is in
// Lost.
type Stats struct {
	// Datagrams is every datagram read.
	Datagrams uint64
	// Messages is the complete messages (legacy datagrams included)
	// written or held for writing, rate-limited ones excluded.
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
	// Dropped is the messages given up on, the sum of the Dropped
	// counters below (DroppedByReason excepted: it breaks down the
	// first four).
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
	// DroppedWrite is messages whose lines could not be written to the
	// store.
	DroppedWrite uint64
	// DroppedBacklog is messages dropped because the store fell behind
	// (its write queue full) while MaxMemory was reached.
	DroppedBacklog uint64
	// KernelDrops is the datagrams the kernel dropped because a socket's
	// receive buffer was full (SO_RXQ_OVFL, and SO_MEMINFO every
	// FlushInterval for drops no later datagram reports), when the
	// platform reports them.
	KernelDrops uint64
	// DroppedByReason breaks the wire's drops down by wire.DropReason
	// (every reason in wire.DropReasons has an entry).
	DroppedByReason map[wire.DropReason]uint64
	// RateLimited is the messages dropped by the per-host rate limit.
	RateLimited uint64
	// Announcements is the lastgasp announcements that bound a sender.
	Announcements uint64
	// Refused is the announcements not accepted: a host or boot name the
	// store refuses, or a host pinned to other networks.
	Refused uint64
	// Conflicts is the times two source addresses claimed one host name.
	Conflicts uint64
	// NoAnnouncement is the streams filed under their source address
	// because no announcement came (one per sender and boot).
	NoAnnouncement uint64
	// WriteErrors is the failed writes to the Store.
	WriteErrors uint64
	// Evictions is the senders whose heavy state was shed to stay within
	// MaxActive or MaxMemory; their identity is kept.
	Evictions uint64
	// HostsForgotten is the identities dropped to stay within MaxHosts,
	// HostsExpired those not heard from for HostTTL, and HostsRestored
	// those loaded from the StateFile.
	HostsForgotten, HostsExpired, HostsRestored uint64
	// Forwarded is the messages passed to Server.Forward.
	Forwarded uint64
	// Hosts is the identities kept (a gauge); Sources is the same
	// number, kept for older dashboards.
	Hosts, Sources int64
	// Active is the senders holding heavy state (a gauge).
	Active int64
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
		st.DroppedWrite += c.dropWrite.Load()
		st.DroppedBacklog += c.dropBacklog.Load()
		st.KernelDrops += c.kernelDrops.Load()
		st.RateLimited += c.rateLimited.Load()
		st.Announcements += c.announcements.Load()
		st.Refused += c.refused.Load()
		st.Conflicts += c.conflicts.Load()
		st.NoAnnouncement += c.noAnnouncement.Load()
		st.WriteErrors += c.writeErrors.Load()
		st.Evictions += c.evictions.Load()
		st.HostsForgotten += c.forgotten.Load()
		st.HostsExpired += c.expired.Load()
		st.HostsRestored += c.restored.Load()
		st.Forwarded += c.forwarded.Load()
	}
	st.Dropped = st.DroppedIncomplete + st.DroppedLimit + st.DroppedInvalid + st.DroppedMemory + st.DroppedWrite + st.DroppedBacklog
	st.Hosts = s.nhosts.Load()
	st.Sources = st.Hosts
	st.Active = s.active.Load()
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
	s.loadOnce.Do(s.loadState)
	in := s.newIngest()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	r := newPacketReader(conn, cmpOr(s.BatchSize, DefaultBatchSize), cmpOr(s.DatagramSize, DefaultDatagramSize))
	next := time.Now().Add(in.flushInterval)
	conn.SetReadDeadline(next)
	for {
		n, err := r.read()
		now := time.Now()
		for i := range n {
			if key, b, trunc, ok := r.datagram(i); ok {
				in.datagramFrom(now, key, b, trunc)
			}
		}
		if n > 0 {
			if d := r.kernelDrops(n); d > 0 {
				in.c.kernelDrops.Add(d)
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
			if d := r.socketDrops(); d > 0 {
				in.c.kernelDrops.Add(d)
			}
			in.flush(now, false)
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

// packetReader reads datagrams in batches.
type packetReader interface {
	// read waits for datagrams (until the read deadline) and returns how
	// many it read.
	read() (int, error)
	// datagram returns datagram i of the last read: its sender, its
	// bytes and whether it was truncated; ok is false for one to skip.
	datagram(i int) (key netip.AddrPort, b []byte, truncated, ok bool)
	// kernelDrops returns the datagrams the kernel dropped on the socket
	// since the last call, as the n datagrams just read report them.
	kernelDrops(n int) uint64
	// socketDrops returns the drops the socket's own counter adds to
	// those kernelDrops returned (0 where it cannot be read).
	socketDrops() uint64
}

// newPacketReader returns the reader for conn: recvmmsg into buffers of
// its own on Linux UDP sockets, x/net's ReadBatch on other UDP sockets, one
// ReadFrom at a time otherwise.
func newPacketReader(conn net.PacketConn, n, size int) packetReader {
	if uc, ok := conn.(*net.UDPConn); ok {
		if r, err := newMmsgReader(uc, n, size); err == nil && r != nil {
			return r
		}
	}
	return newBatchReader(conn, n, size)
}

// batchReader reads datagrams in batches: recvmmsg through x/net on UDP
// sockets, one ReadFrom at a time otherwise.
type batchReader struct {
	conn  net.PacketConn
	batch interface {
		ReadBatch([]ipv4.Message, int) (int, error)
	}
	msgs []ipv4.Message
	ovfl ovflCounter
	rc   syscall.RawConn // for socketDrops; nil if conn has none
}

func newBatchReader(conn net.PacketConn, n, size int) *batchReader {
	r := &batchReader{conn: conn}
	if sc, ok := conn.(syscall.Conn); ok {
		r.rc, _ = sc.SyscallConn()
	}
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
		if r.batch != nil && oobSize > 0 {
			r.msgs[i].OOB = make([]byte, oobSize)
		}
	}
	return r
}

func (r *batchReader) datagram(i int) (netip.AddrPort, []byte, bool, bool) {
	m := &r.msgs[i]
	if m.Addr == nil {
		return netip.AddrPort{}, nil, false, false
	}
	return sourceKey(m.Addr), m.Buffers[0][:m.N], m.Flags&msgTrunc != 0, true
}

func (r *batchReader) kernelDrops(n int) uint64 {
	var d uint64
	for i := range n {
		if m := &r.msgs[i]; m.OOB != nil && m.NN > 0 {
			d += r.ovfl.see(m.OOB[:m.NN])
		}
	}
	return d
}

// ovflCounter turns readings of a socket's drop counter (the kernel's
// sk_drops, a u32 since the socket opened) into the drops since the last
// reading. It is read in two ways: as the SO_RXQ_OVFL value that comes with
// each datagram, which is the counter when that datagram was queued, and
// from the socket itself (socketDrops), which is the counter now and so
// includes drops that no queued datagram reports yet (those after a
// stream's last datagram). A datagram read after a socket reading may
// carry an older value; only a reading ahead of the last adds.
type ovflCounter struct {
	last uint32
	seen bool
}

// see returns the drops the control messages oob of one datagram add.
func (o *ovflCounter) see(oob []byte) uint64 {
	c, ok := rxqOverflow(oob)
	if !ok {
		return 0
	}
	return o.advance(c)
}

// advance returns the drops a reading c of the counter adds.
func (o *ovflCounter) advance(c uint32) uint64 {
	if !o.seen {
		o.last, o.seen = c, true
		return uint64(c) // dropped since the socket opened
	}
	d := int32(c - o.last) // wraps like the kernel's u32
	if d <= 0 {
		return 0
	}
	o.last = c
	return uint64(d)
}

func (r *batchReader) socketDrops() uint64 {
	if r.rc == nil {
		return 0
	}
	c, ok := sockDrops(r.rc)
	if !ok {
		return 0
	}
	return r.ovfl.advance(c)
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

// cmpOr returns v if it is positive, def otherwise.
func cmpOr[T int | int64 | float64 | time.Duration](v, def T) T {
	if v > 0 {
		return v
	}
	return def
}
