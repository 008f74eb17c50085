package collect

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
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
