package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"
)

// Expired is one file Records.Expire removed.
type Expired struct {
	Path string    // relative to Root, '/' separators
	What string    // "crash record", "assembled crash", "orphaned metadata"
	Time time.Time // when it was last written
}

// Load indexes the records of every host directory under Root, once, so
// that Crashes covers them all. It writes nothing.
func (r *Records) Load() error {
	r.mu.Lock()
	done := r.loadedAll
	r.mu.Unlock()
	if done {
		return nil
	}
	ents, err := os.ReadDir(r.Root)
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	for _, e := range ents {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		if _, err := r.host(e.Name()); err != nil {
			r.logf("%v", err)
		}
	}
	r.mu.Lock()
	r.loadedAll = true
	r.mu.Unlock()
	return nil
}

// CleanTemps removes the temporary files in every host's crash directory.
// Call it before the first Put, when they can only be left by a process
// that died (kill -9, power loss) in the middle of an upload; nothing
// refers to them. It returns how many it removed.
func (r *Records) CleanTemps() (int, error) {
	hosts, err := os.ReadDir(r.Root)
	if err != nil {
		return 0, fmt.Errorf("store: %w", err)
	}
	n := 0
	var errs []error
	for _, h := range hosts {
		if !h.IsDir() || strings.HasPrefix(h.Name(), ".") {
			continue
		}
		dir := filepath.Join(r.Root, h.Name(), CrashDir)
		ents, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, e := range ents {
			if !strings.HasPrefix(e.Name(), TempPrefix) {
				continue
			}
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, fmt.Errorf("store: %w", err))
				continue
			}
			n++
		}
	}
	return n, errors.Join(errs...)
}

// Expire removes from the crash directory of the host directory hostDir
// the records (data, then metadata), assembled crash texts and orphaned
// metadata files last written before cutoff, and forgets them, so that a
// later upload of a removed record stores it again. A record's age is that
// of the newer of its two files. A part of a multi-part crash takes the
// crash's assembled text with it, however new (RemoveRecord). Temporary files and files the store does
// not write are left alone. It carries on past problems with single files
// and returns them joined.
func (r *Records) Expire(hostDir string, cutoff time.Time) ([]Expired, error) {
	hs, err := r.host(hostDir)
	if err != nil {
		return nil, err
	}
	hs.mu.Lock()
	defer hs.mu.Unlock()
	dir := filepath.Join(r.Root, hostDir, CrashDir)
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	names := map[string]bool{}
	for _, e := range ents {
		names[e.Name()] = true
	}
	var out []Expired
	var errs []error
	for _, e := range ents {
		name := e.Name()
		if !e.Type().IsRegular() || strings.HasPrefix(name, ".") {
			continue // temporary files, and what the store does not write
		}
		p := filepath.Join(dir, name)
		rel := path.Join(hostDir, CrashDir, name)
		t, ok := modTime(p)
		if base, isMeta := strings.CutSuffix(name, MetaSuffix); isMeta {
			if names[base] || !ok || !t.Before(cutoff) {
				continue // goes with its record
			}
			if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, fmt.Errorf("store: %w", err))
				continue
			}
			hs.used -= fileSize(e)
			out = append(out, Expired{Path: rel, What: "orphaned metadata", Time: t})
			continue
		}
		if mt, mok := modTime(p + MetaSuffix); mok && mt.After(t) {
			t = mt
		}
		if !ok || !t.Before(cutoff) {
			continue
		}
		if id, isText := strings.CutSuffix(name, AssembledSuffix); isText {
			if _, _, err := r.removeText(hs, id); err != nil {
				errs = append(errs, err)
				continue
			}
			out = append(out, Expired{Path: rel, What: "assembled crash", Time: t})
			continue
		}
		texts, err := r.removeLocked(hs, name)
		if err != nil {
			errs = append(errs, fmt.Errorf("store: crash record %s: %w", rel, err))
			if _, serr := os.Lstat(p); serr == nil {
				continue // the record is still there; else only its text failed
			}
		}
		out = append(out, Expired{Path: rel, What: "crash record", Time: t})
		for _, tx := range texts {
			// Written later than its part, but not the parts' text
			// any more: the part uploaded again assembles it again.
			out = append(out, Expired{Path: path.Join(hostDir, CrashDir, tx.name), What: "assembled crash", Time: tx.time})
		}
	}
	return out, errors.Join(errs...)
}

// RemoveLinks removes the crash subdirectory of the boot directory boot of
// the host directory hostDir: the hard links to records there (each data
// file before its metadata), then the directory. The canonical records in
// <host>/crash stay. A missing directory is not an error.
func (r *Records) RemoveLinks(hostDir, boot string) error {
	if boot == "" || boot == CrashDir || strings.ContainsAny(boot, `/\`) || boot == "." || boot == ".." {
		return fmt.Errorf("store: remove links: %q is not a boot directory", boot)
	}
	hs, err := r.host(hostDir)
	if err != nil {
		return err
	}
	hs.mu.Lock()
	defer hs.mu.Unlock()
	dir := filepath.Join(r.Root, hostDir, boot, CrashDir)
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	for _, meta := range []bool{false, true} {
		for _, e := range ents {
			name := e.Name()
			if !e.Type().IsRegular() || strings.HasPrefix(name, ".") || strings.HasSuffix(name, MetaSuffix) != meta {
				continue
			}
			if err := os.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("store: %w", err)
			}
			if e := hs.byBase[name]; e != nil && e.linked == boot {
				e.linked = ""
			}
		}
	}
	if err := os.Remove(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("store: %w", err)
	}
	return nil
}

func modTime(p string) (time.Time, bool) {
	fi, err := os.Lstat(p)
	if err != nil {
		return time.Time{}, false
	}
	return fi.ModTime(), true
}

func fileSize(e fs.DirEntry) int64 {
	if fi, err := e.Info(); err == nil {
		return fi.Size()
	}
	return 0
}
