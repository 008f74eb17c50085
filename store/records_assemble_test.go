package store

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/lastgasp/lastgasp/pstore/records"
	"github.com/lastgasp/lastgasp/pstore/ship"
)

const crashID = "dmesg-efi-Panic-1-1764064800"

// putPart stores data as part p of parts of crashID for host.
func putPart(t testing.TB, r *Records, host string, p, parts int, data []byte) Stored {
	t.Helper()
	meta := RecordMeta{Metadata: ship.Metadata{Host: host, RecordName: fmt.Sprintf("dmesg-efi-%d", p), Digest: ship.Digest(data),
		Size: int64(len(data)), CrashID: crashID, Part: p, Parts: parts}}
	st, err := r.Put(meta, bytes.NewReader(data), "")
	if err != nil {
		t.Fatalf("Put part %d: %v", p, err)
	}
	return st
}

// bigPart returns a part of about size bytes of 80-byte lines, as
// pstore_dump writes: "Panic#1 Part<p>" first, then one kernel log line
// repeated, and in Part1 the panic last.
func bigPart(p, size int) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "Panic#1 Part%d\n", p)
	line := fmt.Sprintf("<6>[%5d.000000] part %d %s\n", p, p, strings.Repeat("x", 80))
	b.WriteString(strings.Repeat(line, (size-b.Len()-80)/len(line)))
	if p == 1 {
		b.WriteString("<0>[    9.000000] Kernel panic - not syncing: sysrq triggered crash\n")
	}
	return b.Bytes()
}

func TestAssembleAsRecordsAssemble(t *testing.T) {
	for _, tt := range []struct {
		name  string
		parts []string // Part1 first
	}{
		{"efi parts", []string{"Panic#1 Part1\nnewest\n", "Panic#1 Part2\nmiddle\n", "Panic#1 Part3\noldest\n"}},
		{"no trailing newlines", []string{"Panic#2 Part1\nnewest", "Panic#2 Part2\nolder"}},
		{"a part that is only its header", []string{"Oops#1 Part1\nnewest\n", "Oops#1 Part2"}},
		{"an empty part", []string{"Panic#1 Part1\nnewest\n", ""}},
		{"no part headers", []string{"newest\n", "oldest\n"}},
		{"header line with CR", []string{"Panic#1 Part1\r\nnewest\n", "Panic#1 Part2\r\nold\n"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := &Records{Root: t.TempDir(), Logf: t.Logf}
			var parts [][]byte
			var st Stored
			for i, p := range tt.parts {
				parts = append(parts, []byte(p))
				st = putPart(t, r, "h", i+1, len(tt.parts), []byte(p))
			}
			if st.Assembled != "h/crash/"+crashID+AssembledSuffix || st.Truncated {
				t.Fatalf("last Put = %+v, want the crash assembled, not truncated", st)
			}
			got, err := os.ReadFile(filepath.Join(r.Root, st.Assembled))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(string(records.Assemble(parts)), string(got)); diff != "" {
				t.Errorf("assembled (-records.Assemble +got):\n%s", diff)
			}
		})
	}
}

// TestAssembleTruncated: past MaxAssembled the oldest text goes, the
// newest part (with the panic) stays whole, and a note says so.
func TestAssembleTruncated(t *testing.T) {
	const limit = 64 << 10
	r := &Records{Root: t.TempDir(), MaxAssembled: limit, Logf: t.Logf}
	var parts [][]byte
	var st Stored
	for p := 1; p <= 40; p++ {
		parts = append(parts, bigPart(p, 8<<10))
		st = putPart(t, r, "h", p, 40, parts[p-1])
	}
	if !st.Truncated {
		t.Fatalf("last Put = %+v, want the assembled text truncated", st)
	}
	got, err := os.ReadFile(filepath.Join(r.Root, st.Assembled))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) > limit {
		t.Errorf("assembled text is %d bytes, want at most %d", len(got), limit)
	}
	full := records.Assemble(parts)
	head, rest, _ := strings.Cut(string(got), "\n")
	note, tail, _ := strings.Cut(rest, "\n")
	if head != "Panic#1 Part1..40" {
		t.Errorf("first line %q, want the crash's header", head)
	}
	omitted := len(full) - len("Panic#1 Part1..40\n") - len(tail)
	if want := fmt.Sprintf("[lastgaspd: %d bytes of the oldest text omitted, to keep this file within %d bytes]", omitted, limit); note != want {
		t.Errorf("second line %q, want %q", note, want)
	}
	if !strings.HasSuffix(string(full), tail) || !strings.HasPrefix(tail, "<6>[") {
		t.Errorf("text after the note is not the newest text of the crash from a line start: %.80q", tail)
	}
	part1 := strings.TrimPrefix(string(parts[0]), "Panic#1 Part1\n")
	if !strings.HasSuffix(tail, part1) {
		t.Errorf("the newest part is not kept whole")
	}
	if st := r.Stats(); st.Assembled != 1 || st.Truncated != 1 {
		t.Errorf("Stats = %+v, want 1 assembled, 1 truncated", st)
	}
}

// TestAssembleMemory checks that assembling 40 parts of 2 MiB allocates a
// small fraction of their 80 MiB: the text is streamed, not held.
func TestAssembleMemory(t *testing.T) {
	r := &Records{Root: t.TempDir(), Logf: t.Logf}
	const n, size = 40, 2 << 20
	for p := 2; p <= n; p++ {
		putPart(t, r, "h", p, n, bigPart(p, size))
	}
	last := bigPart(1, size)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	st := putPart(t, r, "h", 1, n, last)
	runtime.ReadMemStats(&after)
	if st.Assembled == "" {
		t.Fatalf("Put = %+v, want the crash assembled", st)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 8<<20 {
		t.Errorf("storing the last part and assembling allocated %d bytes, want under 8 MiB", alloc)
	}
	fi, err := os.Stat(filepath.Join(r.Root, st.Assembled))
	if err != nil || fi.Size() > DefaultMaxAssembled {
		t.Errorf("assembled text: %v, %v; want at most %d bytes", fi, err, DefaultMaxAssembled)
	}
}

// blockingTemps makes CreateTemp wait on release for its nth call.
type blockingTemps struct {
	mu      sync.Mutex
	n, call int
	entered chan struct{}
	release chan struct{}
}

func (b *blockingTemps) create(dir, pattern string) (File, error) {
	b.mu.Lock()
	b.call++
	block := b.call == b.n
	b.mu.Unlock()
	if block {
		close(b.entered)
		<-b.release
	}
	return os.CreateTemp(dir, pattern)
}

// TestAssembleHoldsNoLock: while one host's crash is being assembled,
// other hosts, and the same host, store records.
func TestAssembleHoldsNoLock(t *testing.T) {
	// Two parts: temps 1-4 are theirs, temp 5 the assembled text's.
	bt := &blockingTemps{n: 5, entered: make(chan struct{}), release: make(chan struct{})}
	r := &Records{Root: t.TempDir(), CreateTemp: bt.create, Logf: t.Logf}
	putPart(t, r, "h", 2, 2, []byte("Panic#1 Part2\nold\n"))
	done := make(chan Stored)
	go func() { done <- putPart(t, r, "h", 1, 2, []byte("Panic#1 Part1\nnew\n")) }()
	select {
	case <-bt.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("assembly never started")
	}
	for _, host := range []string{"other", "h"} {
		data := []byte("record of " + host)
		meta := RecordMeta{Metadata: ship.Metadata{Host: host, RecordName: "dmesg-ramoops-0", Digest: ship.Digest(data), Size: int64(len(data))}}
		ok := make(chan error)
		go func() { _, err := r.Put(meta, bytes.NewReader(data), ""); ok <- err }()
		select {
		case err := <-ok:
			if err != nil {
				t.Errorf("Put for %s during assembly: %v", host, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("Put for %s waited for another crash's assembly", host)
		}
	}
	close(bt.release)
	if st := <-done; st.Assembled == "" {
		t.Errorf("Put of the last part = %+v, want assembled", st)
	}
}

// TestRemovedPartTakesAssembled: a part removed (RemoveRecord, or Expire
// with the parts older than the cutoff and the text newer) takes the
// crash's assembled text with it, out of the quota's count too; the part
// uploaded again assembles the crash again.
func TestRemovedPartTakesAssembled(t *testing.T) {
	parts := [][]byte{[]byte("Panic#1 Part1\nnewest\n"), []byte("Panic#1 Part2\nmiddle\n"), []byte("Panic#1 Part3\noldest\n")}
	old := time.Now().Add(-48 * time.Hour)
	for _, tt := range []struct {
		name    string
		remove  func(t *testing.T, r *Records, part2 string) []Expired
		expired []string // What of each Expired, for Expire
	}{
		{name: "RemoveRecord", remove: func(t *testing.T, r *Records, part2 string) []Expired {
			if err := r.RemoveRecord(filepath.Join(r.Root, part2)); err != nil {
				t.Fatal(err)
			}
			return nil
		}},
		{name: "Expire", expired: []string{"assembled crash", "crash record", "crash record", "crash record"},
			remove: func(t *testing.T, r *Records, _ string) []Expired {
				gone, err := r.Expire("h", time.Now().Add(-time.Hour))
				if err != nil {
					t.Fatal(err)
				}
				return gone
			}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := &Records{Root: t.TempDir(), MinFree: -1, Logf: t.Logf}
			var sts []Stored
			for i, p := range parts {
				sts = append(sts, putPart(t, r, "h", i+1, len(parts), p))
			}
			text := sts[len(sts)-1].Assembled
			if text == "" {
				t.Fatal("the crash was not assembled")
			}
			for _, st := range sts { // the parts are old, the text is not
				for _, f := range []string{st.Path, st.Path + MetaSuffix} {
					if err := os.Chtimes(filepath.Join(r.Root, f), old, old); err != nil {
						t.Fatal(err)
					}
				}
			}
			gone := tt.remove(t, r, sts[1].Path)
			var whats []string
			for _, g := range gone {
				whats = append(whats, g.What)
				if g.What == "assembled crash" && g.Path != text {
					t.Errorf("Expired %+v, want the text at %s", g, text)
				}
			}
			sort.Strings(whats)
			if diff := cmp.Diff(tt.expired, whats); diff != "" {
				t.Errorf("Expired (-want +got):\n%s", diff)
			}
			if _, err := os.Lstat(filepath.Join(r.Root, text)); err == nil {
				t.Fatalf("%s outlived its part", text)
			}
			hs := r.hosts["h"]
			if used, on := hs.used, dirBytes(t, filepath.Join(r.Root, "h", CrashDir)); used != on {
				t.Errorf("quota counts %d bytes, the crash directory holds %d", used, on)
			}
			// Uploaded again, the parts assemble the crash again.
			var again string
			for i, p := range parts {
				if st := putPart(t, r, "h", i+1, len(parts), p); st.Assembled != "" {
					again = st.Assembled
				}
			}
			if again != text {
				t.Fatalf("parts uploaded again assembled %q, want %s", again, text)
			}
			got, err := os.ReadFile(filepath.Join(r.Root, text))
			if err != nil || string(got) != string(records.Assemble(parts)) {
				t.Errorf("assembled again: %q, %v; want %q", got, err, records.Assemble(parts))
			}
		})
	}
}
