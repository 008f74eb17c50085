package pgstore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/lastgasp/lastgasp/crash/signature"
	"github.com/lastgasp/lastgasp/store"
	"github.com/lastgasp/lastgasp/store/pgstore"
	"github.com/lastgasp/lastgasp/store/sigindex"
)

// TestUnindexed: what Unindexed lists for the backfill, as the file
// store's backfill picks from its crash directories: a record without a
// sighting, not one with; of a crash of two parts its assembled text
// (with Part1's metadata), not the parts; of a crash of one part the
// part, not its text. Pages of any size list the same, in path order,
// and an error of each stops it.
func TestUnindexed(t *testing.T) {
	db, _ := newDB(t)
	r := &pgstore.Records{DB: db}
	ctx := context.Background()
	put := func(m store.RecordMeta, data []byte) string {
		t.Helper()
		st, err := r.Put(m, bytes.NewReader(data), "")
		if err != nil {
			t.Fatal(err)
		}
		return st.Path
	}
	plain := put(record("a", "dmesg-ramoops-0", []byte(panicText)), []byte(panicText))
	sighted := put(record("b", "dmesg-ramoops-0", []byte(panicText+"b\n")), []byte(panicText+"b\n"))
	sig := signature.Signature{ID: "s1", Kind: signature.KindPanic, Title: "Kernel panic - not syncing: sysrq triggered crash", TitleUsec: 1}
	if _, err := db.Index().Add(ctx, sigindex.Sighting{Host: "b", Time: time.Now(), Source: sigindex.SourceRecord, Ref: sighted, Signature: sig}); err != nil {
		t.Fatal(err)
	}
	two := [][]byte{[]byte("Panic#1 Part1\n" + panicText), []byte("Panic#1 Part2\nolder\n")}
	for i, b := range two {
		put(partMeta("c", fmt.Sprintf("dmesg-efi-%d", i+1), "dmesg-efi-Panic-1-2", i+1, 2, b), b)
	}
	one := []byte("Panic#1 Part1\n" + panicText)
	onePart := put(partMeta("d", "dmesg-efi-1", "dmesg-efi-Panic-1-1", 1, 1, one), one)
	want := []string{plain, "c/crash/dmesg-efi-Panic-1-2" + store.AssembledSuffix, onePart}

	for _, page := range []int{1, 2, 0} {
		var got []string
		err := db.Unindexed(ctx, page, func(sr pgstore.StoredRecord) error {
			got = append(got, sr.Path)
			if sr.Path == want[1] && (sr.Meta.RecordName != "dmesg-efi-1" || sr.Meta.Part != 1 || sr.Meta.CrashID != "dmesg-efi-Panic-1-2") {
				t.Errorf("page %d: the assembled text listed with %+v, want Part1's metadata", page, sr.Meta)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("page %d: listed (-want +got):\n%s", page, diff)
		}
	}
	stop := errors.New("stop")
	n := 0
	if err := db.Unindexed(ctx, 1, func(pgstore.StoredRecord) error { n++; return stop }); !errors.Is(err, stop) || n != 1 {
		t.Errorf("Unindexed with each failing = %v after %d calls, want stop after 1", err, n)
	}
}
