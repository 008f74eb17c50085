package forward

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lastgasp/lastgasp/netconsole/sink"
)

// Defaults used for zero Forwarder fields.
const (
	DefaultQueueSize   = sink.DefaultQueueSize
	DefaultMinBackoff  = 100 * time.Millisecond
	DefaultMaxBackoff  = 30 * time.Second
	DefaultDialTimeout = 10 * time.Second
	maxBatch           = 256
)

// Forwarder sends messages to one syslog server over TCP or TLS. Send
// never blocks: messages wait in a bounded queue and are dropped and counted
// when it is full. Run keeps a connection, reconnecting with exponential
// backoff; messages written on a connection that then failed are sent again
// on the next one (a server may see them twice; TCP syslog has no
// acknowledgements, so delivery is best effort). Set Addr; the other fields
// are optional and must not change once Run started.
type Forwarder struct {
	// Addr is the server's host:port.
	Addr string
	// TLS, if not nil, makes the connection TLS with this configuration
	// (RFC 5425).
	TLS *tls.Config
	// QueueSize bounds the messages waiting to be sent. Zero means
	// DefaultQueueSize.
	QueueSize int
	// MinBackoff and MaxBackoff bound the wait between connection
	// attempts, which doubles after each failure. Zero means
	// DefaultMinBackoff and DefaultMaxBackoff.
	MinBackoff, MaxBackoff time.Duration
	// Dial, if set, opens the TCP connection (tests); the default is a
	// net.Dialer with DefaultDialTimeout.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Logf, if set, reports connection failures.
	Logf func(format string, args ...any)

	once                         sync.Once
	queue                        sink.Queue
	sent, connects, connectFails atomic.Uint64
}

// Stats counts what a Forwarder did.
type Stats struct {
	// Enqueued and Dropped are the messages accepted into and refused by
	// the full queue; Sent is the messages written to a connection.
	Enqueued, Dropped, Sent uint64
	// Connects and ConnectFailures count connection attempts.
	Connects, ConnectFailures uint64
	// Queued is the messages waiting (a gauge).
	Queued int
}

// Stats returns the Forwarder's counters.
func (f *Forwarder) Stats() Stats {
	f.init()
	enqueued, dropped, waiting := f.queue.Counts()
	return Stats{
		Enqueued: enqueued, Dropped: dropped, Sent: f.sent.Load(),
		Connects: f.connects.Load(), ConnectFailures: f.connectFails.Load(), Queued: waiting,
	}
}

// New returns a Forwarder for a URL "tcp://host:port" or "tls://host:port"
// (tlsConfig, which may be nil for the defaults, applies to the latter).
func New(rawURL string, tlsConfig *tls.Config) (*Forwarder, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("forward: %w", err)
	}
	if u.Host == "" || u.Port() == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
		return nil, fmt.Errorf("forward: %q: want tcp://host:port or tls://host:port", rawURL)
	}
	f := &Forwarder{Addr: u.Host}
	switch u.Scheme {
	case "tcp":
	case "tls":
		f.TLS = tlsConfig
		if f.TLS == nil {
			f.TLS = &tls.Config{}
		}
		if f.TLS.ServerName == "" {
			f.TLS = f.TLS.Clone()
			f.TLS.ServerName = u.Hostname()
		}
	default:
		return nil, fmt.Errorf("forward: %q: scheme %q: want tcp or tls", rawURL, u.Scheme)
	}
	return f, nil
}

func (f *Forwarder) init() { f.once.Do(func() { f.queue.Size = f.QueueSize }) }

// Send queues m for sending, formatted and framed, or drops and counts it
// when the queue is full. It does not block and does not keep m: it
// implements sink.Sink.
func (f *Forwarder) Send(m sink.Message) {
	f.init()
	f.queue.Put(AppendFrame(nil, Format(m)))
}

var _ sink.Sink = (*Forwarder)(nil)

// Run sends queued messages until ctx is done, reconnecting as needed, and
// returns nil then. Messages still queued are not sent.
func (f *Forwarder) Run(ctx context.Context) error {
	f.init()
	if f.Addr == "" {
		return errors.New("forward: no server address")
	}
	minB, maxB := f.MinBackoff, f.MaxBackoff
	if minB <= 0 {
		minB = DefaultMinBackoff
	}
	if maxB <= 0 {
		maxB = DefaultMaxBackoff
	}
	backoff := minB
	var unacked [][]byte // written on the last connection, not known to have arrived
	for ctx.Err() == nil {
		conn, err := f.dial(ctx)
		if err != nil {
			f.connectFails.Add(1)
			f.logf("forward: connect to %s: %v (retry in %v)", f.Addr, err, backoff)
			select {
			case <-ctx.Done():
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, maxB)
			continue
		}
		f.connects.Add(1)
		start := time.Now()
		unacked, err = f.send(ctx, conn, unacked)
		conn.Close()
		if ctx.Err() != nil {
			return nil
		}
		f.logf("forward: connection to %s: %v", f.Addr, err)
		if time.Since(start) > maxB {
			backoff = minB // it worked for a while
		}
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, maxB)
	}
	return nil
}

func (f *Forwarder) dial(ctx context.Context) (net.Conn, error) {
	dctx, cancel := context.WithTimeout(ctx, DefaultDialTimeout)
	defer cancel()
	dial := f.Dial
	if dial == nil {
		dial = (&net.Dialer{KeepAlive: 30 * time.Second}).DialContext
	}
	conn, err := dial(dctx, "tcp", f.Addr)
	if err != nil {
		return nil, err
	}
	if f.TLS == nil {
		return conn, nil
	}
	tc := tls.Client(conn, f.TLS)
	if err := tc.HandshakeContext(dctx); err != nil {
		conn.Close()
		return nil, fmt.Errorf("tls handshake: %w", err)
	}
	return tc, nil
}

// send writes resend, then queued frames, to conn until a write fails or
// ctx is done. It returns the frames of the batch being written when the
// write failed, to send again.
func (f *Forwarder) send(ctx context.Context, conn net.Conn, resend [][]byte) ([][]byte, error) {
	stop := context.AfterFunc(ctx, func() { conn.SetWriteDeadline(time.Now()) })
	defer stop()
	// A syslog server sends nothing; a read returning means it closed.
	closed := make(chan error, 1)
	go func() {
		var b [1]byte
		_, err := conn.Read(b[:])
		if err == nil {
			err = errors.New("server sent data")
		}
		closed <- err
	}()
	w := bufio.NewWriterSize(conn, 64<<10)
	batch := resend
	for {
		if len(batch) == 0 {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case err := <-closed:
				return nil, fmt.Errorf("closed by server: %w", err)
			case fr := <-f.queue.C():
				batch = append(batch, fr)
			}
		}
	more:
		for len(batch) < maxBatch {
			select {
			case fr := <-f.queue.C():
				batch = append(batch, fr)
			default:
				break more
			}
		}
		for _, fr := range batch {
			w.Write(fr)
		}
		if err := w.Flush(); err != nil {
			return batch, err
		}
		f.sent.Add(uint64(len(batch)))
		batch = batch[:0]
		select {
		case err := <-closed:
			return nil, fmt.Errorf("closed by server: %w", err)
		default:
		}
	}
}

func (f *Forwarder) logf(format string, args ...any) {
	if f.Logf != nil {
		f.Logf(format, args...)
	}
}
