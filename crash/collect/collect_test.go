package collect

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lastgasp/lastgasp/netconsole/sink"
	"github.com/lastgasp/lastgasp/pstore/ship"
	"github.com/lastgasp/lastgasp/store"
	"github.com/lastgasp/lastgasp/store/sigindex"
)

// TestLiveAndRecordOneCrash replays a real report (captured from the QEMU
// guest) as netconsole messages, one per line with its printk timestamp,
// then stores the same report as the boot's record: the index has one
// crash with two sightings. Lines before the report and after it cost no
// state.
func TestLiveAndRecordOneCrash(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	rec, err := os.ReadFile("../signature/testdata/qemu/sysrq-2")
	if err != nil {
		t.Fatal(err)
	}
	idx, err := sigindex.OpenFile(filepath.Join(root, store.StateDir, sigindex.JournalName))
	if err != nil {
		t.Fatal(err)
	}
	defer idx.Close()
	var got []sigindex.Added
	x := &Indexer{Index: idx, Root: root, Notify: func(a sigindex.Added) { got = append(got, a) }}
	live := NewLive(x)
	re := regexp.MustCompile(`^<([0-9]+)>\[ *([0-9]+)\.([0-9]{6})\] (.*)$`)
	seq := uint64(0)
	for _, l := range strings.Split(string(rec), "\n") {
		m := re.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		sec, _ := strconv.ParseUint(m[2], 10, 64)
		us, _ := strconv.ParseUint(m[3], 10, 64)
		seq++
		live.Send(sink.Message{Host: "alpha", Boot: "b1", Extended: true, Seq: seq, TimestampUsec: sec*1e6 + us, Text: m[4], Received: time.Now()})
	}
	live.mu.Lock()
	open := len(live.open)
	live.mu.Unlock()
	if open != 1 {
		t.Errorf("%d reports open after the panic, want 1 (no end marker yet)", open)
	}
	live.Close() // ends the open report and indexes it

	os.MkdirAll(filepath.Join(root, "alpha", "crash"), 0o755)
	rel := "alpha/crash/dmesg-ramoops-0.0123456789abcdef"
	os.WriteFile(filepath.Join(root, filepath.FromSlash(rel)), rec, 0o644)
	x.RecordStored(ctx, store.RecordMeta{Metadata: ship.Metadata{Host: "alpha", KernelRelease: "6.1.0-57-amd64", Received: time.Now()}}, rel, "alpha/b1")

	if len(got) != 2 || !got[0].NewSignature || !got[0].NewCrash || got[1].NewCrash {
		t.Fatalf("Adds = %+v, want a new crash (live) then its record copy", got)
	}
	cs, _ := idx.HostCrashes(ctx, "alpha")
	if len(cs) != 1 || len(cs[0].Sightings) != 2 {
		t.Fatalf("HostCrashes = %+v, want one crash with two sightings", cs)
	}
	if cs[0].Sightings[0].Source != sigindex.SourceNetconsole || cs[0].Sightings[1].Ref != rel {
		t.Errorf("sightings = %+v", cs[0].Sightings)
	}
	if st := x.Stats(); st.Records != 1 || st.LiveReports != 1 {
		t.Errorf("Stats = %+v", st)
	}
}

// TestMultiPartCrashIndexedOnce: a real EFI panic of 14 parts (scenario
// pstore-efi-coldboot; its title line and call trace are in Part2, Part1
// ends with the register dump) stored in the file store is indexed once,
// from its assembled text, whether the sighting comes from the upload hook
// or from Backfill. The expected signature is that of the same crash's
// live netconsole copy in that run.
func TestMultiPartCrashIndexedOnce(t *testing.T) {
	const (
		dir   = "../../store/pgstore/testdata/efi-panic-14parts"
		id    = "dmesg-efi-Panic-1-1796228255"
		title = "Kernel panic - not syncing: sysrq triggered crash"
	)
	frames := []string{"sysrq_handle_crash", "__handle_sysrq", "write_sysrq_trigger", "proc_reg_write"}
	for _, tt := range []struct {
		name     string
		backfill bool
	}{
		{"upload hook", false},
		{"backfill", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			root := t.TempDir()
			idx, err := sigindex.OpenFile(filepath.Join(root, store.StateDir, sigindex.JournalName))
			if err != nil {
				t.Fatal(err)
			}
			defer idx.Close()
			x := &Indexer{Index: idx, Root: root, Logf: t.Logf}
			recs := &store.Records{Root: root, Logf: t.Logf}
			assembled := ""
			for p := 14; p >= 1; p-- { // the newest part last
				name := fmt.Sprintf("dmesg-efi-1796228255%02d001", p)
				data, err := os.ReadFile(filepath.Join(dir, name))
				if err != nil {
					t.Fatal(err)
				}
				meta := store.RecordMeta{Metadata: ship.Metadata{Host: "guest", RecordName: name, RecordType: "dmesg", Digest: ship.Digest(data),
					Size: int64(len(data)), KernelRelease: "6.1.0-57-amd64", Received: time.Now(), CrashID: id, Part: p, Parts: 14}}
				st, err := recs.Put(meta, bytes.NewReader(data), "")
				if err != nil {
					t.Fatal(err)
				}
				if st.Assembled != "" {
					assembled = st.Assembled
				}
				if !tt.backfill { // as lastgaspd's upload hook does
					if st.Assembled != "" {
						x.CrashAssembled(ctx, meta, st.Assembled, st.Linked)
					}
					x.RecordStored(ctx, meta, st.Path, st.Linked)
				}
			}
			if assembled != "guest/crash/"+id+store.AssembledSuffix {
				t.Fatalf("assembled = %q", assembled)
			}
			if tt.backfill {
				if err := x.Backfill(ctx); err != nil {
					t.Fatal(err)
				}
			}
			sigs, err := idx.Signatures(ctx, sigindex.Query{})
			if err != nil || len(sigs) != 1 {
				t.Fatalf("Signatures = %+v, %v; want one", sigs, err)
			}
			if sigs[0].Title != title || !slices.Equal(sigs[0].Frames, frames) || sigs[0].Count != 1 {
				t.Errorf("signature %q %v count %d, want %q %v count 1", sigs[0].Title, sigs[0].Frames, sigs[0].Count, title, frames)
			}
			cs, _ := idx.HostCrashes(ctx, "guest")
			if len(cs) != 1 || len(cs[0].Sightings) != 1 || cs[0].Sightings[0].Ref != assembled {
				t.Fatalf("HostCrashes = %+v, want one crash seen once, in %s", cs, assembled)
			}
			if st := x.Stats(); st.Records != 1 || st.NoReport != 0 {
				t.Errorf("Stats = %+v, want 1 record indexed", st)
			}
		})
	}
}

// TestCutConsoleTailNotIndexed: the boot's dmesg record is indexed; its
// console tail, copied while the panic was still being printed (the text
// ends two frames into the call trace), is not: it would be a crash of its
// own with a signature of two frames (scenario fleet-two-collectors under
// two vCPUs).
func TestCutConsoleTailNotIndexed(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	rec, err := os.ReadFile("../signature/testdata/qemu/sysrq-1")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(rec), "\n")
	tailText := []byte(strings.Join(lines[300:414], "")) // ends after __handle_sysrq.cold
	idx, err := sigindex.OpenFile(filepath.Join(root, store.StateDir, sigindex.JournalName))
	if err != nil {
		t.Fatal(err)
	}
	defer idx.Close()
	var logs []string
	x := &Indexer{Index: idx, Root: root, Logf: func(f string, a ...any) { logs = append(logs, fmt.Sprintf(f, a...)) }}
	os.MkdirAll(filepath.Join(root, "alpha", "crash"), 0o755)
	meta := store.RecordMeta{Metadata: ship.Metadata{Host: "alpha", KernelRelease: "6.1.0-57-amd64", Received: time.Now()}}
	for _, r := range []struct {
		rel  string
		text []byte
	}{
		{"alpha/crash/dmesg-ramoops-0.0123456789abcdef", rec},
		{"alpha/crash/console-lastgasp-0.fedcba9876543210", tailText},
	} {
		os.WriteFile(filepath.Join(root, filepath.FromSlash(r.rel)), r.text, 0o644)
		x.RecordStored(ctx, meta, r.rel, "alpha/b1")
	}
	cs, _ := idx.HostCrashes(ctx, "alpha")
	if len(cs) != 1 || len(cs[0].Sightings) != 1 || !strings.HasPrefix(cs[0].Sightings[0].Ref, "alpha/crash/dmesg-") {
		t.Fatalf("HostCrashes = %+v, want the dmesg record's crash alone", cs)
	}
	if st := x.Stats(); st.Records != 1 || st.Cut != 1 {
		t.Errorf("Stats = %+v, want 1 record indexed and 1 cut", st)
	}
	if l := logs[len(logs)-1]; !strings.Contains(l, "console-lastgasp-0") || !strings.Contains(l, "2 frames): not indexed") {
		t.Errorf("logs %q, want a last line naming the console record and its 2 frames", logs)
	}
}

// TestEvictedNotCountedOrNotified: a record the index does not keep (its
// host at MaxHostSightings, the record older than what is kept) is neither
// counted as indexed nor alerted on; the index counts it as evicted.
func TestEvictedNotCountedOrNotified(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	rec, err := os.ReadFile("../signature/testdata/qemu/sysrq-2")
	if err != nil {
		t.Fatal(err)
	}
	idx, err := sigindex.OpenFileWith(filepath.Join(root, store.StateDir, sigindex.JournalName), sigindex.FileOptions{MaxHostSightings: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer idx.Close()
	var notified int
	x := &Indexer{Index: idx, Root: root, Notify: func(sigindex.Added) { notified++ }}
	os.MkdirAll(filepath.Join(root, "alpha", "crash"), 0o755)
	now := time.Now()
	for i, age := range []time.Duration{0, time.Hour} {
		rel := fmt.Sprintf("alpha/crash/dmesg-ramoops-%d.0123456789abcdef", i)
		os.WriteFile(filepath.Join(root, filepath.FromSlash(rel)), rec, 0o644)
		meta := store.RecordMeta{Metadata: ship.Metadata{Host: "alpha", RecordTime: now.Add(-age)}}
		meta.Received = now
		x.RecordStored(ctx, meta, rel, "")
	}
	if st := x.Stats(); st.Records != 1 || notified != 1 {
		t.Errorf("Stats = %+v, %d notified; want 1 record indexed and notified (the older one not kept)", st, notified)
	}
	if fs := idx.Stats(); fs.Evicted != 1 || fs.Sightings != 1 {
		t.Errorf("index Stats = %+v, want 1 kept and 1 evicted", fs)
	}
}
