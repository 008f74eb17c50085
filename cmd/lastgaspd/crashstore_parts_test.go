package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lastgasp/lastgasp/pstore/records"
	"github.com/lastgasp/lastgasp/pstore/ship"
	"github.com/lastgasp/lastgasp/store"
	"github.com/lastgasp/lastgasp/store/pgstore"
	"github.com/lastgasp/lastgasp/store/pgstore/pgtest"
	"github.com/lastgasp/lastgasp/store/sigindex"
)

// TestSharedMultiPartCrash: two lastgaspd on one crash store; the 14 parts
// of a real EFI panic (scenario pstore-efi-coldboot) are uploaded at once,
// the odd parts to one collector and the even parts to the other. The
// crash is assembled once, into the file store's text for it; the index
// holds one signature with one crash, seen once, in the assembled text,
// with the signature of the same crash's live netconsole copy in that
// run; either collector serves the assembled text and shows it on the
// host page.
func TestSharedMultiPartCrash(t *testing.T) {
	const (
		dir   = "../../store/pgstore/testdata/efi-panic-14parts"
		id    = "dmesg-efi-Panic-1-1796228255"
		title = "Kernel panic - not syncing: sysrq triggered crash"
	)
	frames := []string{"sysrq_handle_crash", "__handle_sysrq", "write_sysrq_trigger", "proc_reg_write"}
	want, err := os.ReadFile(filepath.Join(dir, id+store.AssembledSuffix))
	if err != nil {
		t.Fatal(err)
	}
	srv := pgtest.Start(t)
	url, err := srv.CreateDB(context.Background(), "multipart")
	if err != nil {
		t.Fatal(err)
	}
	cs := []string{startShared(t, url), startShared(t, url)}
	var wg sync.WaitGroup
	errs := make(chan error, 14)
	for p := 1; p <= 14; p++ {
		name := fmt.Sprintf("dmesg-efi-1796228255%02d001", p)
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl := &ship.Client{BaseURL: "http://" + cs[p%2], Host: "guest", BootID: "b2", KernelRelease: "6.1.0-57-amd64", Timeout: 20 * time.Second}
			rec := records.Record{Name: name, Type: "dmesg", Backend: "efi", Data: data, Size: int64(len(data)), CrashID: id, Part: p, Parts: 14}
			if _, err := cl.Ship(context.Background(), rec); err != nil {
				errs <- fmt.Errorf("part %d: %w", p, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	db, err := pgstore.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	sigs, err := db.Index().Signatures(ctx, sigindex.Query{})
	if err != nil || len(sigs) != 1 {
		t.Fatalf("Signatures = %+v, %v; want one", sigs, err)
	}
	if sigs[0].Title != title || !slices.Equal(sigs[0].Frames, frames) || sigs[0].Count != 1 {
		t.Errorf("signature %q %v count %d, want %q %v count 1", sigs[0].Title, sigs[0].Frames, sigs[0].Count, title, frames)
	}
	ref := "guest/crash/" + id + store.AssembledSuffix
	crashes, err := db.Index().HostCrashes(ctx, "guest")
	if err != nil || len(crashes) != 1 || len(crashes[0].Sightings) != 1 || crashes[0].Sightings[0].Ref != ref {
		t.Fatalf("HostCrashes = %+v, %v; want one crash seen once, in %s", crashes, err, ref)
	}
	if !strings.Contains(sigs[0].Sample.Report, "Call Trace:") || !strings.Contains(sigs[0].Sample.Report, "Kernel Offset:") {
		t.Errorf("sample report lacks the call trace (Part2) or the last line (Part1):\n%s", sigs[0].Sample.Report)
	}
	for i, c := range cs {
		code, got := httpGet(t, "http://"+c+"/ui/file/"+ref)
		if code != 200 || got != string(want) {
			t.Errorf("collector %d: download of %s = %d, %d bytes; want 200 and the file store's %d bytes", i+1, ref, code, len(got), len(want))
		}
		code, page := httpGet(t, "http://"+c+"/ui/host/guest")
		if code != 200 || !strings.Contains(page, `href="/ui/file/`+ref+`"`) {
			t.Errorf("collector %d: host page (%d) does not link %s:\n%s", i+1, code, ref, page)
		}
	}
}
