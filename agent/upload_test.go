package agent

import (
	"bytes"
	"context"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lastgasp/lastgasp/boards"
	"github.com/lastgasp/lastgasp/pstore/ship/server"
)

// TestShipRecordsFailover: the board names a collector that is down and
// then one that is up; the records go to the second and only then leave
// pstore. With both down, they stay.
func TestShipRecordsFailover(t *testing.T) {
	for _, up := range []bool{true, false} {
		pst := t.TempDir()
		for _, n := range []string{"dmesg-ramoops-0", "console-ramoops-0"} {
			if err := os.WriteFile(filepath.Join(pst, n), []byte("<0>[ 1.0] Kernel panic - not syncing: "+n+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		down := "http://" + l.Addr().String()
		l.Close()
		srv := &server.Server{Root: t.TempDir(), Logf: t.Logf}
		ts := httptest.NewServer(srv)
		second := ts.URL
		if !up {
			ts.Close()
		}
		var log bytes.Buffer
		cfg := defaultConfig()
		cfg.PstoreMount = pst
		a := &agent{Config: cfg, Log: openKmsg(filepath.Join(t.TempDir(), "no-kmsg"), &log)}
		b := boards.Defaults()
		b.Upload = down + "," + second
		b.UploadTimeout = 5 * time.Second
		recs, _ := a.readRecords()
		shipped, kept := a.shipRecords(context.Background(), &b, "box-1", "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0", "6.1.0", recs)
		ts.Close()
		left, _ := os.ReadDir(pst)
		stored, _ := filepath.Glob(filepath.Join(srv.Root, "box-1", "crash", "*.json"))
		switch {
		case up && (shipped != 2 || kept != 0 || len(left) != 0 || len(stored) != 2):
			t.Errorf("second collector up: shipped=%d kept=%d left=%d stored=%d, want 2/0/0/2\n%s", shipped, kept, len(left), len(stored), log.String())
		case !up && (shipped != 0 || kept != 2 || len(left) != 2):
			t.Errorf("both down: shipped=%d kept=%d left=%d, want 0/2/2\n%s", shipped, kept, len(left), log.String())
		}
		if up && !strings.Contains(log.String(), "failing over to "+second) {
			t.Errorf("agent log does not say it failed over:\n%s", log.String())
		}
	}
}
