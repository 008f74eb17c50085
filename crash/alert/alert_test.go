package alert

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/lastgasp/lastgasp/crash/signature"
	"github.com/lastgasp/lastgasp/store/sigindex"
)

func added(id string, newSig bool, host string) sigindex.Added {
	return sigindex.Added{NewCrash: true, NewSignature: newSig, Crash: sigindex.Crash{Host: host},
		Signature: sigindex.Signature{Signature: signature.Signature{ID: id, Title: "t " + id}}}
}

// TestNotifier: a new signature fires once; its next crashes are debounced;
// a rate jump of another signature fires; a receiver that fails twice gets
// the alert on the third try.
func TestNotifier(t *testing.T) {
	var mu sync.Mutex
	var got []Alert
	fails := 2
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if fails > 0 {
			fails--
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		var a Alert
		if err := json.NewDecoder(r.Body).Decode(&a); err != nil || r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("webhook body: %v", err)
		}
		got = append(got, a)
	}))
	defer srv.Close()
	now := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)
	n := &Notifier{URL: srv.URL, Backoff: 10 * time.Millisecond, Now: func() time.Time { return now }}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go n.Run(ctx)

	n.Notify(added("s1", true, "a"))
	for i := 0; i < 10; i++ { // s1 at a high rate, but within Debounce of its first alert
		n.Notify(added("s1", false, "b"))
	}
	// s2: one crash an hour for two hours, then 5 in the third: 5 >= 4 x 1.
	n.Notify(sigindex.Added{Crash: sigindex.Crash{Host: "c"}, NewCrash: false}) // a second copy: ignored
	n.Notify(added("s2", false, "c"))
	now = now.Add(90 * time.Minute)
	n.Notify(added("s2", false, "c"))
	now = now.Add(61 * time.Minute)
	for i := 0; i < 5; i++ {
		n.Notify(added("s2", false, "c"))
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		k := len(got)
		mu.Unlock()
		if k >= 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 2 || got[0].Reason != ReasonNew || got[0].Signature != "s1" || got[1].Reason != ReasonRate || got[1].Signature != "s2" || got[1].Window != 5 {
		t.Fatalf("webhooks = %+v, want new-signature s1, then rate-jump s2 (5 in the window)", got)
	}
	st := n.Stats()
	if st.Sent != 2 || st.Retries != 2 || st.Debounced == 0 {
		t.Errorf("Stats = %+v, want 2 sent, 2 retries, some debounced", st)
	}
}

// TestNotifierQueueBound: with no sender running, alerts beyond the queue
// are dropped and counted, and Notify does not block.
func TestNotifierQueueBound(t *testing.T) {
	n := &Notifier{URL: "http://127.0.0.1:1", Queue: 2}
	for i := 0; i < 5; i++ {
		n.Notify(added(string(rune('a'+i)), true, "h"))
	}
	if st := n.Stats(); st.Enqueued != 2 || st.Dropped != 3 {
		t.Errorf("Stats = %+v, want 2 queued, 3 dropped", st)
	}
}
