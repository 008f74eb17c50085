package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/lastgasp/lastgasp/pstore/records"
	"github.com/lastgasp/lastgasp/pstore/ship"
	"github.com/lastgasp/lastgasp/store"
	"github.com/lastgasp/lastgasp/store/pgstore"
	"github.com/lastgasp/lastgasp/store/pgstore/pgtest"
)

// TestCrashStoreShared: -crash-store opens the database; a record another
// collector stored shows in this collector's /crashes listing; a bad URL
// or a database that is down is an error at start.
func TestCrashStoreShared(t *testing.T) {
	srv := pgtest.Start(t)
	ctx := context.Background()
	url, err := srv.CreateDB(ctx, "fleet")
	if err != nil {
		t.Fatal(err)
	}
	logger := log.New(io.Discard, "", 0)
	db, err := openCrashStore(ctx, config{crashStore: url}, logger)
	if err != nil || db == nil {
		t.Fatalf("openCrashStore = %v, %v", db, err)
	}
	defer db.Close()
	other, err := pgstore.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	data := []byte("<0>[ 1.0] Kernel panic - not syncing: elsewhere\n")
	sum := sha256.Sum256(data)
	meta := store.RecordMeta{Metadata: ship.Metadata{Host: "far", RecordName: "dmesg-ramoops-0", Digest: hex.EncodeToString(sum[:]), Size: int64(len(data)), Received: time.Now()}}
	if _, err := (&pgstore.Records{DB: other}).Put(meta, bytes.NewReader(data), ""); err != nil {
		t.Fatal(err)
	}
	cs, err := mergeShared(ctx, db, []store.HostCrashes{{Host: "near"}})
	if err != nil || len(cs) != 2 || cs[0].Host != "far" || cs[0].Record == nil || !strings.Contains(cs[0].Record.Line, "elsewhere") {
		t.Fatalf("mergeShared = %+v, %v; want far's record and near", cs, err)
	}
	if db, err := openCrashStore(ctx, config{crashStore: "mysql://x"}, logger); err == nil || db != nil {
		t.Errorf("openCrashStore(mysql://) = %v, %v; want an error", db, err)
	}
	srv.Stop()
	if db, err := openCrashStore(ctx, config{crashStore: url + "&connect_timeout=2"}, logger); err == nil || db != nil || !strings.Contains(err.Error(), "crash store unavailable") {
		t.Errorf("openCrashStore with the database down = %v, %v; want crash store unavailable", db, err)
	}
}

// sharedDB creates the database name on srv and opens it until the test
// ends.
func sharedDB(t testing.TB, srv *pgtest.Server, name string) (string, *pgstore.DB) {
	t.Helper()
	url, err := srv.CreateDB(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	db, err := pgstore.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	return url, db
}

// startShared runs lastgaspd on loopback with -crash-store url (and
// extra flags) until the test ends, and returns its HTTP address.
func startShared(t *testing.T, url string, extra ...string) string {
	t.Helper()
	udp, httpAddr, dir := freePort(t, "udp"), freePort(t, "tcp"), t.TempDir()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	logs := &syncWriter{w: &strings.Builder{}}
	go func() {
		done <- run(ctx, append([]string{"-netconsole", udp, "-http", httpAddr, "-store", dir, "-crash-store", url}, extra...), io.Discard, logs)
	}()
	t.Cleanup(func() { cancel(); <-done })
	deadline := time.Now().Add(10 * time.Second)
	for {
		if resp, err := http.Get("http://" + httpAddr + "/metrics"); err == nil {
			resp.Body.Close()
			return httpAddr
		}
		select {
		case err := <-done:
			t.Fatalf("lastgaspd exited: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("lastgaspd did not come up")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestSharedRecordsOnAnyCollector: a record uploaded to one collector is
// listed, shown (the lines before its panic) and downloaded byte for byte
// on another collector of the same crash store, which has no file of it;
// with the database down the download is a 503, not a 404.
func TestSharedRecordsOnAnyCollector(t *testing.T) {
	srv := pgtest.Start(t)
	url, err := srv.CreateDB(context.Background(), "anycollector")
	if err != nil {
		t.Fatal(err)
	}
	c1, c2 := startShared(t, url), startShared(t, url)
	// A record the QEMU guests produced (sysrq panic, call trace).
	data, err := os.ReadFile("../../crash/signature/testdata/qemu/sysrq-1")
	if err != nil {
		t.Fatal(err)
	}
	cl := &ship.Client{BaseURL: "http://" + c1, Host: "box", BootID: "b2", Timeout: 10 * time.Second}
	shipped, kept, err := ship.ShipAll(context.Background(), cl, []records.Record{{Name: "dmesg-ramoops-0", Data: data, Size: int64(len(data))}},
		func(records.Record) error { return nil }, t.Logf)
	if shipped != 1 || kept != 0 {
		t.Fatalf("ShipAll to collector 1 = %d shipped, %d kept: %v", shipped, kept, err)
	}
	sum := sha256.Sum256(data)
	ref := "box/crash/dmesg-ramoops-0." + hex.EncodeToString(sum[:])[:16]

	var page string
	deadline := time.Now().Add(10 * time.Second)
	for {
		var code int
		code, page = httpGet(t, "http://"+c2+"/ui/host/box")
		if code == 200 && strings.Contains(page, `class="download"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("collector 2's host page never showed box's crash: %d %s", code, page)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, want := range []string{
		`<a class="download" href="/ui/file/` + ref + `">`,    // the crash's record copy
		`<a class="record-file" href="/ui/file/` + ref + `">`, // the host's records
		fmt.Sprintf("<td>%d</td>", len(data)),
		"sysrq: Trigger a crash", // a line before the panic, from the record
	} {
		if !strings.Contains(page, want) {
			t.Errorf("collector 2's host page lacks %q:\n%s", want, page)
		}
	}
	code, got := httpGet(t, "http://"+c2+"/ui/file/"+ref)
	if code != 200 || got != string(data) {
		t.Errorf("collector 2's download of %s = %d, %d bytes; want 200 and the %d bytes uploaded", ref, code, len(got), len(data))
	}
	if code, _ := httpGet(t, "http://"+c2+"/ui/file/box/crash/dmesg-ramoops-0.0000000000000000"); code != http.StatusNotFound {
		t.Errorf("download of a record not stored = %d, want 404", code)
	}
	srv.Stop()
	if code, _ := httpGet(t, "http://"+c2+"/ui/file/"+ref); code != http.StatusServiceUnavailable {
		t.Errorf("download with the database down = %d, want 503", code)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
}

// TestSharedRetention: -retention applies to the shared crash store: at
// start, a record received longer ago is deleted from the database and
// counted in /metrics; a recent one is kept.
func TestSharedRetention(t *testing.T) {
	ctx := context.Background()
	url, db := sharedDB(t, pgtest.Start(t), "retention")
	for host, age := range map[string]time.Duration{"old": 30 * 24 * time.Hour, "new": time.Hour} {
		data := []byte("<0>[ 1.0] Kernel panic - not syncing: " + host + "\n")
		sum := sha256.Sum256(data)
		meta := store.RecordMeta{Metadata: ship.Metadata{Host: host, RecordName: "dmesg-ramoops-0", Digest: hex.EncodeToString(sum[:]),
			Size: int64(len(data)), Received: time.Now().Add(-age)}}
		if _, err := (&pgstore.Records{DB: db}).Put(meta, bytes.NewReader(data), ""); err != nil {
			t.Fatal(err)
		}
	}
	addr := startShared(t, url, "-retention", "168h")
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, m := httpGet(t, "http://"+addr+"/metrics")
		if strings.Contains(m, "lastgaspd_crash_store_expired_total 1\n") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("lastgaspd_crash_store_expired_total never 1:\n%s", m)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for host, want := range map[string]int{"old": 0, "new": 1} {
		if n, err := db.CountRecords(ctx, host, ""); err != nil || n != want {
			t.Errorf("rows of %s = %d, %v; want %d", host, n, err, want)
		}
	}
}
