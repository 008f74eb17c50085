package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/lastgasp/lastgasp/pstore/ship"
	"github.com/lastgasp/lastgasp/store"
	"github.com/lastgasp/lastgasp/store/pgstore"
	"github.com/lastgasp/lastgasp/store/pgstore/pgtest"
	"github.com/lastgasp/lastgasp/store/sigindex"
	"github.com/lastgasp/lastgasp/store/sigindex/indextest"
)

// TestSharedBackfill: what a collector stored in the database and never
// indexed (it stopped in between: here the rows come from
// pgstore.Records.Put alone) is indexed by the next lastgaspd to start on
// that database, as the file store's backfill does: a record with a
// panic; the real 14-part EFI crash once, from its assembled text, with
// the signature of the whole report, not from its parts; a record without
// a report passed over, and a record on the listing's second page (after
// more reportless records than a page) found too.
func TestSharedBackfill(t *testing.T) {
	const (
		dir = "../../store/pgstore/testdata/efi-panic-14parts"
		id  = "dmesg-efi-Panic-1-1796228255"
	)
	ctx := context.Background()
	url, db := sharedDB(t, pgtest.Start(t), "backfill")
	r := &pgstore.Records{DB: db}
	put := func(meta store.RecordMeta, data []byte) store.Stored {
		t.Helper()
		meta.Digest, meta.Size, meta.Received = ship.Digest(data), int64(len(data)), time.Now()
		st, err := r.Put(meta, bytes.NewReader(data), "")
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	// More reportless records than a page, before and after the others
	// in path order.
	for i := range pgstore.DefaultUnindexedPage + 10 {
		put(store.RecordMeta{Metadata: ship.Metadata{Host: fmt.Sprintf("quiet%03d", i), RecordName: "console-ramoops-0"}}, []byte("nothing happened\n"))
	}
	solo := put(store.RecordMeta{Metadata: ship.Metadata{Host: "solo", RecordName: "dmesg-ramoops-0", RecordType: "dmesg"}},
		[]byte("<0>[    1.000000] Kernel panic - not syncing: solo panic\n<4>[    1.000001] Call Trace:\n<4>[    1.000002]  <TASK>\n<4>[    1.000003]  oops_func+0x1/0x2\n<4>[    1.000004]  </TASK>\n"))
	var text string
	for p := 1; p <= 14; p++ {
		name := fmt.Sprintf("dmesg-efi-1796228255%02d001", p)
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		st := put(store.RecordMeta{Metadata: ship.Metadata{Host: "guest", RecordName: name, RecordType: "dmesg",
			KernelRelease: "6.1.0-57-amd64", CrashID: id, Part: p, Parts: 14}}, data)
		if st.Assembled != "" {
			text = st.Assembled
		}
	}
	if text == "" {
		t.Fatal("the EFI crash was not assembled")
	}
	if sigs, err := db.Index().Signatures(ctx, sigindex.Query{}); err != nil || len(sigs) != 0 {
		t.Fatalf("index before the collector starts: %d signatures, %v; want none", len(sigs), err)
	}

	refs := func() []string {
		return indextest.Refs(t, db.Index(), "solo", "guest", "quiet000", "quiet509")
	}
	want := []string{text, solo.Path}
	slices.Sort(want)
	startShared(t, url)
	var got []string
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if got = refs(); slices.Equal(got, want) || time.Now().After(deadline) {
			break
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("sightings %q, want %q", got, want)
	}
	sigs, err := db.Index().Signatures(ctx, sigindex.Query{})
	if err != nil || len(sigs) != 2 {
		t.Fatalf("Signatures = %+v, %v; want two", sigs, err)
	}
	for _, s := range sigs {
		if s.Count != 1 {
			t.Errorf("signature %q counts %d crashes, want 1", s.Title, s.Count)
		}
		if s.Title == "Kernel panic - not syncing: sysrq triggered crash" && !slices.Equal(s.Frames, []string{"sysrq_handle_crash", "__handle_sysrq", "write_sysrq_trigger", "proc_reg_write"}) {
			t.Errorf("the EFI crash's frames %q, want the whole report's", s.Frames)
		}
	}
}
