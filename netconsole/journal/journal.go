package journal

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lastgasp/lastgasp/netconsole/sink"
)

// Defaults used for zero Sink fields.
const (
	DefaultQueueSize     = sink.DefaultQueueSize
	DefaultMaxBatch      = 1000
	DefaultMaxBatchBytes = 1 << 20
	DefaultMinBackoff    = 100 * time.Millisecond
	DefaultMaxBackoff    = 30 * time.Second
	DefaultTimeout       = 30 * time.Second
)

// ContentType is the media type of the Journal Export Format.
const ContentType = "application/vnd.fdo.journal"

// Sink sends messages to one systemd-journal-remote. Set URL; the other
// fields are optional and must not change once Run started. A batch is sent
// again after a failed POST, so the remote may store an entry twice when
// it failed after writing; delivery is best effort.
type Sink struct {
	// URL is the remote's upload endpoint, such as
	// "http://127.0.0.1:19532/upload".
	URL string
	// Client makes the requests; nil means a client with DefaultTimeout
	// for each POST.
	Client *http.Client
	// QueueSize bounds the entries waiting to be sent; when it is full,
	// Send drops and counts. Zero means DefaultQueueSize.
	QueueSize int
	// MaxBatch and MaxBatchBytes bound the entries and bytes of one POST.
	// Zero means DefaultMaxBatch and DefaultMaxBatchBytes.
	MaxBatch, MaxBatchBytes int
	// MinBackoff and MaxBackoff bound the wait before a failed POST is
	// tried again, which doubles after each failure. Zero means
	// DefaultMinBackoff and DefaultMaxBackoff.
	MinBackoff, MaxBackoff time.Duration
	// Logf, if set, reports failed and refused POSTs.
	Logf func(format string, args ...any)

	once                sync.Once
	queue               sink.Queue
	inFlight            atomic.Int64
	sent, rejected      atomic.Uint64
	posts, postFailures atomic.Uint64
}

// Stats counts what a Sink did.
type Stats struct {
	// Enqueued is the messages accepted into the queue; Dropped is those
	// refused by the full queue or still held when Run returned.
	Enqueued, Dropped uint64
	// Sent is the entries the remote accepted (2xx); Rejected is those in
	// batches it refused with a 4xx other than 408 and 429, which are not
	// sent again.
	Sent, Rejected uint64
	// Posts is the POSTs made; PostFailures is those that failed (no
	// answer, 5xx, 408 or 429) and were tried again.
	Posts, PostFailures uint64
	// Queued is the entries waiting or being sent (a gauge).
	Queued int
}

// New returns a Sink for a remote given as "http://host:port" or
// "https://host:port" (the path /upload is added when there is none).
func New(rawURL string) (*Sink, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.User != nil || u.Fragment != "" {
		return nil, fmt.Errorf("journal: %q: want http://host:port or https://host:port", rawURL)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/upload"
	}
	return &Sink{URL: u.String()}, nil
}

func (s *Sink) init() { s.once.Do(func() { s.queue.Size = s.QueueSize }) }

// Send queues m as an export-format entry, or drops and counts it when the
// queue is full. It does not block and does not keep m: it implements
// sink.Sink. A zero m.Received is taken as now.
func (s *Sink) Send(m sink.Message) {
	s.init()
	if m.Received.IsZero() {
		m.Received = time.Now()
	}
	s.queue.Put(AppendEntry(nil, m))
}

var _ sink.Sink = (*Sink)(nil)

// Stats returns the Sink's counters.
func (s *Sink) Stats() Stats {
	s.init()
	enqueued, dropped, waiting := s.queue.Counts()
	return Stats{
		Enqueued: enqueued, Dropped: dropped,
		Sent: s.sent.Load(), Rejected: s.rejected.Load(),
		Posts: s.posts.Load(), PostFailures: s.postFailures.Load(),
		Queued: waiting + int(s.inFlight.Load()),
	}
}

// Run sends queued entries until ctx is done and returns nil then; entries
// still held are counted as dropped.
func (s *Sink) Run(ctx context.Context) error {
	s.init()
	if s.URL == "" {
		return errors.New("journal: no remote URL")
	}
	client := s.Client
	if client == nil {
		client = &http.Client{Timeout: DefaultTimeout}
	}
	maxN, maxBytes := s.MaxBatch, s.MaxBatchBytes
	if maxN <= 0 {
		maxN = DefaultMaxBatch
	}
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBatchBytes
	}
	minB, maxB := s.MinBackoff, s.MaxBackoff
	if minB <= 0 {
		minB = DefaultMinBackoff
	}
	if maxB <= 0 {
		maxB = DefaultMaxBackoff
	}
	backoff := minB
	var body bytes.Buffer
	for {
		// Wait for one entry, then take what else is queued.
		var first []byte
		select {
		case <-ctx.Done():
			s.abandon(0)
			return nil
		case first = <-s.queue.C():
		}
		body.Reset()
		body.Write(first)
		n := 1
		s.inFlight.Store(1)
	more:
		for n < maxN && body.Len() < maxBytes {
			select {
			case e := <-s.queue.C():
				body.Write(e)
				n++
				s.inFlight.Store(int64(n))
			default:
				break more
			}
		}
		for {
			retry, err := s.post(ctx, client, body.Bytes())
			if err == nil {
				s.sent.Add(uint64(n))
				backoff = minB
				break
			}
			if ctx.Err() != nil {
				s.abandon(n)
				return nil
			}
			if !retry {
				s.rejected.Add(uint64(n))
				s.logf("journal: %s: %v (%d entries dropped)", s.URL, err, n)
				break
			}
			s.postFailures.Add(1)
			s.logf("journal: %s: %v (retry in %v)", s.URL, err, backoff)
			select {
			case <-ctx.Done():
				s.abandon(n)
				return nil
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, maxB)
		}
		s.inFlight.Store(0)
	}
}

// post makes one POST of body and reports whether a failure is worth
// trying again.
func (s *Sink) post(ctx context.Context, client *http.Client, body []byte) (retry bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.URL, bytes.NewReader(body))
	if err != nil {
		return false, fmt.Errorf("request: %w", err)
	}
	req.Header.Set("Content-Type", ContentType)
	s.posts.Add(1)
	resp, err := client.Do(req)
	if err != nil {
		return true, err
	}
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	resp.Body.Close()
	switch c := resp.StatusCode; {
	case c >= 200 && c < 300:
		return false, nil
	case c >= 500 || c == http.StatusRequestTimeout || c == http.StatusTooManyRequests:
		return true, fmt.Errorf("remote answered %s: %q", resp.Status, bytes.TrimSpace(msg))
	default:
		return false, fmt.Errorf("remote refused the batch: %s: %q", resp.Status, bytes.TrimSpace(msg))
	}
}

// abandon counts the n entries being sent and those still queued as
// dropped, at the end of Run.
func (s *Sink) abandon(n int) {
	for {
		select {
		case <-s.queue.C():
			n++
			continue
		default:
		}
		break
	}
	s.queue.Drop(n)
	s.inFlight.Store(0)
}

func (s *Sink) logf(format string, args ...any) {
	if s.Logf != nil {
		s.Logf(format, args...)
	}
}
