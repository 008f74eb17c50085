package agent

import (
	"bytes"
	"compress/flate"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/lastgasp/lastgasp/boards"
	"github.com/lastgasp/lastgasp/pstore/ship/server"
	"net/http/httptest"
)

func deflateForTest(data []byte) []byte {
	var b bytes.Buffer
	w, _ := flate.NewWriter(&b, flate.DefaultCompression)
	w.Write(data)
	w.Close()
	return b.Bytes()
}

// TestPstoreBadRecordsDoNotBlock: a pstore tree in a temp dir with a huge
// record, an unreadable one (when not root), a truncated .enc.z, a valid
// .enc.z, a two-part panic and a good console record. The good ones are
// shipped and deleted; the huge and unreadable ones are kept with one clear
// line each; the truncated .enc.z is shipped raw, flagged corrupt.
func TestPstoreBadRecordsDoNotBlock(t *testing.T) {
	pst := t.TempDir()
	write := func(name string, data []byte) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(pst, name), data, 0o444); err != nil {
			t.Fatal(err)
		}
	}
	huge := make([]byte, 5<<20)
	write("dmesg-ramoops-9", huge)
	write("console-ramoops-0", []byte("console log\n"))
	panicText := []byte("Panic#1 Part1\n<0>[   12.000000] Kernel panic - not syncing: sysrq triggered crash\n")
	z := deflateForTest(panicText)
	write("dmesg-efi-170000000000101001.enc.z", z)
	write("dmesg-efi-170000000000101002.enc.z", z[:len(z)/2]) // truncated
	write("dmesg-ramoops-0", []byte("Oops#1 Part1\n<4>[ 5.2] Oops: 0002 [#1] SMP\n"))
	write("dmesg-ramoops-1", []byte("Oops#1 Part2\n<6>[ 0.0] Linux version 6.1.0\n"))
	unreadable := os.Geteuid() != 0
	if unreadable {
		write("pmsg-ramoops-0", []byte("x"))
		if err := os.Chmod(filepath.Join(pst, "pmsg-ramoops-0"), 0); err != nil {
			t.Fatal(err)
		}
	} else {
		t.Log("running as root: a mode 000 file is readable, the unreadable case is not exercised")
	}

	srv := &server.Server{Root: t.TempDir(), Logf: t.Logf}
	ts := httptest.NewServer(srv)
	defer ts.Close()

	var log bytes.Buffer
	cfg := defaultConfig()
	cfg.PstoreMount = pst
	cfg.MaxRecordSize = 4 << 20
	a := &agent{Config: cfg, Log: openKmsg(filepath.Join(t.TempDir(), "no-kmsg"), &log)}
	b := boards.Defaults()
	b.Upload = ts.URL
	b.UploadTimeout = 10 * time.Second

	recs, errs := a.readRecords()
	shipped, kept := a.shipRecords(context.Background(), &b, "box-1", "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0", "6.1.0", recs)
	out := log.String()
	t.Logf("agent log:\n%s", out)

	wantKept := 1
	wantErrs := 1
	if unreadable {
		wantKept, wantErrs = 2, 2
	}
	if shipped != 5 || kept != wantKept || len(errs) != wantErrs {
		t.Errorf("shipped=%d kept=%d errors=%d, want 5/%d/%d", shipped, kept, len(errs), wantKept, wantErrs)
	}
	var left []string
	ents, _ := os.ReadDir(pst)
	for _, e := range ents {
		left = append(left, e.Name())
	}
	wantLeft := []string{"dmesg-ramoops-9"}
	if unreadable {
		wantLeft = append(wantLeft, "pmsg-ramoops-0")
	}
	if strings.Join(left, " ") != strings.Join(wantLeft, " ") {
		t.Errorf("left in pstore: %v, want %v", left, wantLeft)
	}
	// One clear line per bad record, naming it.
	for _, name := range []string{"dmesg-ramoops-9", "dmesg-efi-170000000000101002.enc.z"} {
		n := 0
		for _, l := range strings.Split(out, "\n") {
			if strings.Contains(l, name) && (strings.Contains(l, "kept") || strings.Contains(l, "corrupt")) {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%d log lines report %s, want 1", n, name)
		}
	}
	if !regexp.MustCompile(`dmesg-ramoops-9: 5242880 bytes exceeds limit of 4194304: record too large \(record kept\)`).MatchString(out) {
		t.Errorf("no clear line for the huge record")
	}
	// The collector holds the inflated text, the raw corrupt data, and the
	// two-part oops put back together.
	crash := filepath.Join(srv.Root, "box-1", "crash")
	files, _ := filepath.Glob(filepath.Join(crash, "*"))
	var metas, assembled []string
	for _, f := range files {
		switch {
		case strings.HasSuffix(f, ".json"):
			b, _ := os.ReadFile(f)
			metas = append(metas, string(b))
		case strings.HasSuffix(f, ".dmesg.txt"):
			assembled = append(assembled, f)
		}
	}
	// The single-part efi panic gets no crash id and no assembled copy.
	if len(metas) != 5 || len(assembled) != 1 {
		t.Fatalf("collector holds %d records and %d assembled crashes, want 5 and 1: %v", len(metas), len(assembled), files)
	}
	all := strings.Join(metas, "\n")
	for _, want := range []string{`"decompressed": true`, `"corrupt": true`, `"crash_id": "dmesg-ramoops-Oops-1-`, `"parts": 2`} {
		if !strings.Contains(all, want) {
			t.Errorf("no metadata has %s", want)
		}
	}
	text, _ := os.ReadFile(assembled[0])
	if want := "Oops#1 Part1..2\n<6>[ 0.0] Linux version 6.1.0\n<4>[ 5.2] Oops: 0002 [#1] SMP\n"; string(text) != want {
		t.Errorf("assembled %q, want %q", text, want)
	}
	if !strings.Contains(out, "crash record dmesg-efi-170000000000101001.enc.z: Kernel panic - not syncing: sysrq triggered crash") {
		t.Errorf("no crash line from the decompressed record")
	}
}
