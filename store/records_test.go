package store

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/lastgasp/lastgasp/pstore/records"
	"github.com/lastgasp/lastgasp/pstore/ship"
)

func put(t testing.TB, r *Records, host, name string, data []byte, link string) (Stored, error) {
	t.Helper()
	return r.Put(RecordMeta{Metadata: ship.Metadata{Host: host, RecordName: name, Digest: ship.Digest(data), Size: int64(len(data))}},
		bytes.NewReader(data), link)
}

// TestRecordsOneHostDirectory: an upload for a name the protocol accepts
// lands in the same directory as that host's netconsole logs (HostDir).
func TestRecordsOneHostDirectory(t *testing.T) {
	for _, host := range []string{"box_1", "box_5f1", "a..b", strings.Repeat("h", 200)} {
		r := &Records{Root: t.TempDir()}
		st, err := put(t, r, host, "dmesg-ramoops-0", []byte("x"), "")
		if err != nil {
			t.Fatal(err)
		}
		logs := (&Store{Root: r.Root}).Path(host, "b1")
		if got, want := strings.SplitN(st.Path, "/", 2)[0], filepath.Base(filepath.Dir(filepath.Dir(logs))); got != want || got != host {
			t.Errorf("host %q: record in %q, logs in %q; want both in %q", host, got, want, host)
		}
	}
}

func TestRecordsLink(t *testing.T) {
	for _, tt := range []struct {
		name, link, want string
	}{
		{"the host's boot", "h/b1", "h/b1"},
		{"another host's boot", "other/b1", ""},
		{"the crash directory", "h/crash", ""},
		{"boot-unknown", "h/boot-unknown", ""},
		{"traversal", "h/..", ""},
		{"too deep", "h/b1/crash", ""},
		{"missing boot directory", "h/b9", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			for _, d := range []string{"h/b1", "h/boot-unknown", "other/b1"} {
				os.MkdirAll(filepath.Join(root, d), 0o750)
			}
			r := &Records{Root: root, Logf: t.Logf}
			st, err := put(t, r, "h", "dmesg-ramoops-0", []byte("x"), tt.link)
			if err != nil {
				t.Fatal(err)
			}
			if st.Linked != tt.want {
				t.Errorf("Linked = %q, want %q", st.Linked, tt.want)
			}
			var links []string
			filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
				if err == nil && !d.IsDir() && !strings.HasPrefix(p, filepath.Join(root, "h", "crash")) {
					links = append(links, p)
				}
				return nil
			})
			if n := map[bool]int{true: 2, false: 0}[tt.want != ""]; len(links) != n {
				t.Errorf("links %q, want %d", links, n)
			}
		})
	}
}

func FuzzPanicScanner(f *testing.F) {
	f.Add([]byte("<0>[    1.0] Kernel panic - not syncing: x\n"), uint8(3))
	f.Add([]byte("a\nb\n[  2.0] Oops: y"), uint8(1))
	f.Add([]byte("\n\n<4>BUG: z\r\nKernel panic - not syncing: later\n"), uint8(7))
	f.Fuzz(func(t *testing.T, data []byte, chunk uint8) {
		for _, l := range bytes.Split(data, []byte("\n")) {
			if len(l) > maxScanLine {
				return // the scanner looks at the start of each line only
			}
		}
		var s panicScanner
		for rest := data; len(rest) > 0; {
			n := min(len(rest), int(chunk)+1)
			s.Write(rest[:n])
			rest = rest[n:]
		}
		if got, want := s.line(), records.PanicLine(data); got != want {
			t.Fatalf("panicScanner = %q, records.PanicLine = %q", got, want)
		}
	})
}

// FuzzAssemble checks the streamed assembly against records.Assemble.
func FuzzAssemble(f *testing.F) {
	f.Add([]byte("Panic#1 Part1\nnew\n"), []byte("Panic#1 Part2\nold"), []byte(""))
	f.Add([]byte("Oops#3 Part1\r\nx"), []byte("Oops#3 Part2"), []byte("no header\n"))
	f.Add([]byte("Panic#1 Part1"), []byte("\n"), []byte("Panic#1 Part3\n\n"))
	f.Fuzz(func(t *testing.T, p1, p2, p3 []byte) {
		parts := [][]byte{p1, p2, p3}
		if string(p1) == string(p2) || string(p2) == string(p3) || string(p1) == string(p3) {
			return // one record, stored once
		}
		r := &Records{Root: t.TempDir(), MinFree: -1}
		var st Stored
		for i, p := range parts {
			st = putPart(t, r, "h", i+1, len(parts), p)
		}
		got, err := os.ReadFile(filepath.Join(r.Root, st.Assembled))
		if err != nil {
			t.Fatal(err)
		}
		if want := records.Assemble(parts); !bytes.Equal(got, want) {
			t.Fatalf("assembled %q, records.Assemble %q", got, want)
		}
	})
}

// dirBytes returns the bytes of the regular files in dir.
func dirBytes(t *testing.T, dir string) int64 {
	t.Helper()
	ents, _ := os.ReadDir(dir)
	var n int64
	for _, e := range ents {
		if fi, err := e.Info(); err == nil && fi.Mode().IsRegular() {
			n += fi.Size()
		}
	}
	return n
}

// TestRecordsHostQuota: the quota counts the bytes in the host's crash
// directory (found again after a restart) and a record's size plus 4 KiB
// for its metadata while it is stored.
func TestRecordsHostQuota(t *testing.T) {
	root := t.TempDir()
	rec := func(c byte) []byte { return append([]byte{c}, bytes.Repeat([]byte("r"), 999)...) }
	r := &Records{Root: root, HostQuota: -1}
	var first Stored
	for i := range 3 {
		st, err := put(t, r, "h", "dmesg-ramoops-0", rec(byte('a'+i)), "")
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = st
		}
	}
	used := dirBytes(t, filepath.Join(root, "h", "crash"))
	need := int64(1000 + 4096)

	r = &Records{Root: root, HostQuota: used + need - 1} // a restart, one byte short
	_, err := put(t, r, "h", "dmesg-ramoops-0", rec('z'), "")
	var qe *QuotaError
	if !errors.As(err, &qe) || qe.Host != "h" || qe.Used != used || qe.Need != need || qe.Quota != used+need-1 {
		t.Fatalf("record past the quota: %v, want a QuotaError for h: %d used, %d needed", err, used, need)
	}
	if st, err := put(t, r, "h", "dmesg-ramoops-0", rec('b'), ""); err != nil || !st.Duplicate {
		t.Errorf("duplicate at the quota = %+v, %v; want a duplicate", st, err)
	}
	if _, err := put(t, r, "other", "dmesg-ramoops-0", rec('z'), ""); err != nil {
		t.Errorf("another host, with its own quota: %v", err)
	}
	// Removing a record makes room.
	if err := r.RemoveRecord(filepath.Join(root, first.Path)); err != nil {
		t.Fatal(err)
	}
	if _, err := put(t, r, "h", "dmesg-ramoops-0", rec('z'), ""); err != nil {
		t.Errorf("after a removal: %v, want room", err)
	}
}

// TestRecordsMinFree: with the floor above the file system's free space
// (statfs), nothing is written; with it below, the record is stored.
func TestRecordsMinFree(t *testing.T) {
	root := t.TempDir()
	var st unix.Statfs_t
	if err := unix.Statfs(root, &st); err != nil {
		t.Fatal(err)
	}
	free := int64(st.Bavail) * int64(st.Bsize)
	r := &Records{Root: root, MinFree: free + 1<<30}
	_, err := put(t, r, "h", "dmesg-ramoops-0", []byte("x"), "")
	var se *SpaceError
	if !errors.As(err, &se) || se.Floor != r.MinFree {
		t.Fatalf("Put under the floor = %v, want a SpaceError", err)
	}
	if ents, _ := os.ReadDir(filepath.Join(root, "h", "crash")); len(ents) != 0 {
		t.Errorf("files written under the floor: %v", ents)
	}
	if free < 2<<20 {
		t.Skipf("%d bytes free: too little to test a floor below it", free)
	}
	r = &Records{Root: root, MinFree: 1 << 20}
	if _, err := put(t, r, "h", "dmesg-ramoops-0", []byte("x"), ""); err != nil {
		t.Errorf("Put above the floor: %v", err)
	}
}

func TestRecordsCleanTemps(t *testing.T) {
	root := t.TempDir()
	writeFiles(t, root, map[string]string{
		"a/crash/.upload-1":                  "partial",
		"a/crash/.upload-2":                  "partial metadata",
		"b/crash/.upload-3":                  "partial",
		"b/crash/dmesg-ramoops-0.0123456789": "record",
		"b/b1/.upload-4":                     "not in a crash directory",
		".lastgaspd/.upload-5":               "the collector's state",
	})
	r := &Records{Root: root}
	n, err := r.CleanTemps()
	if err != nil || n != 3 {
		t.Errorf("CleanTemps = %d, %v; want 3", n, err)
	}
	for _, p := range []string{"a/crash/.upload-1", "a/crash/.upload-2", "b/crash/.upload-3"} {
		if _, err := os.Stat(filepath.Join(root, p)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s: %v, want removed", p, err)
		}
	}
	for _, p := range []string{"b/crash/dmesg-ramoops-0.0123456789", "b/b1/.upload-4", ".lastgaspd/.upload-5"} {
		if _, err := os.Stat(filepath.Join(root, p)); err != nil {
			t.Errorf("%s: %v, want kept", p, err)
		}
	}
}
