package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lastgasp/lastgasp/crash/signature"
	"github.com/lastgasp/lastgasp/pstore/ship"
	"github.com/lastgasp/lastgasp/store"
	"github.com/lastgasp/lastgasp/store/sigindex"
)

// TestServeRetentionForgetsSignatures: lastgaspd's retention on the file
// store takes the file signature index with it, at start as hourly: the
// sighting of a record retention removes is removed (no /ui/ link to a
// record that is gone), a live report added before the cutoff expires,
// and a fresh record stays; /metrics counts the two.
func TestServeRetentionForgetsSignatures(t *testing.T) {
	root := t.TempDir()
	report := func(title string) []byte {
		return []byte("<0>[    1.000000] Kernel panic - not syncing: " + title + "\n<4>[    1.000001] Call Trace:\n<4>[    1.000002]  <TASK>\n<4>[    1.000003]  " + title + "_func+0x1/0x2\n<4>[    1.000004]  </TASK>\n")
	}
	recs := &store.Records{Root: root, MinFree: -1}
	put := func(host, title string, age time.Duration) string {
		t.Helper()
		data := report(title)
		meta := store.RecordMeta{Metadata: ship.Metadata{Host: host, RecordName: "dmesg-ramoops-0", RecordType: "dmesg",
			Digest: ship.Digest(data), Size: int64(len(data))}}
		meta.Received = time.Now()
		st, err := recs.Put(meta, bytes.NewReader(data), "")
		if err != nil {
			t.Fatal(err)
		}
		at := time.Now().Add(-age)
		for _, f := range []string{st.Path, st.Path + store.MetaSuffix} {
			if err := os.Chtimes(filepath.Join(root, f), at, at); err != nil {
				t.Fatal(err)
			}
		}
		return st.Path
	}
	const retention = 48 * time.Hour
	oldRec := put("old", "old panic", 3*24*time.Hour)
	newRec := put("new", "new panic", time.Hour)

	// The index as a collector left it: the three sightings, added when
	// they arrived.
	journal := filepath.Join(root, store.StateDir, sigindex.JournalName)
	os.MkdirAll(filepath.Dir(journal), 0o755)
	var added time.Time
	idx, err := sigindex.OpenFileWith(journal, sigindex.FileOptions{Now: func() time.Time { return added }})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []struct {
		host, ref, title string
		src              sigindex.Source
		age              time.Duration
	}{
		{"old", oldRec, "old panic", sigindex.SourceRecord, 3 * 24 * time.Hour},
		{"new", newRec, "new panic", sigindex.SourceRecord, time.Hour},
		{"live", "live/b1/kernel.log seq=7", "live panic", sigindex.SourceNetconsole, 3 * 24 * time.Hour},
	} {
		sig, ok := signature.Extract(report(s.title))
		if !ok {
			t.Fatalf("no signature in the %s report", s.title)
		}
		added = time.Now().Add(-s.age)
		if _, err := idx.Add(context.Background(), sigindex.Sighting{Host: s.host, Time: added, Source: s.src, Ref: s.ref, Signature: sig}); err != nil {
			t.Fatal(err)
		}
	}
	idx.Close()

	udp, httpAddr := freePort(t, "udp"), freePort(t, "tcp")
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	var logs strings.Builder
	go func() {
		done <- run(ctx, []string{"-netconsole", udp, "-http", httpAddr, "-store", root, "-retention", retention.String()},
			io.Discard, &syncWriter{w: &logs})
	}()
	get := getter(httpAddr)
	metric := func() string { return get("/metrics") }
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(metric(), "lastgaspd_signatures_expired_total 2") {
		if time.Now().After(deadline) {
			t.Fatalf("lastgaspd_signatures_expired_total never 2:\n%s\nlog:\n%s", grepLines(metric(), "lastgaspd_signatures_"), logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if m := metric(); !strings.Contains(m, "lastgaspd_signatures_sightings 1") {
		t.Errorf("/metrics:\n%s", grepLines(m, "lastgaspd_signatures_"))
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run = %v", err)
	}
	// What the journal holds after the restart: the fresh record only.
	idx, err = sigindex.OpenFile(journal)
	if err != nil {
		t.Fatal(err)
	}
	defer idx.Close()
	for host, want := range map[string]int{"old": 0, "live": 0, "new": 1} {
		if cs, err := idx.HostCrashes(context.Background(), host); err != nil || len(cs) != want {
			t.Errorf("host %s: %d crashes, %v; want %d", host, len(cs), err, want)
		}
	}
	if _, err := os.Stat(filepath.Join(root, oldRec)); !os.IsNotExist(err) {
		t.Errorf("the old record is still there: %v", err)
	}
}

// grepLines returns the lines of s containing sub.
func grepLines(s, sub string) string {
	var out []string
	for l := range strings.SplitSeq(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
