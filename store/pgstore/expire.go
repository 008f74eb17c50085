package pgstore

import (
	"context"
	"sync/atomic"
	"time"
)

// DefaultExpireInterval is how often an Expirer deletes old records: the
// file store's retention sweep runs hourly too.
const DefaultExpireInterval = time.Hour

// Expirer deletes the shared crash store's records received more than
// MaxAge ago, at start and then every Interval: the database's side of
// lastgaspd's -retention, which removes a file store's records of that
// age, and the signature index's sightings of those records and those
// added before the same cutoff (Index.Expire). Every collector of a
// database may run one; a row is deleted once, by whichever gets to it,
// and counted by that one.
type Expirer struct {
	// DB is the shared database.
	DB *DB
	// MaxAge is how long a record is kept after it was received; zero or
	// negative keeps every record (Run returns at once).
	MaxAge time.Duration
	// Interval is the time between runs; zero means DefaultExpireInterval.
	Interval time.Duration
	// Now returns the time; nil means time.Now.
	Now func() time.Time
	// Logf, if set, receives a line per run that deleted rows and per
	// failure.
	Logf func(format string, args ...any)

	expired, sightings, failures atomic.Uint64
}

// SightingsExpired returns how many index sightings this Expirer deleted
// for their age (not counting those that went with their records).
func (x *Expirer) SightingsExpired() uint64 { return x.sightings.Load() }

// Expired returns how many records this Expirer deleted.
func (x *Expirer) Expired() uint64 { return x.expired.Load() }

// Failures returns how many runs failed (the database was down).
func (x *Expirer) Failures() uint64 { return x.failures.Load() }

func (x *Expirer) logf(format string, args ...any) {
	if x.Logf != nil {
		x.Logf(format, args...)
	}
}

// Sweep deletes the records older than MaxAge, then the sightings, once
// and returns how many records.
func (x *Expirer) Sweep(ctx context.Context) (int64, error) {
	if x.MaxAge <= 0 {
		return 0, nil
	}
	now := time.Now
	if x.Now != nil {
		now = x.Now
	}
	cutoff := now().Add(-x.MaxAge)
	n, err := x.DB.Expire(ctx, cutoff)
	if err != nil {
		x.failures.Add(1)
		return 0, err
	}
	x.expired.Add(uint64(n))
	if n > 0 {
		x.logf("retention: %d crash records received before %s deleted from %s", n, cutoff.UTC().Format(time.RFC3339), x.DB)
	}
	ns, err := x.DB.Index().Expire(ctx, cutoff)
	if err != nil {
		x.failures.Add(1)
		return n, err
	}
	x.sightings.Add(uint64(ns))
	if ns > 0 {
		x.logf("retention: %d signature index sightings added before %s deleted from %s", ns, cutoff.UTC().Format(time.RFC3339), x.DB)
	}
	return n, nil
}

// Run sweeps now and then every Interval until ctx is done. Errors are
// logged, not returned: the next run tries again.
func (x *Expirer) Run(ctx context.Context) {
	if x.MaxAge <= 0 {
		return
	}
	interval := x.Interval
	if interval <= 0 {
		interval = DefaultExpireInterval
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := x.Sweep(ctx); err != nil && ctx.Err() == nil {
			x.logf("retention: %v", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
