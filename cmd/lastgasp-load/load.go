package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"net"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/lastgasp/lastgasp/netconsole/wire"
)

// maxChunk is netconsole's largest payload per datagram (MAX_PRINT_CHUNK).
const maxChunk = 1000

// Config says what to send.
type Config struct {
	Addr      string        // collector address, host:port
	Hosts     int           // simulated hosts, one UDP socket each
	Rate      int           // total messages per second; 0 means as fast as possible
	Count     int           // total messages to send, announcements included; 0 means until Duration
	Duration  time.Duration // stop after this long; 0 means until Count
	Size      int           // text bytes of an ordinary message
	FragEvery int           // every FragEvery'th message is fragmented; 0 means never
	FragSize  int           // text bytes of a fragmented message
	GapEvery  int           // every GapEvery'th sequence number is skipped; 0 means never
	Boot      string        // boot id in the announcements; empty means random
	HostFmt   string        // host name format, given the host index
	Senders   int           // sending goroutines; 0 means GOMAXPROCS
	// Trailer, if positive, is a pause after the load after which every
	// host sends one last message, so that a receiver sees every loss in
	// the load as a sequence gap.
	Trailer time.Duration
}

func parseFlags(args []string) (Config, error) {
	fs := flag.NewFlagSet("lastgasp-load", flag.ContinueOnError)
	var c Config
	fs.StringVar(&c.Addr, "addr", "127.0.0.1:6666", "collector netconsole address")
	fs.IntVar(&c.Hosts, "hosts", 256, "simulated hosts (one source port each)")
	fs.IntVar(&c.Rate, "rate", 10000, "total messages per second (0: as fast as possible)")
	fs.IntVar(&c.Count, "count", 0, "total messages to send, announcements included (0: until -duration)")
	fs.DurationVar(&c.Duration, "duration", 0, "how long to send (0: until -count)")
	fs.IntVar(&c.Size, "size", 100, "text bytes per ordinary message")
	fs.IntVar(&c.FragEvery, "frag-every", 50, "every Nth message is fragmented with ncfrag (0: never)")
	fs.IntVar(&c.FragSize, "frag-size", 2500, "text bytes of a fragmented message")
	fs.DurationVar(&c.Trailer, "trailer", 300*time.Millisecond, "pause after the load, then one last message per host so losses show as gaps (0: none)")
	fs.IntVar(&c.GapEvery, "gap-every", 100, "skip every Nth sequence number: a deliberate gap (0: never)")
	fs.StringVar(&c.Boot, "boot", "", "boot id in the announcement lines (default random)")
	fs.StringVar(&c.HostFmt, "host-format", "load-%04d", "host name format (printf, host index)")
	fs.IntVar(&c.Senders, "senders", 0, "sending goroutines (0: GOMAXPROCS)")
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if c.Count == 0 && c.Duration == 0 {
		return Config{}, errors.New("need -count or -duration")
	}
	return c, nil
}

// Result is what Run sent.
type Result struct {
	Hosts      int
	Messages   uint64 // complete messages sent, announcements included
	Datagrams  uint64
	Fragmented uint64 // messages sent as fragments
	Gaps       uint64 // deliberate gaps
	Skipped    uint64 // sequence numbers skipped by them
	Errors     uint64 // failed sends (such as ECONNREFUSED from an earlier datagram)
	Elapsed    time.Duration
}

// String formats r as lastgasp-load prints it.
func (r Result) String() string {
	sec := r.Elapsed.Seconds()
	rate := 0.0
	if sec > 0 {
		rate = float64(r.Messages) / sec
	}
	return fmt.Sprintf("sent: hosts=%d messages=%d datagrams=%d fragmented=%d gaps=%d skipped=%d errors=%d seconds=%.2f rate=%.0f",
		r.Hosts, r.Messages, r.Datagrams, r.Fragmented, r.Gaps, r.Skipped, r.Errors, sec, rate)
}

// host is one simulated sender.
type host struct {
	conn *net.UDPConn
	name string
	seq  uint64 // next sequence number
	n    int    // messages generated so far, announcement included
}

// Run sends load as cfg says until its count or duration is reached or ctx
// is done.
func Run(ctx context.Context, cfg Config) (Result, error) {
	if cfg.Hosts < 1 {
		return Result{}, errors.New("need at least one host")
	}
	raddr, err := net.ResolveUDPAddr("udp", cfg.Addr)
	if err != nil {
		return Result{}, fmt.Errorf("resolve %s: %w", cfg.Addr, err)
	}
	if cfg.Boot == "" {
		b := make([]byte, 8)
		rand.Read(b)
		cfg.Boot = hex.EncodeToString(b)
	}
	if cfg.HostFmt == "" {
		cfg.HostFmt = "load-%04d"
	}
	hosts := make([]*host, cfg.Hosts)
	for i := range hosts {
		c, err := net.DialUDP("udp", nil, raddr)
		if err != nil {
			for _, h := range hosts[:i] {
				h.conn.Close()
			}
			return Result{}, fmt.Errorf("host %d: dial %s: %w", i, cfg.Addr, err)
		}
		c.SetWriteBuffer(4 << 20)
		hosts[i] = &host{conn: c, name: fmt.Sprintf(cfg.HostFmt, i), seq: 1000}
	}
	defer func() {
		for _, h := range hosts {
			h.conn.Close()
		}
	}()
	senders := cfg.Senders
	if senders <= 0 {
		senders = runtime.GOMAXPROCS(0)
	}
	senders = min(senders, cfg.Hosts)
	sctx := ctx
	if cfg.Duration > 0 {
		var cancel context.CancelFunc
		sctx, cancel = context.WithTimeout(ctx, cfg.Duration)
		defer cancel()
	}
	start := time.Now()
	results := make([]Result, senders)
	var wg sync.WaitGroup
	for g := range senders {
		var mine []*host
		for i := g; i < len(hosts); i += senders {
			mine = append(mine, hosts[i])
		}
		count, rate := share(cfg.Count, senders, g), share(cfg.Rate, senders, g)
		if cfg.Count > 0 && count == 0 {
			continue
		}
		wg.Go(func() { results[g] = send(sctx, cfg, mine, count, float64(rate), start) })
	}
	wg.Wait()
	elapsed := time.Since(start)
	if cfg.Trailer > 0 {
		var tr Result
		select {
		case <-time.After(cfg.Trailer):
			text := "lastgasp-load: done"
			for _, h := range hosts {
				if h.n > 0 {
					h.message(cfg, text, text, &tr, nil)
				}
			}
		case <-ctx.Done():
		}
		results = append(results, tr)
	}
	total := Result{Hosts: cfg.Hosts, Elapsed: elapsed}
	for _, r := range results {
		total.Messages += r.Messages
		total.Datagrams += r.Datagrams
		total.Fragmented += r.Fragmented
		total.Gaps += r.Gaps
		total.Skipped += r.Skipped
		total.Errors += r.Errors
	}
	return total, nil
}

// share returns part g of n split over k parts.
func share(n, k, g int) int {
	s := n / k
	if g < n%k {
		s++
	}
	return s
}

// send is one sending goroutine: round robin over hosts, paced to rate
// messages per second (0: unpaced), until count messages (0: until ctx).
func send(ctx context.Context, cfg Config, hosts []*host, count int, rate float64, start time.Time) Result {
	var r Result
	text := strings.Repeat("x", max(cfg.Size, 1))
	fragText := strings.Repeat("f", max(cfg.FragSize, maxChunk+1))
	next := 0
	buf := make([]byte, 0, 2048)
	for count == 0 || int(r.Messages) < count {
		if ctx.Err() != nil {
			break
		}
		due := count - int(r.Messages)
		if count == 0 {
			due = 1 << 30
		}
		if rate > 0 {
			want := int(time.Since(start).Seconds()*rate) - int(r.Messages)
			if want <= 0 {
				time.Sleep(200 * time.Microsecond)
				continue
			}
			due = min(due, want)
		}
		due = min(due, 4096)
		for range due {
			h := hosts[next]
			next = (next + 1) % len(hosts)
			buf = h.message(cfg, text, fragText, &r, buf)
		}
	}
	return r
}

// message sends h's next message.
func (h *host) message(cfg Config, text, fragText string, r *Result, buf []byte) []byte {
	p := wire.Packet{Extended: true, Level: 6, Seq: h.seq, TimestampUsec: 1_000_000 + h.seq*10}
	switch {
	case h.n == 0:
		p.Text = fmt.Sprintf("%snetconsole armed host=%s boot=%s dev=lo", "lastgasp: ", h.name, cfg.Boot)
	case cfg.FragEvery > 0 && h.n%cfg.FragEvery == 0:
		p.Text = fragText
	default:
		p.Text = text
	}
	h.n++
	h.seq++
	if cfg.GapEvery > 0 && h.seq%uint64(cfg.GapEvery) == 0 {
		h.seq++
		r.Gaps++
		r.Skipped++
	}
	r.Messages++
	if len(p.Text) < maxChunk {
		buf = append(buf[:0], wire.Format(p)...)
		h.write(buf, r)
		return buf
	}
	r.Fragmented++
	body := p.Text + "\n"
	p.FragTotal = len(body)
	for off := 0; off < len(body); off += maxChunk {
		f := p
		f.FragOffset = off
		f.Text = body[off:min(off+maxChunk, len(body))]
		buf = append(buf[:0], wire.Format(f)...)
		h.write(buf, r)
	}
	return buf
}

func (h *host) write(b []byte, r *Result) {
	r.Datagrams++
	if _, err := h.conn.Write(b); err != nil {
		r.Errors++
	}
}
