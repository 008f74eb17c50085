package pgstore_test

import (
	"bytes"
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lastgasp/lastgasp/store/pgstore"
)

// TestExpirer: records received more than MaxAge ago are deleted (the
// file store's -retention: strictly older than the cutoff), the others
// kept; the counter says how many; a second collector's expirer on the
// same database finds nothing left; MaxAge 0 keeps everything; Run
// deletes a record once it ages past MaxAge on a later tick.
func TestExpirer(t *testing.T) {
	ctx := context.Background()
	db, _ := newDB(t)
	now := time.Date(2026, 12, 16, 8, 0, 0, 0, time.UTC)
	const maxAge = 14 * 24 * time.Hour // cutoff 2026-12-02 08:00:00
	recs := &pgstore.Records{DB: db}
	put := func(host string, received time.Time) {
		t.Helper()
		data := []byte(fmt.Sprintf("boot\n%s%s %s\n", panicText, host, received))
		meta := record(host, "dmesg-ramoops-0", data)
		meta.Received = received
		if _, err := recs.Put(meta, bytes.NewReader(data), ""); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range []struct {
		host     string
		received time.Time
	}{
		{"old", time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)},
		{"just-older", time.Date(2026, 12, 2, 7, 59, 59, 0, time.UTC)},
		{"at-cutoff", time.Date(2026, 12, 2, 8, 0, 0, 0, time.UTC)},
		{"recent", time.Date(2026, 12, 15, 0, 0, 0, 0, time.UTC)},
	} {
		put(r.host, r.received)
	}

	keep := &pgstore.Expirer{DB: db, Now: func() time.Time { return now }}
	if n, err := keep.Sweep(ctx); err != nil || n != 0 {
		t.Errorf("Sweep with MaxAge 0 = %d, %v; want 0 (keep everything)", n, err)
	}
	x := &pgstore.Expirer{DB: db, MaxAge: maxAge, Now: func() time.Time { return now }, Logf: t.Logf}
	if n, err := x.Sweep(ctx); err != nil || n != 2 || x.Expired() != 2 {
		t.Errorf("Sweep = %d, %v (Expired %d); want 2", n, err, x.Expired())
	}
	for host, want := range map[string]int{"old": 0, "just-older": 0, "at-cutoff": 1, "recent": 1} {
		if n, err := db.CountRecords(ctx, host, ""); err != nil || n != want {
			t.Errorf("rows of %s after Sweep = %d, %v; want %d", host, n, err, want)
		}
	}
	other := &pgstore.Expirer{DB: db, MaxAge: maxAge, Now: func() time.Time { return now }}
	if n, err := other.Sweep(ctx); err != nil || n != 0 || other.Expired() != 0 {
		t.Errorf("second collector's Sweep = %d, %v; want 0", n, err)
	}

	// Run: the clock moves a day per sweep; at-cutoff ages out at once,
	// recent later.
	var day atomic.Int64
	run := &pgstore.Expirer{DB: db, MaxAge: maxAge, Interval: 20 * time.Millisecond,
		Now: func() time.Time { return now.Add(time.Duration(day.Add(1)) * 24 * time.Hour) }}
	rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	done := make(chan struct{})
	go func() { run.Run(rctx); close(done) }()
	for {
		n, err := db.CountRecords(ctx, "", "")
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		if rctx.Err() != nil {
			t.Fatalf("Run: %d rows left after 20 s", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	if got := run.Expired(); got != 2 {
		t.Errorf("Run Expired = %d, want 2", got)
	}
	// recent (12-15 00:00) is before the cutoff from now+13 days on
	// (12-29 08:00 - 14 days = 12-15 08:00), not at now+12 (12-14 08:00).
	if d := day.Load(); d < 13 {
		t.Errorf("recent deleted at now+%d days, want now+13 or later", d)
	}
}
