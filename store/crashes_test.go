package store

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/lastgasp/lastgasp/pstore/ship"
)

// writeFiles writes files under root.
func writeFiles(t testing.TB, root string, files map[string]string) {
	t.Helper()
	for rel, data := range files {
		p := filepath.Join(root, rel)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func metaJSON(t testing.TB, m ship.Metadata) string {
	t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestCrashIndexList(t *testing.T) {
	root := t.TempDir()
	at := func(h, m int) time.Time { return time.Date(2026, 11, 25, h, m, 0, 0, time.UTC) }
	rec := "Panic#1 Part1\n<0>[    3.163223] Kernel panic - not syncing: sysrq triggered crash\n"
	writeFiles(t, root, map[string]string{
		// a: a live panic in kernel.log, then its record uploaded later:
		// both shown, apart.
		"a/b1/kernel.log": "2026-11-25T16:00:00Z 6 seq=1 ts=0.100000 booting\n" +
			"2026-11-25T16:00:05Z 0 seq=812 ts=3.163223 Kernel panic - not syncing: sysrq triggered crash\n" +
			"2026-11-25T16:00:06Z lastgaspd: gap seq=813-813 lost=1\n",
		"a/crash/dmesg-ramoops-0.0123456789abcdef.json": metaJSON(t, ship.Metadata{Host: "a", RecordName: "dmesg-ramoops-0", Received: at(16, 1)}),
		"a/crash/dmesg-ramoops-0.0123456789abcdef":      rec,
		// b: a log without a panic; c: orphaned metadata only.
		"b/boot-unknown/kernel.log":    "2026-11-25T16:00:00Z - - - hello\n",
		"c/crash/dmesg-ramoops-0.json": metaJSON(t, ship.Metadata{Host: "c", RecordName: "dmesg-ramoops-0", Received: at(16, 1)}),
		// d: an Oops in a legacy log; a note that quotes a panic does not count.
		"d/boot-unknown/kernel.log": "2026-11-25T15:00:00Z - - - [   10.0] Oops: general protection fault\n" +
			"2026-11-25T15:00:01Z lastgaspd: Kernel panic - not syncing: not the kernel's\n",
		// r: the panic is in the log rotated just after it.
		"r/b1/kernel.log.1": "2026-11-25T15:00:00Z 0 seq=9 ts=3.100000 Kernel panic - not syncing: rotated\n",
		"r/b1/kernel.log":   "2026-11-25T15:00:01Z lastgaspd: reboot seq=0 expected=10\n",
		// e: two records, the later one wins; its metadata has the time
		// of the record.
		"e/crash/dmesg-ramoops-0.1111111111111111":      "<0>[1.0] Kernel panic - not syncing: first\n",
		"e/crash/dmesg-ramoops-0.1111111111111111.json": metaJSON(t, ship.Metadata{Host: "e", RecordName: "dmesg-ramoops-0", Received: at(12, 0)}),
		"e/crash/dmesg-ramoops-1.2222222222222222":      "<0>[1.0] Kernel panic - not syncing: second\n",
		"e/crash/dmesg-ramoops-1.2222222222222222.json": metaJSON(t, ship.Metadata{Host: "e", RecordName: "dmesg-ramoops-1", Received: at(13, 0), RecordTime: at(11, 0)}),
		"e/crash/dmesg-ramoops-2.3333333333333333":      "<0>[1.0] Kernel panic - not syncing: third\n",
		"e/crash/dmesg-ramoops-2.3333333333333333.json": metaJSON(t, ship.Metadata{Host: "e", RecordName: "dmesg-ramoops-2", Received: at(12, 30)}),
	})
	// l: a record linked into the boot that produced it; a copy that is
	// not a link does not count.
	writeFiles(t, root, map[string]string{
		"l/crash/dmesg-ramoops-0.0123456789abcdef":      rec,
		"l/crash/dmesg-ramoops-0.0123456789abcdef.json": metaJSON(t, ship.Metadata{Host: "l", RecordName: "dmesg-ramoops-0", Received: at(16, 1)}),
		"l/b1/kernel.log": "2026-11-25T16:00:00Z 6 seq=1 ts=0.100000 booting\n",
		"l/b0/crash/dmesg-ramoops-0.0123456789abcdef": rec,
	})
	os.MkdirAll(filepath.Join(root, "l/b1/crash"), 0o755)
	if err := os.Link(filepath.Join(root, "l/crash/dmesg-ramoops-0.0123456789abcdef"), filepath.Join(root, "l/b1/crash/dmesg-ramoops-0.0123456789abcdef")); err != nil {
		t.Fatal(err)
	}

	panicLine := "Kernel panic - not syncing: sysrq triggered crash"
	want := []HostCrashes{
		{Host: "a", Record: &Crash{Time: at(16, 1), Line: panicLine, Source: "crash/dmesg-ramoops-0.0123456789abcdef"},
			Netconsole: &Crash{Time: time.Date(2026, 11, 25, 16, 0, 5, 0, time.UTC), Line: panicLine, Source: "b1/kernel.log seq=812"}},
		{Host: "d", Netconsole: &Crash{Time: at(15, 0), Line: "Oops: general protection fault", Source: "boot-unknown/kernel.log"}},
		{Host: "e", Record: &Crash{Time: at(12, 30), Line: "Kernel panic - not syncing: third", Source: "crash/dmesg-ramoops-2.3333333333333333"}},
		{Host: "l", Record: &Crash{Time: at(16, 1), Line: panicLine, Source: "b1/crash/dmesg-ramoops-0.0123456789abcdef"}},
		{Host: "r", Netconsole: &Crash{Time: at(15, 0), Line: "Kernel panic - not syncing: rotated", Source: "b1/kernel.log.1 seq=9"}},
	}
	x := &CrashIndex{Root: root}
	got, err := x.List()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("List (-want +got):\n%s", diff)
	}
}

// TestCrashIndexUpdates: records stored through the index's Records show
// at once, without rereading the record files; a log is read again only
// as far as it grew, and from its tail when rotated.
func TestCrashIndexUpdates(t *testing.T) {
	root := t.TempDir()
	recs := &Records{Root: root}
	x := &CrashIndex{Root: root, Records: recs}
	if got, err := x.List(); err != nil || len(got) != 0 {
		t.Fatalf("List of an empty store = %+v, %v", got, err)
	}
	data := []byte("<0>[1.0] Kernel panic - not syncing: uploaded\n")
	st, err := recs.Put(RecordMeta{Metadata: ship.Metadata{Host: "h", RecordName: "dmesg-ramoops-0", Digest: ship.Digest(data),
		Size: int64(len(data)), Received: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)}, Verified: true}, bytes.NewReader(data), "")
	if err != nil {
		t.Fatal(err)
	}
	// Overwritten behind the store's back: the index does not reread it.
	os.WriteFile(filepath.Join(root, st.Path), []byte("<0>[1.0] Kernel panic - not syncing: rewritten\n"), 0o644)
	got, _ := x.List()
	if len(got) != 1 || got[0].Record == nil || got[0].Record.Line != "Kernel panic - not syncing: uploaded" || !got[0].Verified {
		t.Fatalf("List after Put = %+v, want the uploaded record's panic, verified", got)
	}

	log := filepath.Join(root, "h", "b1", LogName)
	writeFiles(t, root, map[string]string{"h/b1/kernel.log": "2026-11-25T12:00:00Z 0 seq=1 ts=1.000000 Kernel panic - not syncing: one\n2026-11-25T12:00:01Z 6 seq=2 ts=1.0"})
	line := func() string {
		got, _ := x.List()
		if len(got) != 1 || got[0].Netconsole == nil {
			return ""
		}
		return got[0].Netconsole.Line + " @ " + got[0].Netconsole.Source
	}
	if got := line(); got != "Kernel panic - not syncing: one @ b1/kernel.log seq=1" {
		t.Errorf("netconsole crash = %q, want the first panic", got)
	}
	// The partial line is completed, and another panic follows.
	f, _ := os.OpenFile(log, os.O_APPEND|os.O_WRONLY, 0)
	fmt.Fprintf(f, "00002 Kernel panic - not syncing: two\n")
	f.Close()
	if got := line(); got != "Kernel panic - not syncing: two @ b1/kernel.log seq=2" {
		t.Errorf("after the log grew, netconsole crash = %q, want the second panic", got)
	}
	// Rotated: kernel.log.1 holds the panics, kernel.log none.
	os.Rename(log, RotatedName(log, 1))
	os.WriteFile(log, []byte("2026-11-25T12:01:00Z lastgaspd: reboot seq=0 expected=3\n"), 0o644)
	if got := line(); got != "Kernel panic - not syncing: two @ b1/kernel.log.1 seq=2" {
		t.Errorf("after rotation, netconsole crash = %q, want the rotated log's panic", got)
	}
	os.RemoveAll(filepath.Join(root, "h", "b1"))
	if got := line(); got != "" {
		t.Errorf("after the boot's removal, netconsole crash = %q, want none", got)
	}
}

// BenchmarkCrashIndexList lists 100 hosts with an 8 MiB record each and a
// log, as /crashes does on every request (the issue measured 0.57 s a
// request when every record was reread).
//
//	go test ./store -run x -bench CrashIndexList
func BenchmarkCrashIndexList(b *testing.B) {
	root := b.TempDir()
	recs := &Records{Root: root, MinFree: -1}
	big := bytes.Repeat([]byte("<6>[    1.000000] filler line of a big record xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n"), (8<<20)/80)
	for h := range 100 {
		data := append(append([]byte(nil), big...), fmt.Sprintf("<0>[2.0] Kernel panic - not syncing: host %d\n", h)...)
		host := fmt.Sprintf("host-%03d", h)
		if _, err := recs.Put(RecordMeta{Metadata: ship.Metadata{Host: host, RecordName: "dmesg-ramoops-0", Digest: ship.Digest(data), Size: int64(len(data))}},
			bytes.NewReader(data), ""); err != nil {
			b.Fatal(err)
		}
		writeFiles(b, root, map[string]string{host + "/b1/kernel.log": strings.Repeat("2026-11-25T12:00:00Z 6 seq=1 ts=1.000000 a line\n", 1000)})
	}
	x := &CrashIndex{Root: root, Records: recs}
	b.ResetTimer()
	for b.Loop() {
		if got, err := x.List(); err != nil || len(got) != 100 {
			b.Fatalf("List = %d hosts, %v", len(got), err)
		}
	}
}
