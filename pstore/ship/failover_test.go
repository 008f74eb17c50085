package ship_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lastgasp/lastgasp/pstore/records"
	"github.com/lastgasp/lastgasp/pstore/ship"
	shipserver "github.com/lastgasp/lastgasp/pstore/ship/server"
)

// collector is a real upload server on loopback counting its requests,
// or one answering code without storing (code != 0).
type collector struct {
	url  string
	hits atomic.Int64
}

func startCollector(t *testing.T, code int) *collector {
	t.Helper()
	c := &collector{}
	real := &shipserver.Server{Root: t.TempDir(), BodyTimeout: -1}
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.hits.Add(1)
		if code != 0 {
			http.Error(w, "no", code)
			return
		}
		real.ServeHTTP(w, r)
	}))
	t.Cleanup(hs.Close)
	c.url = hs.URL
	return c
}

// closedURL is a loopback address nothing listens on.
func closedURL(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := "http://" + l.Addr().String()
	l.Close()
	return u
}

func recs(names ...string) []records.Record {
	var out []records.Record
	for _, n := range names {
		d := []byte("Kernel panic - not syncing: " + n + "\n")
		out = append(out, records.Record{Name: n, Data: d, Size: int64(len(d))})
	}
	return out
}

func TestShipAllFailover(t *testing.T) {
	ok := func(t *testing.T) *collector { return startCollector(t, 0) }
	tests := []struct {
		name          string
		setup         func(t *testing.T) (base string, fallback []string, first, second *collector)
		shipped, kept int
		firstHits     int64 // requests to the first collector (-1: not counted)
		secondHits    int64
	}{
		{"first down, second acknowledges", func(t *testing.T) (string, []string, *collector, *collector) {
			b := ok(t)
			return closedURL(t), []string{b.url}, nil, b
		}, 3, 0, -1, 3},
		{"first 503, later records go to the second", func(t *testing.T) (string, []string, *collector, *collector) {
			a, b := startCollector(t, http.StatusServiceUnavailable), ok(t)
			return a.url, []string{b.url}, a, b
		}, 3, 0, 1, 3},
		{"first 507 (disk full), third acknowledges", func(t *testing.T) (string, []string, *collector, *collector) {
			a, c := startCollector(t, http.StatusInsufficientStorage), ok(t)
			return a.url, []string{closedURL(t), c.url}, a, c
		}, 3, 0, 1, 3},
		{"first acknowledges, second never asked", func(t *testing.T) (string, []string, *collector, *collector) {
			a, b := ok(t), ok(t)
			return a.url, []string{b.url}, a, b
		}, 3, 0, 3, 0},
		{"first refuses for good (403): no failover, kept", func(t *testing.T) (string, []string, *collector, *collector) {
			a, b := startCollector(t, http.StatusForbidden), ok(t)
			return a.url, []string{b.url}, a, b
		}, 0, 3, 3, 0},
		{"all down: kept", func(t *testing.T) (string, []string, *collector, *collector) {
			a, b := startCollector(t, http.StatusServiceUnavailable), startCollector(t, http.StatusBadGateway)
			return a.url, []string{b.url}, a, b
		}, 0, 3, -1, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base, fb, first, second := tt.setup(t)
			c := &ship.Client{BaseURL: base, Fallback: fb, Host: "box", BootID: "b", Timeout: 2 * time.Second,
				Attempts: 2, Backoff: 10 * time.Millisecond}
			var removed []string
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			shipped, kept, err := ship.ShipAll(ctx, c, recs("dmesg-ramoops-0", "dmesg-ramoops-1", "console-ramoops-0"),
				func(r records.Record) error { removed = append(removed, r.Name); return nil }, t.Logf)
			if shipped != tt.shipped || kept != tt.kept || len(removed) != tt.shipped {
				t.Errorf("ShipAll = shipped %d, kept %d, removed %v (%v); want %d, %d", shipped, kept, removed, err, tt.shipped, tt.kept)
			}
			if (err != nil) != (tt.kept > 0) {
				t.Errorf("ShipAll err = %v with %d kept", err, tt.kept)
			}
			if first != nil && tt.firstHits >= 0 && first.hits.Load() != tt.firstHits {
				t.Errorf("first collector: %d requests, want %d", first.hits.Load(), tt.firstHits)
			}
			if second != nil && tt.secondHits >= 0 && second.hits.Load() != tt.secondHits {
				t.Errorf("acknowledging collector: %d requests, want %d", second.hits.Load(), tt.secondHits)
			}
		})
	}
}

// A collector that accepts the connection and never answers costs one
// Timeout, then the next is tried, within the caller's deadline.
func TestShipAllFailoverHungCollector(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close() // held open, never answered
		}
	}()
	b := startCollector(t, 0)
	c := &ship.Client{BaseURL: "http://" + l.Addr().String(), Fallback: []string{b.url}, Host: "box", Timeout: 300 * time.Millisecond}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	t0 := time.Now()
	shipped, kept, err := ship.ShipAll(ctx, c, recs("dmesg-ramoops-0", "dmesg-ramoops-1"), func(records.Record) error { return nil }, t.Logf)
	if shipped != 2 || kept != 0 {
		t.Fatalf("ShipAll = %d shipped, %d kept, %v; want 2, 0", shipped, kept, err)
	}
	// One timeout for the first record; the second starts at the collector that answered.
	if d := time.Since(t0); d > 2*time.Second || b.hits.Load() != 2 {
		t.Errorf("took %v, %d requests to the second collector; want < 2s and 2", d, b.hits.Load())
	}
}

func TestNoNetHTTPInShipClient(t *testing.T) {
	// The agent's upload client speaks HTTP itself (no net/http: image size).
	for _, dep := range shipDeps(t) {
		if dep == "net/http" || strings.HasPrefix(dep, "net/http/") {
			t.Fatalf("pstore/ship imports %s", dep)
		}
	}
}

func shipDeps(t *testing.T) []string {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", "github.com/lastgasp/lastgasp/pstore/ship").Output()
	if err != nil {
		t.Skipf("go list: %v", err)
	}
	return strings.Fields(string(out))
}
