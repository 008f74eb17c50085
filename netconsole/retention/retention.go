package retention

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/lastgasp/lastgasp/store"
)

// Defaults used for zero Sweeper fields.
const (
	DefaultMaxAge   = 14 * 24 * time.Hour
	DefaultInterval = time.Hour
)

// Sweeper removes boot directories and crash records older than MaxAge from
// a store. A boot directory's age is that of its newest file (or of the
// directory itself, if newer), so a boot still being written is never
// removed; a crash record's age is that of the newer of its two files.
//
// Only what the collector writes is removed: logs, rotated logs and the
// announcement's address (store.IsBootFile), and crash records, their metadata and links as
// store.Records removes them (Records.Expire, Records.RemoveLinks), and then
// the directories those leave empty. A boot directory holding anything
// else is kept and reported. Host directories and <host>/crash are never
// removed.
type Sweeper struct {
	// Root is the store: <Root>/<host>/<boot>/ and <Root>/<host>/crash/.
	// With Exclusive, it must be the Store's Root, spelled the same.
	Root string
	// MaxAge is how old what is removed must be. Zero means
	// DefaultMaxAge; negative disables removal.
	MaxAge time.Duration
	// Interval is how often Run sweeps. Zero means DefaultInterval.
	Interval time.Duration
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// Logf, if set, receives one line per removal and per problem.
	Logf func(format string, args ...any)
	// Exclusive, if set, runs fn while no log line is written to the
	// boot directory dir: receiver.(*Store).Exclusive, which also writes
	// out buffered lines first, so that their times count.
	Exclusive func(dir string, fn func() error) error
	// Records holds the crash records; the upload server's, so that it
	// forgets what is removed. Nil means one on Root.
	Records *store.Records
	// Removed, if set, is called with the path (relative to Root, '/'
	// separated, as store.Stored.Path) of each crash record and assembled
	// crash text removed: the signature index forgets it, so that no
	// link points at a removed record.
	Removed func(rel string)
	// Swept, if set, is called after each sweep with its cutoff: what
	// derives from the store (the file signature index) expires by the
	// same clock.
	Swept func(cutoff time.Time)

	once sync.Once
}

// Result counts what one Sweep removed.
type Result struct {
	Boots   int // boot directories
	Records int // crash records (data and metadata), assembled crashes and orphaned metadata
}

// Run sweeps now and then every Interval until ctx is done. Errors are
// logged, not returned.
func (s *Sweeper) Run(ctx context.Context) {
	if s.MaxAge < 0 {
		return
	}
	interval := s.Interval
	if interval <= 0 {
		interval = DefaultInterval
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := s.Sweep(); err != nil {
			s.logf("retention: %v", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Sweep removes what is older than MaxAge once. It carries on past
// problems with single files and returns them joined.
func (s *Sweeper) Sweep() (Result, error) {
	var res Result
	if s.MaxAge < 0 {
		return res, nil
	}
	maxAge := s.MaxAge
	if maxAge == 0 {
		maxAge = DefaultMaxAge
	}
	cutoff := s.now().Add(-maxAge)
	hosts, err := os.ReadDir(s.Root)
	if err != nil {
		return res, fmt.Errorf("retention: %w", err)
	}
	var errs []error
	for _, h := range hosts {
		if !h.IsDir() || strings.HasPrefix(h.Name(), ".") {
			continue
		}
		hostDir := filepath.Join(s.Root, h.Name())
		ents, err := os.ReadDir(hostDir)
		if err != nil {
			errs = append(errs, fmt.Errorf("retention: %w", err))
			continue
		}
		for _, e := range ents {
			if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
				continue
			}
			if e.Name() == store.CrashDir {
				n, err := s.sweepRecords(h.Name(), cutoff)
				res.Records += n
				errs = append(errs, err)
				continue
			}
			removed, err := s.sweepBoot(h.Name(), e.Name(), cutoff)
			if removed {
				res.Boots++
			}
			errs = append(errs, err)
		}
	}
	if s.Swept != nil {
		s.Swept(cutoff)
	}
	return res, errors.Join(errs...)
}

func (s *Sweeper) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Sweeper) logf(format string, args ...any) {
	if s.Logf != nil {
		s.Logf(format, args...)
	}
}

func (s *Sweeper) records() *store.Records {
	s.once.Do(func() {
		if s.Records == nil {
			s.Records = &store.Records{Root: s.Root}
		}
	})
	return s.Records
}

// sweepRecords has the store remove what is older than cutoff in the crash
// directory of the host directory host.
func (s *Sweeper) sweepRecords(host string, cutoff time.Time) (int, error) {
	gone, err := s.records().Expire(host, cutoff)
	for _, g := range gone {
		s.logf("retention: removed %s %s (written %s)", g.What, filepath.Join(s.Root, filepath.FromSlash(g.Path)), stamp(g.Time))
		if s.Removed != nil && g.What != "orphaned metadata" {
			s.Removed(g.Path)
		}
	}
	if err != nil {
		err = fmt.Errorf("retention: %w", err)
	}
	return len(gone), err
}

// sweepBoot removes the boot directory boot of the host directory host if
// nothing in it was modified since cutoff.
func (s *Sweeper) sweepBoot(host, boot string, cutoff time.Time) (removed bool, err error) {
	dir := filepath.Join(s.Root, host, boot)
	check := func() error {
		newest, err := newestModTime(dir)
		if err != nil {
			return err
		}
		if !newest.Before(cutoff) {
			return nil
		}
		if err := s.removeBoot(host, boot); err != nil {
			return err
		}
		removed = true
		s.logf("retention: removed boot directory %s (last written %s)", dir, stamp(newest))
		return nil
	}
	if s.Exclusive != nil {
		err = s.Exclusive(dir, check)
	} else {
		err = check()
	}
	if err != nil {
		return removed, fmt.Errorf("retention: boot directory %s: %w", dir, err)
	}
	return removed, nil
}

// removeBoot removes the logs, the announcement's address and the crash
// record links of a boot directory, then the directory.
func (s *Sweeper) removeBoot(host, boot string) error {
	dir := filepath.Join(s.Root, host, boot)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		switch {
		case e.Type().IsRegular() && store.IsBootFile(e.Name()):
			if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		case e.IsDir() && e.Name() == store.CrashDir:
			if err := s.records().RemoveLinks(host, boot); err != nil {
				return err
			}
		}
	}
	if err := os.Remove(dir); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("kept, it holds files lastgaspd did not write: %w", err)
	}
	return nil
}

// newestModTime returns the newest modification time of dir and anything
// in it, at any depth.
func newestModTime(dir string) (time.Time, error) {
	var newest time.Time
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if fi.ModTime().After(newest) {
			newest = fi.ModTime()
		}
		return nil
	})
	return newest, err
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }
