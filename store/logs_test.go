package store

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestStoreAppendLayout(t *testing.T) {
	st := &Store{Root: t.TempDir(), MaxOpenFiles: 2}
	defer st.Close()
	for i := range 5 {
		for _, boot := range []string{"", "b"} {
			if err := st.Append(fmt.Sprintf("h%d", i%3), boot, fmt.Sprintf("line %d", i)); err != nil {
				t.Fatalf("Append: %v", err)
			}
		}
	}
	if err := st.Append("../x", "b", "z"); err != nil {
		t.Fatalf("Append: %v", err)
	}
	if err := st.Flush(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(st.Root, "h0", UnknownBoot, LogName))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(b), "line 0\nline 3\n"; got != want {
		t.Errorf("h0 log = %q, want %q", got, want)
	}
	if _, err := os.Stat(filepath.Join(st.Root, "%%2e.%2fx", "b", LogName)); err != nil {
		t.Errorf("escaped path: %v", err)
	}
	if n := st.openFiles(); n > 2 {
		t.Errorf("%d files open, want at most 2", n)
	}
	for _, boot := range []string{"crash", "boot-unknown", "../../y", "a/b"} {
		if err := st.Append("h", boot, "x"); err == nil {
			t.Errorf("Append(boot %q) = nil, want an error", boot)
		} else if boot == "crash" && !errors.Is(err, ErrReservedName) {
			t.Errorf("Append(boot %q) = %v, want ErrReservedName", boot, err)
		}
	}
	if _, err := os.Stat(filepath.Join(st.Root, "h", CrashDir, LogName)); err == nil {
		t.Errorf("a kernel.log was written into the crash directory")
	}
	if err := (&Store{}).Append("h", "b", "x"); err == nil {
		t.Errorf("Append without Root = nil, want error")
	}
}

func TestStoreBuffered(t *testing.T) {
	st := &Store{Root: t.TempDir(), BufferSize: 4096}
	defer st.Close()
	if err := st.Append("h", "b", "one"); err != nil {
		t.Fatal(err)
	}
	path := st.Path("h", "b")
	if b, _ := os.ReadFile(path); len(b) != 0 {
		t.Errorf("before Flush: %q, want nothing (buffered)", b)
	}
	if err := st.Flush(); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); string(b) != "one\n" {
		t.Errorf("after Flush: %q, want %q", b, "one\n")
	}
	unbuf := &Store{Root: t.TempDir()}
	defer unbuf.Close()
	unbuf.Append("h", "b", "two")
	unbuf.Write("h", "b", []byte("three\nfour\n"))
	if b, _ := os.ReadFile(unbuf.Path("h", "b")); string(b) != "two\nthree\nfour\n" {
		t.Errorf("unbuffered: %q, want every line at once", b)
	}
	if n := unbuf.Stats().Opens; n != 1 {
		t.Errorf("Stats().Opens = %d, want 1 (the log stays open)", n)
	}
}

// TestStoreWriteSplitsBatches checks that one batch larger than the room
// left is split between files at line boundaries, so rotation keeps its
// bound with batched writes.
func TestStoreWriteSplitsBatches(t *testing.T) {
	st := &Store{Root: t.TempDir(), RotateSize: 25, RotateKeep: 5}
	defer st.Close()
	// 9 lines of 10 bytes: files of at most 2 lines (20 bytes).
	batch := []byte("line 0001\nline 0002\nline 0003\nline 0004\nline 0005\nline 0006\nline 0007\nline 0008\nline 0009\n")
	if err := st.Write("h", "b", batch); err != nil {
		t.Fatal(err)
	}
	path := st.Path("h", "b")
	var all string
	for i := 4; i >= 0; i-- {
		p := path
		if i > 0 {
			p = RotatedName(path, i)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if len(b) > 25 || len(b) == 0 || b[len(b)-1] != '\n' {
			t.Errorf("%s = %q: want whole lines, at most 25 bytes", p, b)
		}
		all += string(b)
	}
	if all != string(batch) {
		t.Errorf("files together = %q, want the batch in order", all)
	}
}

// TestPrevBootFrom checks that the address a boot was announced from is
// kept on disk, first announcement first, and found by a new Store (a
// restarted collector).
func TestPrevBootFrom(t *testing.T) {
	root := t.TempDir()
	st := &Store{Root: root}
	real, spoof := netip.MustParseAddr("10.0.0.5"), netip.MustParseAddr("10.9.9.9")
	if err := st.NoteBootFrom("box", "b1", real); err != nil {
		t.Fatal(err)
	}
	if err := st.NoteBootFrom("box", "b1", spoof); err != nil {
		t.Fatal(err)
	}
	st.Append("box", "b1", "a line of b1")
	old := time.Now().Add(-time.Minute)
	os.Chtimes(st.Path("box", "b1"), old, old)
	if err := st.NoteBootFrom("box", "crash", real); !errors.Is(err, ErrReservedName) {
		t.Errorf("NoteBootFrom(boot crash) = %v, want ErrReservedName", err)
	}
	again := &Store{Root: root}
	dir, from := again.PrevBootFrom("box", "b2")
	if dir != "box/b1" || from != real {
		t.Errorf("PrevBootFrom(box, b2) = %q, %v; want box/b1, %v (the first announcement)", dir, from, real)
	}
	if dir, from := again.PrevBootFrom("box", "b1"); dir != "" || from.IsValid() {
		t.Errorf("PrevBootFrom(box, b1) = %q, %v; want nothing before the first boot", dir, from)
	}
	if !IsBootFile(AnnouncedName) || !IsBootFile(LogName) || IsBootFile("other") {
		t.Errorf("IsBootFile disagrees with the layout")
	}
}

// TestStoreDescriptors counts the process's descriptors: writing to more
// logs than MaxOpenFiles keeps at most that many open, and Close closes
// them all (the store holds plain descriptors, which nothing finalizes).
func TestStoreDescriptors(t *testing.T) {
	fds := func() int {
		ents, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Skipf("no /proc/self/fd: %v", err)
		}
		return len(ents)
	}
	const maxOpen = 32
	st := &Store{Root: t.TempDir(), MaxOpenFiles: maxOpen}
	before := fds()
	for i := range 200 {
		if err := st.Write(fmt.Sprintf("h%d", i), "b", []byte("line\n")); err != nil {
			t.Fatal(err)
		}
		if n := fds() - before; n > maxOpen {
			t.Fatalf("after %d logs: %d more descriptors, want at most %d", i+1, n, maxOpen)
		}
	}
	if n := st.Stats().OpenFiles; n == 0 || n > maxOpen {
		t.Errorf("OpenFiles = %d, want 1 to %d", n, maxOpen)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if n := fds() - before; n > 0 {
		t.Errorf("after Close: %d more descriptors than before, want none", n)
	}
	for _, i := range []int{0, 199} {
		if b, _ := os.ReadFile(st.Path(fmt.Sprintf("h%d", i), "b")); string(b) != "line\n" {
			t.Errorf("h%d log = %q, want %q", i, b, "line\n")
		}
	}
}
