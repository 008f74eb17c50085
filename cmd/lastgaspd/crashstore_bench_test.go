package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/lastgasp/lastgasp/crash/signature"
	"github.com/lastgasp/lastgasp/pstore/ship"
	"github.com/lastgasp/lastgasp/store"
	"github.com/lastgasp/lastgasp/store/pgstore"
	"github.com/lastgasp/lastgasp/store/pgstore/pgtest"
	"github.com/lastgasp/lastgasp/store/sigindex"
)

// fillFleet puts a generated fleet into the shared crash store: crashes
// crash records over hosts hosts (host-0000 ...), each a record row (a
// 2 KiB report) and its sighting in the signature index, over sigs
// signatures, all within the last day.
func fillFleet(b *testing.B, ctx context.Context, url string, db *pgstore.DB, crashes, hosts, sigs int) {
	b.Helper()
	now := time.Now()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	report := func(i int) string {
		return fmt.Sprintf("<6>[    1.000000] a line before the crash %d\n<0>[    2.000000] BUG: kernel NULL pointer dereference in driver_%d\n", i, i%sigs)
	}
	var rows [][]any
	for i := range crashes {
		host := fmt.Sprintf("host-%04d", i%hosts)
		data := []byte(report(i) + string(make([]byte, 2048)))
		sum := sha256.Sum256(data)
		digest := hex.EncodeToString(sum[:])
		path := host + "/" + store.CrashDir + "/" + store.RecordFile("dmesg-ramoops-0", digest)
		at := now.Add(-time.Duration(i) * time.Second)
		meta, _ := json.Marshal(store.RecordMeta{Metadata: ship.Metadata{Host: host, RecordName: "dmesg-ramoops-0", Digest: digest, Size: int64(len(data)), Received: at}})
		rows = append(rows, []any{host, digest, path, "dmesg-ramoops-0", int64(len(data)), data, meta,
			fmt.Sprintf("BUG: kernel NULL pointer dereference in driver_%d", i%sigs), false, "", at, at, "bench"})
	}
	if _, err := conn.CopyFrom(ctx, pgx.Identifier{"records"}, []string{"host", "digest", "path", "name", "size", "data", "meta",
		"panic_line", "verified", "linked_boot", "record_time", "received", "collector"}, pgx.CopyFromRows(rows)); err != nil {
		b.Fatal(err)
	}
	idx := db.Index()
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < crashes; i += 4 {
				title := fmt.Sprintf("BUG: kernel NULL pointer dereference in driver_%d", i%sigs)
				sig := signature.Signature{ID: signature.MakeID(title, nil), Kind: signature.KindBUG, Title: title, TitleUsec: int64(2_000_000 + i)}
				r := rows[i]
				_, err := idx.Add(ctx, sigindex.Sighting{Host: r[0].(string), Boot: fmt.Sprintf("boot-%d", i), Release: fmt.Sprintf("6.1.0-%d-amd64", i%7),
					Time: r[10].(time.Time), Source: sigindex.SourceRecord, Ref: r[2].(string), Signature: sig, Report: report(i)})
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
}

// BenchmarkPagesPostgres10k: the crash view of a collector on the shared
// crash store holding 10,000 crashes over 2,000 hosts (generated): the
// overview, a host page (5 crashes, their records' lines before the
// crash, the record list) and a signature page, each a GET over
// loopback to the answer's last byte, with 100 signatures (100 crashes,
// 20 hosts each) and with 10,000 (each crash its own).
func BenchmarkPagesPostgres10k(b *testing.B) {
	srv := pgtest.Start(b)
	ctx := context.Background()
	for _, sigs := range []int{100, 10000} {
		url, db := sharedDB(b, srv, fmt.Sprintf("pages%d", sigs))
		t0 := time.Now()
		fillFleet(b, ctx, url, db, 10000, 2000, sigs)
		b.Logf("%d signatures: 10,000 crashes over 2,000 hosts stored and indexed in %v", sigs, time.Since(t0).Round(time.Millisecond))
		view, err := newCrashView(config{store: b.TempDir(), crashStore: url}, log.New(io.Discard, "", 0), db)
		if err != nil {
			b.Fatal(err)
		}
		hs := httptest.NewServer(view.web)
		defer hs.Close()
		sigID := signature.MakeID("BUG: kernel NULL pointer dereference in driver_7", nil)
		for _, p := range []struct{ name, path string }{
			{"overview", "/ui/"},
			{"host", "/ui/host/host-0007"},
			{"signature", "/ui/sig/" + sigID},
		} {
			b.Run(fmt.Sprintf("sigs=%d/%s", sigs, p.name), func(b *testing.B) {
				var n int64
				for b.Loop() {
					resp, err := http.Get(hs.URL + p.path)
					if err != nil {
						b.Fatal(err)
					}
					n, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						b.Fatalf("GET %s: %d", p.path, resp.StatusCode)
					}
				}
				b.ReportMetric(float64(n), "page-bytes")

			})
		}
	}
}
