package retention

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/lastgasp/lastgasp/pstore/ship"
	"github.com/lastgasp/lastgasp/store"
)

var now = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// tree writes files under root with the given ages (how long before now
// they were modified) and returns root.
func tree(t *testing.T, files map[string]time.Duration) string {
	t.Helper()
	root := t.TempDir()
	var dirs []string
	for rel, age := range files {
		p := filepath.Join(root, filepath.FromSlash(rel))
		if strings.HasSuffix(rel, "/") {
			os.MkdirAll(p, 0o750)
		} else {
			os.MkdirAll(filepath.Dir(p), 0o750)
			if err := os.WriteFile(p, []byte(rel), 0o640); err != nil {
				t.Fatal(err)
			}
		}
		mt := now.Add(-age)
		if err := os.Chtimes(p, mt, mt); err != nil {
			t.Fatal(err)
		}
		dirs = append(dirs, filepath.Dir(p))
	}
	// Directories as old as the oldest file, so that their own times
	// (from creating the files) do not count.
	old := now.Add(-100 * 24 * time.Hour)
	slices.Sort(dirs)
	for _, d := range slices.Backward(dirs) {
		for ; d != root; d = filepath.Dir(d) {
			if fi, _ := os.Stat(d); fi != nil && fi.ModTime().After(now.Add(-time.Hour)) {
				os.Chtimes(d, old, old)
			}
		}
	}
	return root
}

// list returns the files and empty directories under root.
func list(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == root {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if ents, _ := os.ReadDir(p); len(ents) == 0 {
				out = append(out, rel+"/")
			}
			return nil
		}
		out = append(out, rel)
		return nil
	})
	slices.Sort(out)
	return out
}

const day = 24 * time.Hour

func TestSweep(t *testing.T) {
	root := tree(t, map[string]time.Duration{
		// An old boot with rotated logs and a crash record link.
		"h/old/kernel.log":          20 * day,
		"h/old/kernel.log.1":        21 * day,
		"h/old/crash/rec.0123.json": 20 * day,
		"h/old/crash/rec.0123":      20 * day,
		// An old log whose directory got a recent crash record.
		"h/linked/kernel.log":          20 * day,
		"h/linked/crash/rec.4567":      time.Hour,
		"h/linked/crash/rec.4567.json": time.Hour,
		// A boot written a minute ago, with an old rotated log.
		"h/live/kernel.log":   time.Minute,
		"h/live/kernel.log.1": 30 * day,
		// An old boot holding a file lastgaspd did not write.
		"h/notes/kernel.log": 20 * day,
		"h/notes/README":     20 * day,
		// An old, empty boot directory.
		"h/empty/": 20 * day,
		// Crash records: old, new, orphaned metadata old and new, an
		// old record with new metadata, an old temporary file.
		"h/crash/old.aa":         15 * day,
		"h/crash/old.aa.json":    15 * day,
		"h/crash/new.bb":         13 * day,
		"h/crash/new.bb.json":    13 * day,
		"h/crash/orphan.cc.json": 15 * day,
		"h/crash/orphan.dd.json": day,
		"h/crash/mixed.ee":       15 * day,
		"h/crash/mixed.ee.json":  day,
		"h/crash/.upload-1234":   30 * day,
		// An assembled multi-part crash (pstore/ship/server), old and new.
		"h/crash/old.ff.dmesg.txt":   15 * day,
		"h/crash/new.gg.dmesg.txt":   day,
		".hidden/old/kernel.log":     30 * day,
		"file-at-root":               30 * day,
		"h2/boot-unknown/kernel.log": 15 * day,
	})
	var logs []string
	recs := &store.Records{Root: root}
	oldDigest := ship.Digest([]byte("h/crash/old.aa")) // tree writes each file's name into it
	if _, ok, err := recs.Lookup("h", oldDigest); !ok || err != nil {
		t.Fatalf("h/crash/old.aa not indexed before the sweep: %v", err)
	}
	sw := &Sweeper{
		Root:    root,
		Now:     func() time.Time { return now },
		Logf:    func(format string, args ...any) { logs = append(logs, fmt.Sprintf(format, args...)) },
		Records: recs,
	}
	res, err := sw.Sweep()
	if err == nil || !strings.Contains(err.Error(), "h/notes") {
		t.Errorf("Sweep error = %v, want one about h/notes", err)
	}
	if want := (Result{Boots: 3, Records: 3}); res != want {
		t.Errorf("Sweep = %+v, want %+v", res, want)
	}
	want := []string{
		".hidden/old/kernel.log",
		"file-at-root",
		"h/crash/.upload-1234",
		"h/crash/mixed.ee",
		"h/crash/mixed.ee.json",
		"h/crash/new.bb",
		"h/crash/new.bb.json",
		"h/crash/new.gg.dmesg.txt",
		"h/crash/orphan.dd.json",
		"h/linked/crash/rec.4567",
		"h/linked/crash/rec.4567.json",
		"h/linked/kernel.log",
		"h/live/kernel.log",
		"h/live/kernel.log.1",
		"h/notes/README",
		"h2/", // host directories stay
	}
	if diff := cmp.Diff(want, list(t, root)); diff != "" {
		t.Errorf("left after Sweep (-want +got):\n%s", diff)
	}
	if _, ok, _ := recs.Lookup("h", oldDigest); ok {
		t.Errorf("h/crash/old.aa removed but still indexed: an upload of it would be a duplicate")
	}
	if n := len(logs); n != 6 { // 3 boots, a record, an assembled crash, an orphan
		t.Errorf("%d lines logged, want 6: %q", n, logs)
	}
	for _, want := range []string{"removed crash record " + filepath.Join(root, "h/crash/old.aa"), "removed assembled crash", "removed orphaned metadata"} {
		if !slices.ContainsFunc(logs, func(l string) bool { return strings.Contains(l, want) }) {
			t.Errorf("no log line with %q: %q", want, logs)
		}
	}

	// Disabled: nothing goes.
	sw.MaxAge = -1
	sw.Now = func() time.Time { return now.Add(365 * day) }
	if res, err := sw.Sweep(); err != nil || res != (Result{}) {
		t.Errorf("disabled Sweep = %+v, %v", res, err)
	}
	if diff := cmp.Diff(want, list(t, root)); diff != "" {
		t.Errorf("disabled Sweep removed (-want +got):\n%s", diff)
	}
}

// TestSweepBufferedLog checks, with a real store.Store, that a log whose
// file is old but which has lines waiting in the Store's buffer is not
// removed, and that one removed is recreated by the next line.
func TestSweepBufferedLog(t *testing.T) {
	root := t.TempDir()
	st := &store.Store{Root: root}
	defer st.Close()
	for _, boot := range []string{"busy", "idle"} {
		if err := st.Append("h", boot, "first"); err != nil {
			t.Fatal(err)
		}
	}
	st.Flush()
	old := time.Now().Add(-2 * time.Hour)
	for _, boot := range []string{"busy", "idle"} {
		p := st.Path("h", boot)
		os.Chtimes(p, old, old)
		os.Chtimes(filepath.Dir(p), old, old)
	}
	st.Append("h", "busy", "buffered, not yet written")

	sw := &Sweeper{Root: root, MaxAge: time.Hour, Logf: t.Logf, Exclusive: st.Exclusive}
	res, err := sw.Sweep()
	if err != nil || res != (Result{Boots: 1}) {
		t.Fatalf("Sweep = %+v, %v, want one boot removed", res, err)
	}
	if _, err := os.Stat(st.Path("h", "busy")); err != nil {
		t.Errorf("busy log: %v, want kept", err)
	}
	if _, err := os.Stat(filepath.Dir(st.Path("h", "idle"))); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("idle boot directory: %v, want removed", err)
	}
	if err := st.Append("h", "idle", "again"); err != nil {
		t.Fatal(err)
	}
	st.Flush()
	if b, _ := os.ReadFile(st.Path("h", "idle")); string(b) != "again\n" {
		t.Errorf("idle log after removal = %q, want recreated", b)
	}
}

func TestRun(t *testing.T) {
	root := tree(t, map[string]time.Duration{"h/b/kernel.log": 15 * day})
	ctx, cancel := context.WithCancel(context.Background())
	swept := make(chan string, 10)
	sw := &Sweeper{
		Root: root, Interval: time.Hour, Now: func() time.Time { return now },
		Logf: func(format string, args ...any) { swept <- format },
	}
	done := make(chan struct{})
	go func() { sw.Run(ctx); close(done) }()
	<-swept // the sweep at start
	cancel()
	<-done
	if got := list(t, root); !slices.Equal(got, []string{"h/"}) {
		t.Errorf("after Run, %q left", got)
	}
	if _, err := (&Sweeper{Root: filepath.Join(root, "missing")}).Sweep(); err == nil {
		t.Errorf("Sweep of a missing root = nil error")
	}
}

// TestSweepMultiPartCrash: the parts of a multi-part crash past the
// retention age take its assembled text with them, though the text was
// written later, and the sweep logs it.
func TestSweepMultiPartCrash(t *testing.T) {
	root := t.TempDir()
	recs := &store.Records{Root: root, MinFree: -1}
	const id = "dmesg-efi-Panic-1-1764064800"
	var text string
	var parts []string
	for p := 1; p <= 2; p++ {
		data := fmt.Appendf(nil, "Panic#1 Part%d\npart %d\n", p, p)
		meta := store.RecordMeta{Metadata: ship.Metadata{Host: "h", RecordName: fmt.Sprintf("dmesg-efi-%d", p), Digest: ship.Digest(data),
			Size: int64(len(data)), CrashID: id, Part: p, Parts: 2}}
		st, err := recs.Put(meta, strings.NewReader(string(data)), "")
		if err != nil {
			t.Fatal(err)
		}
		old := now.Add(-15 * day)
		for _, f := range []string{st.Path, st.Path + store.MetaSuffix} {
			if err := os.Chtimes(filepath.Join(root, f), old, old); err != nil {
				t.Fatal(err)
			}
		}
		text = st.Assembled
		parts = append(parts, st.Path)
	}
	if text == "" {
		t.Fatal("the crash was not assembled")
	}
	fresh := now.Add(-day)
	if err := os.Chtimes(filepath.Join(root, text), fresh, fresh); err != nil {
		t.Fatal(err)
	}
	var logs, removed []string
	var cutoffs []time.Time
	sw := &Sweeper{Root: root, Records: recs, Now: func() time.Time { return now },
		Logf:    func(format string, args ...any) { logs = append(logs, fmt.Sprintf(format, args...)) },
		Removed: func(rel string) { removed = append(removed, rel) },
		Swept:   func(cutoff time.Time) { cutoffs = append(cutoffs, cutoff) }}
	res, err := sw.Sweep()
	if err != nil || res.Records != 3 {
		t.Errorf("Sweep = %+v, %v; want 3 removed (2 parts, their text)", res, err)
	}
	// The signature index forgets what the hooks name: each part's record
	// and the assembled text, by the paths Put returned.
	slices.Sort(removed)
	want := []string{parts[0], parts[1], text}
	slices.Sort(want)
	if !slices.Equal(removed, want) {
		t.Errorf("Removed called with %q, want %q", removed, want)
	}
	if wantCut := now.Add(-DefaultMaxAge); !slices.Equal(cutoffs, []time.Time{wantCut}) {
		t.Errorf("Swept called with %v, want once with %v", cutoffs, wantCut)
	}
	if left := list(t, root); !slices.Equal(left, []string{"h/crash/"}) {
		t.Errorf("left after Sweep: %q, want an empty crash directory", left)
	}
	if !slices.ContainsFunc(logs, func(l string) bool { return strings.Contains(l, "removed assembled crash "+filepath.Join(root, text)) }) {
		t.Errorf("no log line for the assembled text: %q", logs)
	}
}
