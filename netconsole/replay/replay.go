package replay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"time"
)

// Defaults for zero Config fields.
const (
	// DefaultRate is the datagrams per second a replay sends at most: a
	// ring buffer of a few thousand records goes out in about a second,
	// while a collector's default rate limit (1000/s, burst 20,000) loses
	// at most a few thousand tokens of its burst and its socket buffer
	// (~200 datagrams at the default 208 KiB) is read long before it
	// fills.
	DefaultRate = 5000
	// DefaultBurst is how many datagrams go out back to back before the
	// replay waits for its rate.
	DefaultBurst = 50
	// DefaultMaxRecords bounds one replay: more than a 1 MiB ring buffer
	// holds.
	DefaultMaxRecords = 1 << 16
	// DefaultPrime is how long the first record waits before it is sent
	// again. The agent resolves the next hop with raw ARP or NDP, which
	// leaves the kernel's neighbour table empty, so a socket's first
	// datagram may wait for (or, from an optimistic IPv6 address, be
	// dropped during) the kernel's own resolution: seen as a gap of one
	// (seq 0) in receiver-ipv6. The receiver drops the second copy.
	DefaultPrime = 50 * time.Millisecond
)

// Conn is the part of a UDP socket a replay uses. Give it a socket bound to
// the netconsole target's local_ip:local_port, so that the receiver sees
// the kernel's sender: netpoll does not use the socket table, so that port
// is free for user space.
type Conn interface {
	WriteTo(b []byte, addr net.Addr) (int, error)
}

// Dest is one armed netconsole target the records are sent to.
type Dest struct {
	Conn Conn
	To   net.Addr
	// Release is the kernel release when the target prepends it
	// (configfs "release", Linux 6.6+), else empty.
	Release string
	// Userdata is what the target appends to every message (configfs
	// "userdata/", Linux 6.9+): " key=value\n" lines, or empty.
	Userdata string
}

// Config tunes a replay. The zero value uses the defaults.
type Config struct {
	Rate       int // datagrams per second; DefaultRate if zero
	Burst      int // DefaultBurst if zero
	MaxRecords int // DefaultMaxRecords if zero
	// Prime is the wait before the first record is sent again;
	// DefaultPrime if zero, negative for no second copy.
	Prime time.Duration
}

// Result says what a replay did.
type Result struct {
	// Records is how many records were read and sent.
	Records int
	// First and Last are the sequence numbers of the first and last
	// record sent.
	First, Last uint64
	// Overwritten counts the sequence numbers before First and between
	// records that the kernel had overwritten (a ring buffer that
	// wrapped, EPIPE from /dev/kmsg) before they could be read. The
	// receiver reports them as a gap.
	Overwritten uint64
	// Datagrams is how many datagrams were sent, to all destinations.
	Datagrams int
	// Malformed counts records that did not parse and were skipped.
	Malformed int
	// SendErrors counts datagrams a socket refused.
	SendErrors int
}

// ErrOverwritten is what a Source returns (wrapped, or as syscall.EPIPE)
// when records at its position were overwritten; its next read returns
// the oldest record left.
var ErrOverwritten = errors.New("kmsg records overwritten")

// Source reads kernel log records one per Read, like /dev/kmsg opened
// non-blocking: io.EOF (or syscall.EAGAIN) when none is left, EPIPE (or
// ErrOverwritten) when records were overwritten since the last read.
type Source interface {
	Read(b []byte) (int, error)
}

// Run reads every record src holds and sends each one to every dest, paced
// by cfg. It stops at the end of src, at ctx's end, or after MaxRecords.
// The error is the first that stopped the replay or that a socket returned;
// Result holds the counts either way.
func Run(ctx context.Context, src Source, dests []Dest, cfg Config) (Result, error) {
	rate, burst, maxRec := cfg.Rate, cfg.Burst, cfg.MaxRecords
	if rate <= 0 {
		rate = DefaultRate
	}
	if burst <= 0 {
		burst = DefaultBurst
	}
	if maxRec <= 0 {
		maxRec = DefaultMaxRecords
	}
	prime := cfg.Prime
	if prime == 0 {
		prime = DefaultPrime
	}
	var res Result
	var firstErr error
	buf := make([]byte, 8192) // CONSOLE_EXT_LOG_MAX: a record always fits
	var dgrams [][]byte
	start := time.Now()
	inBurst := 0
	next := uint64(0) // the sequence number expected next
	for res.Records < maxRec {
		if err := ctx.Err(); err != nil {
			return res, fmt.Errorf("replay: %w", err)
		}
		n, err := src.Read(buf)
		if errors.Is(err, syscall.EPIPE) || errors.Is(err, ErrOverwritten) {
			continue // counted by the jump in sequence numbers
		}
		if err == io.EOF || errors.Is(err, syscall.EAGAIN) {
			break
		}
		if err != nil {
			return res, fmt.Errorf("replay: read kmsg: %w", err)
		}
		r, err := ParseRecord(buf[:n])
		if err != nil {
			res.Malformed++
			continue
		}
		if r.Seq < next {
			continue // not newer than what was sent: never sent twice
		}
		res.Overwritten += r.Seq - next
		next = r.Seq + 1
		if res.Records == 0 {
			res.First = r.Seq
		}
		res.Last = r.Seq
		res.Records++
		copies := 1
		if res.Records == 1 && prime > 0 {
			copies = 2
		}
		for c := range copies {
			if c > 0 {
				select {
				case <-ctx.Done():
					return res, fmt.Errorf("replay: %w", ctx.Err())
				case <-time.After(prime):
				}
			}
			var sent int
			var errs []error
			dgrams, sent, errs = sendAll(r, dests, dgrams)
			res.Datagrams += sent
			for _, e := range errs {
				res.SendErrors++
				if firstErr == nil {
					firstErr = e
				}
			}
			for ; sent > 0; sent-- {
				if inBurst++; inBurst >= burst {
					inBurst = 0
					due := start.Add(time.Duration(res.Datagrams) * time.Second / time.Duration(rate))
					if wait := time.Until(due); wait > 0 {
						select {
						case <-ctx.Done():
							return res, fmt.Errorf("replay: %w", ctx.Err())
						case <-time.After(wait):
						}
					}
				}
			}
		}
	}
	return res, firstErr
}

// sendAll sends record r to every destination, building its datagrams in
// buf, and returns buf for reuse, how many datagrams went out and the errors
// of those that did not.
func sendAll(r Record, dests []Dest, buf [][]byte) ([][]byte, int, []error) {
	sent := 0
	var errs []error
	for _, d := range dests {
		buf = r.AppendDatagrams(buf[:0], d.Release, d.Userdata)
		for _, g := range buf {
			if _, err := d.Conn.WriteTo(g, d.To); err != nil {
				errs = append(errs, fmt.Errorf("replay: send seq %d to %v: %w", r.Seq, d.To, err))
				continue
			}
			sent++
		}
	}
	return buf, sent, errs
}
