package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// logFiles returns the contents of the log at path and its rotated files,
// oldest first, and checks that none is larger than limit.
func logFiles(t *testing.T, path string, limit int64) []string {
	t.Helper()
	var out []string
	for i := 1; ; i++ {
		b, err := os.ReadFile(RotatedName(path, i))
		if errors.Is(err, os.ErrNotExist) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append([]string{string(b)}, out...)
	}
	b, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	out = append(out, string(b))
	for i, f := range out {
		if limit > 0 && int64(len(f)) > limit {
			t.Errorf("log file %d of %d is %d bytes, want at most %d", i, len(out), len(f), limit)
		}
	}
	return out
}

func TestStoreRotate(t *testing.T) {
	for _, tt := range []struct {
		name       string
		bufferSize int
		keep       int
		wantFiles  int // including kernel.log
	}{
		{"buffered keep 2", 0, 2, 3},
		{"unbuffered keep 2", -1, 2, 3},
		{"keep none", 0, -1, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			st := &Store{Root: t.TempDir(), RotateSize: 100, RotateKeep: tt.keep, BufferSize: tt.bufferSize}
			var all []string
			for i := range 20 {
				l := fmt.Sprintf("line %02d %s", i, strings.Repeat("x", 21)) // 29 bytes + newline
				all = append(all, l)
				if err := st.Append("h", "b", l); err != nil {
					t.Fatalf("Append: %v", err)
				}
			}
			if err := st.Close(); err != nil {
				t.Fatal(err)
			}
			files := logFiles(t, st.Path("h", "b"), 100)
			if len(files) != tt.wantFiles {
				t.Fatalf("%d log files, want %d", len(files), tt.wantFiles)
			}
			// Three lines fit in 100 bytes; the files hold the last ones.
			got := strings.Join(files, "")
			want := strings.Join(all[len(all)-len(got)/30:], "\n") + "\n"
			if got != want || len(got)/30 != 2+3*(tt.wantFiles-1) {
				t.Errorf("logs hold %q, want the last %d lines", got, 2+3*(tt.wantFiles-1))
			}
		})
	}
}

func TestStoreRotateDisabledAndOversized(t *testing.T) {
	st := &Store{Root: t.TempDir(), RotateSize: -1}
	big := strings.Repeat("y", 1000)
	for range 3 {
		st.Append("h", "b", big)
	}
	st.Close()
	if files := logFiles(t, st.Path("h", "b"), 0); len(files) != 1 || len(files[0]) != 3003 {
		t.Errorf("rotation disabled: %d files, want one of 3003 bytes", len(files))
	}

	// One line larger than RotateSize goes to a file of its own.
	st = &Store{Root: t.TempDir(), RotateSize: 100}
	st.Append("h", "b", "small")
	st.Append("h", "b", big)
	st.Append("h", "b", "after")
	st.Close()
	files := logFiles(t, st.Path("h", "b"), 0)
	if diff := cmp.Diff([]string{"small\n", big + "\n", "after\n"}, files); diff != "" {
		t.Errorf("oversized line (-want +got):\n%s", diff)
	}
}

// TestStoreRotateExisting checks that a log written before a restart counts
// towards RotateSize, and that rotated files beyond RotateKeep go.
func TestStoreRotateExisting(t *testing.T) {
	st := &Store{Root: t.TempDir(), RotateSize: 100, RotateKeep: 1}
	p := st.Path("h", "b")
	os.MkdirAll(filepath.Dir(p), 0o750)
	os.WriteFile(p, []byte(strings.Repeat("o", 95)+"\n"), 0o640)
	os.WriteFile(RotatedName(p, 1), []byte("one\n"), 0o640)
	os.WriteFile(RotatedName(p, 2), []byte("two\n"), 0o640)
	os.WriteFile(RotatedName(p, 3), []byte("three\n"), 0o640)
	if err := st.Append("h", "b", "new line"); err != nil {
		t.Fatal(err)
	}
	st.Close()
	files := logFiles(t, p, 100)
	if diff := cmp.Diff([]string{strings.Repeat("o", 95) + "\n", "new line\n"}, files); diff != "" {
		t.Errorf("after restart (-want +got):\n%s", diff)
	}
}

// TestStoreRotateConcurrent appends from many goroutines to a few logs
// rotating all the time and checks that every line is in exactly one file,
// whole. Run with -race.
func TestStoreRotateConcurrent(t *testing.T) {
	st := &Store{Root: t.TempDir(), RotateSize: 512, RotateKeep: 1000, MaxOpenFiles: 2, BufferSize: 64}
	const writers, lines = 8, 300
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range lines {
				host := fmt.Sprintf("h%d", (w+i)%3)
				var err error
				if i%2 == 0 {
					err = st.Append(host, "b", fmt.Sprintf("w%d-%d", w, i))
				} else {
					err = st.Write(host, "b", []byte(fmt.Sprintf("w%d-%d\n", w, i)))
				}
				if err != nil {
					t.Errorf("append: %v", err)
				}
				if i%50 == 0 {
					st.Flush()
				}
			}
		})
	}
	wg.Wait()
	st.Close()
	seen := map[string]int{}
	for h := range 3 {
		for _, f := range logFiles(t, st.Path(fmt.Sprintf("h%d", h), "b"), 512) {
			for l := range strings.Lines(f) {
				seen[strings.TrimSuffix(l, "\n")]++
			}
		}
	}
	for w := range writers {
		for i := range lines {
			if l := fmt.Sprintf("w%d-%d", w, i); seen[l] != 1 {
				t.Errorf("line %q stored %d times, want once", l, seen[l])
			}
		}
	}
	if len(seen) != writers*lines {
		t.Errorf("%d distinct lines stored, want %d", len(seen), writers*lines)
	}
}

func TestStoreExclusive(t *testing.T) {
	st := &Store{Root: t.TempDir()}
	defer st.Close()
	st.Append("h", "b", "buffered")
	p := st.Path("h", "b")
	err := st.Exclusive(filepath.Dir(p), func() error {
		if b, _ := os.ReadFile(p); string(b) != "buffered\n" {
			t.Errorf("inside Exclusive, log = %q, want the buffered line written out", b)
		}
		return os.RemoveAll(filepath.Dir(p))
	})
	if err != nil {
		t.Fatal(err)
	}
	if n := st.openFiles(); n != 0 {
		t.Errorf("after Exclusive, %d files open, want 0", n)
	}
	if err := st.Append("h", "b", "later"); err != nil {
		t.Fatal(err)
	}
	st.Flush()
	if b, _ := os.ReadFile(p); string(b) != "later\n" {
		t.Errorf("after removal, log = %q, want it recreated", b)
	}
	want := errors.New("from fn")
	if err := st.Exclusive(filepath.Dir(p), func() error { return want }); err != want {
		t.Errorf("Exclusive = %v, want fn's error", err)
	}
}

func TestStorePrevBootDir(t *testing.T) {
	root := t.TempDir()
	// On disk from before a restart: b1 then b2 by log time, whatever
	// their names; a crash directory, boot-unknown and a directory
	// without a log do not count.
	base := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	for i, d := range []string{"zz-b1", "aa-b2", CrashDir, UnknownBoot} {
		p := filepath.Join(root, "h", d, LogName)
		if i == 1 {
			p = RotatedName(p, 1) // only a rotated log
		}
		os.MkdirAll(filepath.Dir(p), 0o750)
		os.WriteFile(p, []byte("x\n"), 0o640)
		mt := base.Add(time.Duration(i) * time.Hour)
		if err := os.Chtimes(p, mt, mt); err != nil {
			t.Fatal(err)
		}
	}
	os.MkdirAll(filepath.Join(root, "h", "nolog"), 0o750)

	st := &Store{Root: root}
	for _, tt := range []struct {
		name, host, boot, want string
	}{
		{"restored order", "h", "aa-b2", "h/zz-b1"},
		{"first boot", "h", "zz-b1", ""},
		{"unannounced uploader", "h", "b3", "h/aa-b2"},
		{"no boot id", "h", "", ""},
		{"unknown host", "other", "b", ""},
		{"escaped", "h/..", "b", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := st.PrevBootDir(tt.host, tt.boot); got != tt.want {
				t.Errorf("PrevBootDir(%q, %q) = %q, want %q", tt.host, tt.boot, got, tt.want)
			}
		})
	}

	st.NoteBoot("h", "b3")
	st.NoteBoot("h", "b3")
	if got := st.PrevBootDir("h", "b3"); got != "h/aa-b2" {
		t.Errorf("after NoteBoot(b3), PrevBootDir(b3) = %q, want h/aa-b2", got)
	}
	st.NoteBoot("h", "b4")
	if got := st.PrevBootDir("h", "b5"); got != "h/b4" {
		t.Errorf("PrevBootDir(b5) = %q, want h/b4", got)
	}
	// A host whose boots were never loaded: NoteBoot leaves it to the
	// disk, where the logs' times give the order.
	st.NoteBoot("x_y", "b1")
	st.Append("x_y", "b1", "first boot")
	old := time.Now().Add(-time.Hour)
	os.Chtimes(st.Path("x_y", "b1"), old, old)
	st.NoteBoot("x_y", "b2")
	st.Append("x_y", "b2", "second boot")
	if _, loaded := st.boots["x_y"]; loaded {
		t.Errorf("NoteBoot loaded the boots of x_y")
	}
	if got := st.PrevBootDir("x_y", "b2"); got != "x_y/b1" {
		t.Errorf("PrevBootDir(x_y, b2) = %q, want x_y/b1 (the upload's directory)", got)
	}
	st.PrevBootDir("many", "x") // loaded from now on
	for i := range maxBootsPerHost + 10 {
		st.NoteBoot("many", strconv.Itoa(i))
	}
	if n := len(st.boots["many"]); n != maxBootsPerHost {
		t.Errorf("%d boots remembered, want %d", n, maxBootsPerHost)
	}
}

func TestIsLogName(t *testing.T) {
	for name, want := range map[string]bool{
		"kernel.log": true, "kernel.log.1": true, "kernel.log.12": true,
		"kernel.log.": false, "kernel.log.1a": false, "kernel.log.-1": false, "kernel.logs": false,
		"crash": false, "kernel.log.1234567890": false,
	} {
		if got := IsLogName(name); got != want {
			t.Errorf("IsLogName(%q) = %v, want %v", name, got, want)
		}
	}
}

func FuzzIsLogName(f *testing.F) {
	for _, s := range []string{"kernel.log", "kernel.log.1", "kernel.log.", "kernel.log.01", "kernel.log.x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !IsLogName(s) || s == LogName {
			return
		}
		n, err := strconv.Atoi(strings.TrimPrefix(s, LogName+"."))
		if err != nil || n < 0 || !strings.HasPrefix(s, LogName+".") || strings.ContainsAny(s[len(LogName)+1:], "+-") {
			t.Fatalf("IsLogName(%q) = true, not a rotated log name", s)
		}
	})
}
