package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"log"
	"strings"
	"testing"
	"time"

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
