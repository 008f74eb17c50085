// Package alert posts a JSON webhook when a crash signature is new or its
// rate jumps: debounced per signature, queued in a bounded queue, and
// retried with exponential backoff.
package alert

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lastgasp/lastgasp/store/sigindex"
)

// Reasons of an alert.
const (
	ReasonNew  = "new-signature"
	ReasonRate = "rate-jump"
)

// Defaults for zero Notifier fields.
const (
	DefaultQueue    = 256
	DefaultDebounce = time.Hour
	DefaultWindow   = time.Hour
	DefaultFactor   = 4
	DefaultMinRate  = 5
	DefaultAttempts = 6
	DefaultBackoff  = time.Second
	DefaultTimeout  = 10 * time.Second
)

// Alert is the webhook's JSON body.
type Alert struct {
	Reason    string    `json:"reason"` // ReasonNew or ReasonRate
	Signature string    `json:"signature"`
	Kind      string    `json:"kind"`
	Title     string    `json:"title"`
	Frames    []string  `json:"frames,omitempty"`
	Count     int       `json:"count"`          // crashes of the signature
	Window    int       `json:"window_count"`   // crashes in the last Window
	Previous  int       `json:"previous_count"` // crashes in the Window before
	Hosts     []string  `json:"hosts"`          // hosts so far (at most 20)
	Host      string    `json:"host"`           // the host of the crash that fired it
	FirstSeen time.Time `json:"first_seen"`
	Time      time.Time `json:"time"`
}

// Stats counts what a Notifier did.
type Stats struct {
	Enqueued, Sent, Failed, Dropped, Retries, Debounced uint64
	Queued                                              int
}

// Notifier decides on alerts from the index's Add results (Notify) and
// posts them to URL.
//
// A new signature fires once (Added.NewSignature: with a shared index,
// on one collector only). A rate jump fires when the crashes of a
// signature in the last Window are at least MinRate and at least Factor
// times those of the Window before. After an alert a signature stays
// quiet for Debounce. Rates are counted in memory from this collector's
// Adds.
type Notifier struct {
	URL      string
	Client   *http.Client // nil: one with Timeout
	Queue    int          // alerts waiting at most; more are dropped and counted
	Debounce time.Duration
	Window   time.Duration
	Factor   int
	MinRate  int
	Attempts int           // tries per alert
	Backoff  time.Duration // first retry delay, doubled each time
	Timeout  time.Duration
	Logf     func(format string, args ...any)
	Now      func() time.Time

	once  sync.Once
	q     chan Alert
	mu    sync.Mutex
	sigs  map[string]*sigRate
	stats struct{ enqueued, sent, failed, dropped, retries, debounced atomic.Uint64 }
}

// sigRate is the recent crash times of one signature.
type sigRate struct {
	times     []time.Time // within 2 windows
	lastAlert time.Time
}

// maxTracked bounds the signatures whose rate is tracked; the oldest
// alerted are forgotten first.
const maxTracked = 100000

func (n *Notifier) init() {
	n.once.Do(func() {
		n.q = make(chan Alert, cmp.Or(n.Queue, DefaultQueue))
		n.sigs = map[string]*sigRate{}
		if n.Client == nil {
			n.Client = &http.Client{Timeout: cmp.Or(n.Timeout, DefaultTimeout)}
		}
	})
}

func (n *Notifier) now() time.Time {
	if n.Now != nil {
		return n.Now()
	}
	return time.Now()
}

// Notify takes one Add result; it never blocks.
func (n *Notifier) Notify(a sigindex.Added) {
	if !a.NewCrash {
		return // another copy of a crash already counted
	}
	n.init()
	now := n.now()
	win := cmp.Or(n.Window, DefaultWindow)
	n.mu.Lock()
	r := n.sigs[a.Signature.ID]
	if r == nil {
		if len(n.sigs) >= maxTracked {
			for k := range n.sigs { // any: a map's order is random enough
				delete(n.sigs, k)
				break
			}
		}
		r = &sigRate{}
		n.sigs[a.Signature.ID] = r
	}
	r.times = append(r.times, now)
	for len(r.times) > 0 && now.Sub(r.times[0]) > 2*win {
		r.times = r.times[1:]
	}
	cur, prev := 0, 0
	for _, t := range r.times {
		if now.Sub(t) <= win {
			cur++
		} else {
			prev++
		}
	}
	reason := ""
	switch {
	case a.NewSignature:
		reason = ReasonNew
	case cur >= cmp.Or(n.MinRate, DefaultMinRate) && cur >= cmp.Or(n.Factor, DefaultFactor)*max(prev, 1):
		reason = ReasonRate
	}
	if reason != "" && !r.lastAlert.IsZero() && now.Sub(r.lastAlert) < cmp.Or(n.Debounce, DefaultDebounce) {
		n.stats.debounced.Add(1)
		reason = ""
	}
	if reason != "" {
		r.lastAlert = now
	}
	n.mu.Unlock()
	if reason == "" {
		return
	}
	s := a.Signature
	hosts := s.Hosts
	if len(hosts) > 20 {
		hosts = hosts[:20]
	}
	al := Alert{Reason: reason, Signature: s.ID, Kind: string(s.Kind), Title: s.Title, Frames: s.Frames, Count: s.Count,
		Window: cur, Previous: prev, Hosts: hosts, Host: a.Crash.Host, FirstSeen: s.FirstSeen, Time: now.UTC()}
	select {
	case n.q <- al:
		n.stats.enqueued.Add(1)
	default:
		n.stats.dropped.Add(1)
	}
}

// Run posts the queued alerts until ctx is done.
func (n *Notifier) Run(ctx context.Context) error {
	n.init()
	for {
		select {
		case <-ctx.Done():
			n.stats.dropped.Add(uint64(len(n.q)))
			return nil
		case a := <-n.q:
			n.send(ctx, a)
		}
	}
}

func (n *Notifier) send(ctx context.Context, a Alert) {
	body, _ := json.Marshal(a)
	delay := cmp.Or(n.Backoff, DefaultBackoff)
	attempts := cmp.Or(n.Attempts, DefaultAttempts)
	for i := 0; i < attempts; i++ {
		if i > 0 {
			n.stats.retries.Add(1)
			select {
			case <-ctx.Done():
				n.stats.failed.Add(1)
				return
			case <-time.After(delay):
			}
			delay *= 2
		}
		err := n.post(ctx, body)
		if err == nil {
			n.stats.sent.Add(1)
			return
		}
		n.logf("alert: %s %s: attempt %d of %d: %v", a.Reason, a.Signature, i+1, attempts, err)
	}
	n.stats.failed.Add(1)
}

func (n *Notifier) post(ctx context.Context, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.URL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("webhook %s: %w", n.URL, err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := n.Client.Do(req)
	if err != nil {
		return fmt.Errorf("webhook: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("webhook answered %s", resp.Status)
	}
	return nil
}

func (n *Notifier) logf(format string, args ...any) {
	if n.Logf != nil {
		n.Logf(format, args...)
	}
}

// Stats returns the counters.
func (n *Notifier) Stats() Stats {
	n.init()
	return Stats{Enqueued: n.stats.enqueued.Load(), Sent: n.stats.sent.Load(), Failed: n.stats.failed.Load(),
		Dropped: n.stats.dropped.Load(), Retries: n.stats.retries.Load(), Debounced: n.stats.debounced.Load(), Queued: len(n.q)}
}
