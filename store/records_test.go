package store

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
