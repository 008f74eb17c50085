package main

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/lastgasp/lastgasp/netconsole/announce"
	"github.com/lastgasp/lastgasp/netconsole/wire"
)

// maxChunk is netconsole's largest payload per datagram (MAX_PRINT_CHUNK).
const maxChunk = 1000

// How hosts get their source addresses (Config.Sources).
const (
	// SourcesSockets gives every host a UDP socket of its own on
	// 127.0.0.1: distinct source ports, one descriptor per host.
	SourcesSockets = "sockets"
	// SourcesRaw forges every host's datagrams on raw IPv4 sockets (one
	// per sending goroutine): host i sends from Config.SourceBase + i,
	// port 6665, as netconsole does. Loopback only; needs CAP_NET_RAW.
	SourcesRaw = "raw"
)

// DefaultSourceBase is the first raw-mode source address: above
// 127.0.0.0/16, so that no simulated host shares 127.0.0.1 with real
// senders such as a QEMU guest behind user networking.
var DefaultSourceBase = netip.MustParseAddr("127.1.0.0")

// Config says what to send.
type Config struct {
	Addr      string        // collector address, host:port
	Hosts     int           // simulated hosts
	Rate      int           // total messages per second of the ordinary hosts; 0 means as fast as possible
	Count     int           // total messages of the ordinary hosts, announcements included; 0 means until Duration
	Duration  time.Duration // stop after this long; 0 means until Count
	Size      int           // text bytes of an ordinary message
	FragEvery int           // every FragEvery'th message is fragmented; 0 means never
	FragSize  int           // text bytes of a fragmented message
	GapEvery  int           // every GapEvery'th sequence number is skipped; 0 means never
	SeqStart  uint64        // every host's first sequence number; 0 means 1000
	Boot      string        // boot id in the announcements; empty means random
	HostFmt   string        // host name format, given the host index
	Senders   int           // sending goroutines; 0 means GOMAXPROCS
	// Sources is SourcesSockets (the default when empty) or SourcesRaw.
	Sources string
	// SourceBase is the first source address in raw mode; the zero value
	// means DefaultSourceBase.
	SourceBase netip.Addr
	// Flood makes host FloodHost leave the round robin and send on its
	// own, at FloodRate messages per second (0: as fast as it can), until
	// the others are done.
	Flood     bool
	FloodHost int
	FloodRate int
	// Trailer, if positive, is a pause after the load after which every
	// host sends one last message, so that a receiver sees every loss in
	// the load as a sequence gap. The trailers are paced at Rate too.
	Trailer time.Duration
	// Record makes Run return what each host sent (Result.Sent), so that
	// a store can be compared with it host by host.
	Record bool
}

// parseFlags returns the configuration and the -sent file name.
func parseFlags(args []string) (Config, string, error) {
	fs := flag.NewFlagSet("lastgasp-load", flag.ContinueOnError)
	var c Config
	var base, sent string
	fs.StringVar(&c.Addr, "addr", "127.0.0.1:6666", "collector netconsole address")
	fs.IntVar(&c.Hosts, "hosts", 256, "simulated hosts")
	fs.StringVar(&c.Sources, "sources", SourcesSockets, "how hosts get distinct source addresses: sockets (one UDP socket per host on 127.0.0.1) or raw (forged 127.x.y.z:6665 on raw sockets; loopback only, needs CAP_NET_RAW)")
	fs.StringVar(&base, "source-base", DefaultSourceBase.String(), "raw: host i sends from this address + i")
	fs.IntVar(&c.Rate, "rate", 10000, "total messages per second of the ordinary hosts (0: as fast as possible)")
	fs.IntVar(&c.Count, "count", 0, "total messages of the ordinary hosts, announcements included (0: until -duration)")
	fs.DurationVar(&c.Duration, "duration", 0, "how long to send (0: until -count)")
	fs.IntVar(&c.Size, "size", 100, "text bytes per ordinary message")
	fs.IntVar(&c.FragEvery, "frag-every", 50, "every Nth message is fragmented with ncfrag (0: never)")
	fs.IntVar(&c.FragSize, "frag-size", 2500, "text bytes of a fragmented message")
	fs.DurationVar(&c.Trailer, "trailer", 300*time.Millisecond, "pause after the load, then one last message per host so losses show as gaps (0: none)")
	fs.IntVar(&c.GapEvery, "gap-every", 100, "skip every Nth sequence number: a deliberate gap (0: never)")
	fs.StringVar(&c.Boot, "boot", "", "boot id in the announcement lines (default random)")
	fs.StringVar(&c.HostFmt, "host-format", "load-%04d", "host name format (printf, host index)")
	fs.IntVar(&c.Senders, "senders", 0, "sending goroutines (0: GOMAXPROCS)")
	fs.IntVar(&c.FloodHost, "flood-host", -1, "index of a host that floods on its own while the others send at -rate (-1: none)")
	fs.IntVar(&c.FloodRate, "flood-rate", 0, "the flooding host's messages per second (0: as fast as it can)")
	fs.Uint64Var(&c.SeqStart, "seq-start", 1000, "every host's first sequence number (a second run continuing a first uses the first's end)")
	fs.StringVar(&sent, "sent", "", "write what each host sent (first, last and skipped sequence numbers, fragmented messages) to this file, one line a host")
	if err := fs.Parse(args); err != nil {
		return Config{}, "", err
	}
	c.Flood = c.FloodHost >= 0
	if fs.NArg() > 0 {
		return Config{}, "", fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if c.Count == 0 && c.Duration == 0 {
		return Config{}, "", errors.New("need -count or -duration")
	}
	var err error
	if c.SourceBase, err = netip.ParseAddr(base); err != nil {
		return Config{}, "", fmt.Errorf("-source-base: %w", err)
	}
	return c, sent, nil
}

// Result is what Run sent.
type Result struct {
	Hosts      int
	Messages   uint64 // complete messages sent, announcements, trailers and flood included
	Datagrams  uint64
	Fragmented uint64        // messages sent as fragments
	Gaps       uint64        // deliberate gaps
	Skipped    uint64        // sequence numbers skipped by them
	Errors     uint64        // failed sends (such as ECONNREFUSED from an earlier datagram)
	Flood      uint64        // messages of the flooding host, included in Messages
	Flooding   bool          // whether a host flooded
	Trailers   uint64        // trailer messages, included in Messages
	Elapsed    time.Duration // of the load, without the trailers
	Sent       []HostSent    // per host, with Config.Record
}

// HostSent is what one host sent, in sequence numbers: what a store of
// its stream is compared with.
type HostSent struct {
	Name        string
	First, Last uint64   // first and last sequence number sent (both 0 if none)
	Skipped     []uint64 // deliberately skipped numbers, in order; one may follow Last
	Multi       []Multi  // messages sent in more than one datagram
}

// Multi is a message sent in fragments.
type Multi struct {
	Seq       uint64
	Datagrams int
}

// String formats r as lastgasp-load prints it.
func (r Result) String() string {
	sec := r.Elapsed.Seconds()
	rate, frate := 0.0, 0.0
	if sec > 0 {
		// The trailers are sent after Elapsed; the flooder's (at most one)
		// is too few to matter.
		rate = float64(r.Messages-r.Flood-r.Trailers) / sec
		frate = float64(r.Flood) / sec
	}
	s := fmt.Sprintf("sent: hosts=%d messages=%d datagrams=%d fragmented=%d gaps=%d skipped=%d errors=%d seconds=%.2f rate=%.0f",
		r.Hosts, r.Messages, r.Datagrams, r.Fragmented, r.Gaps, r.Skipped, r.Errors, sec, rate)
	if r.Flooding {
		s += fmt.Sprintf(" flood=%d flood_rate=%.0f", r.Flood, frate)
	}
	return s
}

func (r *Result) add(o Result) {
	r.Messages += o.Messages
	r.Datagrams += o.Datagrams
	r.Fragmented += o.Fragmented
	r.Gaps += o.Gaps
	r.Skipped += o.Skipped
	r.Errors += o.Errors
}

// host is one simulated sender.
type host struct {
	conn *net.UDPConn   // sockets mode
	src  netip.AddrPort // raw mode
	name string
	seq  uint64    // next sequence number
	n    int       // messages generated so far, announcement included
	sent *HostSent // with Config.Record
}

// emitter sends datagrams for hosts; one per sending goroutine.
type emitter interface {
	// emit sends (or queues) one datagram of h, counting it in r.
	emit(h *host, payload []byte, r *Result)
	// flush sends what emit queued.
	flush(r *Result)
	close()
}

// Run sends load as cfg says until its count or duration is reached or ctx
// is done.
func Run(ctx context.Context, cfg Config) (Result, error) {
	if cfg.Hosts < 1 {
		return Result{}, errors.New("need at least one host")
	}
	if cfg.Flood && (cfg.FloodHost < 0 || cfg.FloodHost >= cfg.Hosts || cfg.Hosts < 2) {
		return Result{}, fmt.Errorf("flood host %d: need it among at least 2 hosts (have %d)", cfg.FloodHost, cfg.Hosts)
	}
	if cfg.Boot == "" {
		b := make([]byte, 8)
		rand.Read(b)
		cfg.Boot = hex.EncodeToString(b)
	}
	if cfg.HostFmt == "" {
		cfg.HostFmt = "load-%04d"
	}
	if !cfg.SourceBase.IsValid() {
		cfg.SourceBase = DefaultSourceBase
	}
	newEmitter, hosts, err := setup(cfg)
	if err != nil {
		return Result{}, err
	}
	defer func() {
		for _, h := range hosts {
			if h.conn != nil {
				h.conn.Close()
			}
		}
	}()
	var flooder *host
	ordinary := hosts
	if cfg.Flood {
		flooder = hosts[cfg.FloodHost]
		ordinary = append(append([]*host(nil), hosts[:cfg.FloodHost]...), hosts[cfg.FloodHost+1:]...)
	}
	senders := cfg.Senders
	if senders <= 0 {
		senders = runtime.GOMAXPROCS(0)
	}
	senders = min(senders, len(ordinary))
	emitters := make([]emitter, senders, senders+1)
	for g := range emitters {
		if emitters[g], err = newEmitter(); err != nil {
			for _, e := range emitters[:g] {
				e.close()
			}
			return Result{}, err
		}
	}
	defer func() {
		for _, e := range emitters {
			e.close()
		}
	}()
	sctx := ctx
	if cfg.Duration > 0 {
		var cancel context.CancelFunc
		sctx, cancel = context.WithTimeout(ctx, cfg.Duration)
		defer cancel()
	}
	start := time.Now()
	results := make([]Result, senders)
	mine := make([][]*host, senders)
	for i, h := range ordinary {
		mine[i%senders] = append(mine[i%senders], h)
	}
	var floodRes Result
	var floodDone sync.WaitGroup
	fctx, stopFlood := context.WithCancel(sctx)
	defer stopFlood()
	if flooder != nil {
		fe, err := newEmitter()
		if err != nil {
			return Result{}, err
		}
		emitters = append(emitters, fe)
		floodDone.Go(func() {
			g := generator{cfg: cfg}
			paced(fctx, 0, float64(cfg.FloodRate), start, func() { g.message(flooder, fe, &floodRes) }, func() { fe.flush(&floodRes) })
			fe.flush(&floodRes)
		})
	}
	var wg sync.WaitGroup
	for g := range senders {
		// Host i of the round robin sends share(Count, hosts, i) messages,
		// and each goroutine's pace is its part of them.
		count := 0
		for i := g; i < len(ordinary); i += senders {
			count += share(cfg.Count, len(ordinary), i)
		}
		rate := float64(cfg.Rate) * float64(len(mine[g])) / float64(len(ordinary))
		if cfg.Count > 0 {
			if count == 0 {
				continue
			}
			rate = float64(cfg.Rate) * float64(count) / float64(cfg.Count)
		}
		wg.Go(func() {
			gen, e, hs, next := generator{cfg: cfg}, emitters[g], mine[g], 0
			paced(sctx, count, rate, start, func() {
				gen.message(hs[next], e, &results[g])
				next = (next + 1) % len(hs)
			}, func() { e.flush(&results[g]) })
			e.flush(&results[g])
		})
	}
	wg.Wait()
	stopFlood()
	floodDone.Wait()
	elapsed := time.Since(start)
	total := Result{Hosts: cfg.Hosts, Elapsed: elapsed, Flooding: flooder != nil}
	if cfg.Trailer > 0 {
		tr := trailers(ctx, cfg, emitters[:senders], mine, flooder, &floodRes)
		total.add(tr)
		total.Trailers = tr.Messages
	}
	for _, r := range results {
		total.add(r)
	}
	total.add(floodRes)
	total.Flood = floodRes.Messages
	if cfg.Record {
		total.Sent = make([]HostSent, len(hosts))
		for i, h := range hosts {
			total.Sent[i] = *h.sent
		}
	}
	return total, nil
}

// setup makes the hosts and what each sending goroutine sends with.
func setup(cfg Config) (func() (emitter, error), []*host, error) {
	hosts := make([]*host, cfg.Hosts)
	for i := range hosts {
		hosts[i] = &host{name: fmt.Sprintf(cfg.HostFmt, i), seq: cmp.Or(cfg.SeqStart, 1000)}
		if cfg.Record {
			hosts[i].sent = &HostSent{Name: hosts[i].name}
		}
	}
	switch cfg.Sources {
	case "", SourcesSockets:
		raddr, err := net.ResolveUDPAddr("udp", cfg.Addr)
		if err != nil {
			return nil, nil, fmt.Errorf("resolve %s: %w", cfg.Addr, err)
		}
		for i, h := range hosts {
			c, err := net.DialUDP("udp", nil, raddr)
			if err != nil {
				for _, h := range hosts[:i] {
					h.conn.Close()
				}
				return nil, nil, fmt.Errorf("host %d: dial %s: %w", i, cfg.Addr, err)
			}
			c.SetWriteBuffer(4 << 20)
			h.conn = c
		}
		return func() (emitter, error) { return socketEmitter{}, nil }, hosts, nil
	case SourcesRaw:
		dst, err := netip.ParseAddrPort(cfg.Addr)
		if err != nil {
			return nil, nil, fmt.Errorf("raw: collector address %s: %w", cfg.Addr, err)
		}
		dst = netip.AddrPortFrom(dst.Addr().Unmap(), dst.Port())
		if !dst.Addr().Is4() || !loopback4.Contains(dst.Addr()) {
			return nil, nil, fmt.Errorf("raw: collector address %s: %w", cfg.Addr, errNotLoopback)
		}
		for i, h := range hosts {
			if h.src, err = sourceAddr(cfg.SourceBase, i); err != nil {
				return nil, nil, fmt.Errorf("raw: host %d: %w", i, err)
			}
		}
		return func() (emitter, error) {
			rc, err := dialRaw()
			if err != nil {
				return nil, err
			}
			return newRawEmitter(rc, dst), nil
		}, hosts, nil
	default:
		return nil, nil, fmt.Errorf("sources %q: want %s or %s", cfg.Sources, SourcesSockets, SourcesRaw)
	}
}

// trailers waits cfg.Trailer, then sends one last message for every host
// that sent anything, each goroutine paced at its share of cfg.Rate. It
// returns what it sent for the ordinary hosts; the flooder's trailer is
// counted in floodRes.
func trailers(ctx context.Context, cfg Config, emitters []emitter, mine [][]*host, flooder *host, floodRes *Result) Result {
	select {
	case <-time.After(cfg.Trailer):
	case <-ctx.Done():
		return Result{}
	}
	results := make([]Result, len(emitters))
	start := time.Now()
	var wg sync.WaitGroup
	for g, e := range emitters {
		var hs []*host
		for _, h := range mine[g] {
			if h.n > 0 {
				hs = append(hs, h)
			}
		}
		if g == 0 && flooder != nil && flooder.n > 0 {
			hs = append(hs, flooder)
		}
		if len(hs) == 0 {
			continue
		}
		wg.Go(func() {
			gen, next := generator{cfg: cfg}, 0
			paced(ctx, len(hs), float64(share(cfg.Rate, len(emitters), g)), start, func() {
				r := &results[g]
				if hs[next] == flooder {
					r = floodRes
				}
				gen.send(hs[next], hs[next].name+" lastgasp-load: done", e, r)
				next++
			}, func() { e.flush(&results[g]) })
			e.flush(&results[g])
		})
	}
	wg.Wait()
	var total Result
	for _, r := range results {
		total.add(r)
	}
	return total
}

// share returns part g of n split over k parts.
func share(n, k, g int) int {
	s := n / k
	if g < n%k {
		s++
	}
	return s
}

// paced calls step count times (0: until ctx is done), at most rate times
// a second counted from start (0: unpaced), and flush after every burst.
func paced(ctx context.Context, count int, rate float64, start time.Time, step, flush func()) {
	done := 0
	for count == 0 || done < count {
		if ctx.Err() != nil {
			return
		}
		due := count - done
		if count == 0 {
			due = 1 << 30
		}
		if rate > 0 {
			want := int(time.Since(start).Seconds()*rate) - done
			if want <= 0 {
				flush()
				time.Sleep(200 * time.Microsecond)
				continue
			}
			due = min(due, want)
		}
		due = min(due, 4096)
		for range due {
			step()
		}
		done += due
	}
}

// generator makes hosts' messages; one per sending goroutine.
type generator struct {
	cfg            Config
	text, fragText string // filler
	buf            []byte
}

// message sends h's next message: its announcement first, then ordinary
// and fragmented ones. Each text starts with the host's name, so that a
// line filed under the wrong host can be told.
func (g *generator) message(h *host, e emitter, r *Result) {
	if g.text == "" {
		g.text = strings.Repeat("x", max(g.cfg.Size, 1))
		g.fragText = strings.Repeat("f", max(g.cfg.FragSize, maxChunk+1))
	}
	var text string
	switch {
	case h.n == 0:
		a := announce.Announcement{Host: h.name, Boot: g.cfg.Boot, Fields: []announce.Field{{Key: "dev", Value: "lo"}}}
		if h.src.IsValid() {
			a.Fields = append(a.Fields, announce.Field{Key: "local", Value: h.src.Addr().String()})
		}
		a.Fields = append(a.Fields, announce.Field{Key: "remote", Value: g.cfg.Addr})
		text = announce.Prefix + announce.Format(a)
	case g.cfg.FragEvery > 0 && h.n%g.cfg.FragEvery == 0:
		text = h.name + " " + g.fragText
	default:
		text = h.name + " " + g.text[:max(g.cfg.Size-len(h.name)-1, 1)]
	}
	g.send(h, text, e, r)
}

// send sends text as h's next message, in fragments if it does not fit one
// datagram, and skips a sequence number every GapEvery.
func (g *generator) send(h *host, text string, e emitter, r *Result) {
	p := wire.Packet{Extended: true, Level: 6, Seq: h.seq, TimestampUsec: 1_000_000 + h.seq*10, Text: text}
	if h.sent != nil {
		if h.sent.First == 0 {
			h.sent.First = h.seq
		}
		h.sent.Last = h.seq
	}
	h.n++
	h.seq++
	if g.cfg.GapEvery > 0 && h.seq%uint64(g.cfg.GapEvery) == 0 {
		if h.sent != nil {
			h.sent.Skipped = append(h.sent.Skipped, h.seq)
		}
		h.seq++
		r.Gaps++
		r.Skipped++
	}
	r.Messages++
	if len(p.Text) < maxChunk {
		e.emit(h, wire.Format(p), r)
		return
	}
	r.Fragmented++
	body := p.Text + "\n"
	p.FragTotal = len(body)
	if h.sent != nil {
		h.sent.Multi = append(h.sent.Multi, Multi{p.Seq, (len(body) + maxChunk - 1) / maxChunk})
	}
	for off := 0; off < len(body); off += maxChunk {
		f := p
		f.FragOffset = off
		f.Text = body[off:min(off+maxChunk, len(body))]
		e.emit(h, wire.Format(f), r)
	}
}

// socketEmitter writes on each host's own UDP socket.
type socketEmitter struct{}

func (socketEmitter) emit(h *host, b []byte, r *Result) {
	r.Datagrams++
	if _, err := h.conn.Write(b); err != nil {
		r.Errors++
	}
}

func (socketEmitter) flush(*Result) {}
func (socketEmitter) close()        {}
