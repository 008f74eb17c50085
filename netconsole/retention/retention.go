package retention

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/lastgasp/lastgasp/store"
)

// Defaults used for zero Sweeper fields.
const (
	DefaultMaxAge   = 14 * 24 * time.Hour
	DefaultInterval = time.Hour
)

// metaSuffix ends the name of a crash record's metadata file.
const metaSuffix = ".json"

// Sweeper removes boot directories and crash records older than MaxAge from
// a store. A boot directory's age is that of its newest file (or of the
// directory itself, if newer), so a boot still being written is never
// removed; a crash record's age is that of the newer of its two files.
//
// Only what the collector writes is removed: logs and rotated logs
// (store.IsLogName), crash records and their metadata, and then the
// directories those leave empty. A boot directory holding anything else is
// kept and reported. Host directories and <host>/crash are never removed.
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
	// RemoveRecord, if set, removes the crash record whose data file is
	// at path, then its metadata file path+".json", so that a record is
	// never left without its metadata: pstore/ship/server's
	// (*Server).RemoveRecord, which also forgets the record. Nil removes
	// the two files in that order.
	RemoveRecord func(path string) error
}

// Result counts what one Sweep removed.
type Result struct {
	Boots   int // boot directories
	Records int // crash records (data and metadata) and orphaned metadata
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
			dir := filepath.Join(hostDir, e.Name())
			if e.Name() == store.CrashDir {
				n, err := s.sweepRecords(dir, cutoff)
				res.Records += n
				errs = append(errs, err)
				continue
			}
			removed, err := s.sweepBoot(dir, cutoff)
			if removed {
				res.Boots++
			}
			errs = append(errs, err)
		}
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

// sweepRecords removes the crash records in dir older than cutoff, and
// metadata files older than cutoff whose record is gone.
func (s *Sweeper) sweepRecords(dir string, cutoff time.Time) (int, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0, fmt.Errorf("retention: %w", err)
	}
	names := map[string]bool{}
	for _, e := range ents {
		names[e.Name()] = true
	}
	n := 0
	var errs []error
	for _, e := range ents {
		name := e.Name()
		if !e.Type().IsRegular() || strings.HasPrefix(name, ".") {
			continue // hidden: the upload server's temporary files
		}
		p := filepath.Join(dir, name)
		if base, ok := strings.CutSuffix(name, metaSuffix); ok {
			if names[base] {
				continue // removed with its record
			}
			if t, ok := modTime(p); ok && t.Before(cutoff) {
				if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
					errs = append(errs, fmt.Errorf("retention: %w", err))
					continue
				}
				s.logf("retention: removed orphaned metadata %s (written %s)", p, stamp(t))
				n++
			}
			continue
		}
		t, ok := modTime(p)
		if mt, mok := modTime(p + metaSuffix); mok && mt.After(t) {
			t = mt
		}
		if !ok || !t.Before(cutoff) {
			continue
		}
		if err := s.removeRecord(p); err != nil {
			errs = append(errs, fmt.Errorf("retention: crash record %s: %w", p, err))
			continue
		}
		s.logf("retention: removed crash record %s (stored %s)", p, stamp(t))
		n++
	}
	return n, errors.Join(errs...)
}

func (s *Sweeper) removeRecord(p string) error {
	if s.RemoveRecord != nil {
		return s.RemoveRecord(p)
	}
	return removeRecordFiles(p)
}

// removeRecordFiles removes a record's data file, then its metadata file.
func removeRecordFiles(p string) error {
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := os.Remove(p + metaSuffix); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// sweepBoot removes the boot directory dir if nothing in it was modified
// since cutoff.
func (s *Sweeper) sweepBoot(dir string, cutoff time.Time) (removed bool, err error) {
	check := func() error {
		newest, err := newestModTime(dir)
		if err != nil {
			return err
		}
		if !newest.Before(cutoff) {
			return nil
		}
		if err := s.removeBoot(dir); err != nil {
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

// removeBoot removes the logs and crash record links in dir, then dir.
func (s *Sweeper) removeBoot(dir string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		switch {
		case e.Type().IsRegular() && store.IsLogName(e.Name()):
			if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		case e.IsDir() && e.Name() == store.CrashDir:
			if err := removeCrashLinks(p); err != nil {
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

// removeCrashLinks removes the crash records in a boot directory's crash
// directory, each data file before its metadata, then the directory.
func removeCrashLinks(dir string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if name := e.Name(); e.Type().IsRegular() && !strings.HasSuffix(name, metaSuffix) && !strings.HasPrefix(name, ".") {
			if err := removeRecordFiles(filepath.Join(dir, name)); err != nil {
				return err
			}
		}
	}
	for _, e := range ents { // orphaned metadata
		if name := e.Name(); e.Type().IsRegular() && strings.HasSuffix(name, metaSuffix) && !strings.HasPrefix(name, ".") {
			if err := os.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		}
	}
	return os.Remove(dir)
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

func modTime(p string) (time.Time, bool) {
	fi, err := os.Lstat(p)
	if err != nil {
		return time.Time{}, false
	}
	return fi.ModTime(), true
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }
