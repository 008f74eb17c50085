package pgstore_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/lastgasp/lastgasp/crash/signature"
	"github.com/lastgasp/lastgasp/pstore/records"
	"github.com/lastgasp/lastgasp/pstore/ship"
	shipserver "github.com/lastgasp/lastgasp/pstore/ship/server"
	"github.com/lastgasp/lastgasp/store"
	"github.com/lastgasp/lastgasp/store/pgstore"
	"github.com/lastgasp/lastgasp/store/pgstore/pgtest"
	"github.com/lastgasp/lastgasp/store/sigindex"
	"github.com/lastgasp/lastgasp/store/sigindex/indextest"
)

// shared is one cluster for the tests that do not stop it; each test has
// its own database.
var (
	sharedOnce sync.Once
	shared     *pgtest.Server
	sharedErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if shared != nil {
		shared.Close()
	}
	os.Exit(code)
}

func sharedServer(t testing.TB) *pgtest.Server {
	t.Helper()
	sharedOnce.Do(func() { shared, sharedErr = pgtest.New() })
	if errors.Is(sharedErr, pgtest.ErrNoPostgres) {
		t.Skipf("%v", sharedErr)
	}
	if sharedErr != nil {
		t.Fatal(sharedErr)
	}
	return shared
}

func open(t testing.TB, url string) *pgstore.DB {
	t.Helper()
	db, err := pgstore.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	return db
}

func newDB(t testing.TB) (*pgstore.DB, string) {
	url := sharedServer(t).NewDB(t)
	return open(t, url), url
}

func record(host, name string, data []byte) store.RecordMeta {
	sum := sha256.Sum256(data)
	return store.RecordMeta{Metadata: ship.Metadata{Host: host, RecordName: name, Digest: hex.EncodeToString(sum[:]),
		Size: int64(len(data)), BootID: "b2", Received: time.Date(2026, 12, 2, 8, 0, 0, 0, time.UTC)}}
}

const panicText = "<0>[   12.345678] Kernel panic - not syncing: sysrq triggered crash\n"

func TestIndexIdentity(t *testing.T) {
	srv := sharedServer(t)
	var url string
	opened := func(t *testing.T) sigindex.Index {
		url = srv.NewDB(t)
		return open(t, url).Index()
	}
	reopen := func(t *testing.T, x sigindex.Index) sigindex.Index {
		x.(*pgstore.Index).DB.Close()
		return open(t, url).Index()
	}
	indextest.Identity(t, opened, reopen)
}

func TestIndexRetention(t *testing.T) {
	srv := sharedServer(t)
	var url string
	var clock func() time.Time
	opened := func(t *testing.T, now func() time.Time) sigindex.Index {
		url, clock = srv.NewDB(t), now
		x := open(t, url).Index()
		x.Now = now
		return x
	}
	reopen := func(t *testing.T, x sigindex.Index) sigindex.Index {
		x.(*pgstore.Index).DB.Close()
		y := open(t, url).Index()
		y.Now = clock
		return y
	}
	indextest.Retention(t, opened, reopen)
}

func TestMigrations(t *testing.T) {
	ms, err := pgstore.Migrations()
	if err != nil || len(ms) < 2 {
		t.Fatalf("Migrations() = %d, %v", len(ms), err)
	}
	db, url := newDB(t)
	if db.Version != len(ms) {
		t.Errorf("Version = %d, want %d", db.Version, len(ms))
	}
	// Open again: nothing to apply, same version, rows once each.
	db2 := open(t, url)
	if db2.Version != len(ms) {
		t.Errorf("second Open: Version = %d, want %d", db2.Version, len(ms))
	}
	ctx := context.Background()
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	var n, max int
	if err := c.QueryRow(ctx, "SELECT count(*), max(version) FROM schema_version").Scan(&n, &max); err != nil || n != len(ms) || max != len(ms) {
		t.Fatalf("schema_version: %d rows, max %d, %v; want %d", n, max, err, len(ms))
	}
	// A database from a newer lastgaspd is refused.
	if _, err := c.Exec(ctx, "INSERT INTO schema_version (version, name) VALUES ($1, 'future')", len(ms)+1); err != nil {
		t.Fatal(err)
	}
	if _, err := pgstore.Open(ctx, url); !errors.Is(err, pgstore.ErrSchemaNewer) {
		t.Errorf("Open of a newer schema = %v, want ErrSchemaNewer", err)
	}
}

func TestConcurrentOpenMigratesOnce(t *testing.T) {
	url := sharedServer(t).NewDB(t)
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			db, err := pgstore.Open(context.Background(), url)
			if err == nil {
				db.Close()
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Open %d: %v", i, err)
		}
	}
}

func TestPutStoredOnceFleetWide(t *testing.T) {
	_, url := newDB(t)
	// Two collectors, each its own pool.
	c1 := &pgstore.Records{DB: open(t, url), Collector: "c1"}
	c2 := &pgstore.Records{DB: open(t, url), Collector: "c2"}
	data := []byte("line\n" + panicText)
	meta := record("box-1", "dmesg-ramoops-0", data)
	const n = 8
	var wg sync.WaitGroup
	res := make([]store.Stored, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := c1
			if i%2 == 1 {
				r = c2
			}
			res[i], errs[i] = r.Put(meta, bytes.NewReader(data), "")
		}()
	}
	wg.Wait()
	fresh := 0
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("Put %d: %v", i, errs[i])
		}
		if !res[i].Duplicate {
			fresh++
		}
		if res[i].Path != "box-1/crash/dmesg-ramoops-0."+meta.Digest[:16] {
			t.Errorf("Put %d: path %q", i, res[i].Path)
		}
	}
	if fresh != 1 {
		t.Errorf("%d Puts stored the record, want 1 (the others duplicates)", fresh)
	}
	if cnt, err := c1.DB.CountRecords(context.Background(), "box-1", meta.Digest); err != nil || cnt != 1 {
		t.Errorf("rows = %d, %v; want 1", cnt, err)
	}
	got, err := c2.DB.ReadRecord(context.Background(), res[0].Path, 0)
	if err != nil || !bytes.Equal(got, data) {
		t.Errorf("ReadRecord = %q, %v", got, err)
	}
	tail, err := c2.DB.ReadRecord(context.Background(), res[0].Path, 6)
	if err != nil || string(tail) != "crash\n" {
		t.Errorf("ReadRecord tail = %q, %v", tail, err)
	}
	mj, err := c2.DB.ReadRecord(context.Background(), res[0].Path+store.MetaSuffix, 0)
	if err != nil || !strings.Contains(string(mj), `"panic_line": "Kernel panic - not syncing: sysrq triggered crash"`) && !strings.Contains(string(mj), `"panic_line":"Kernel panic`) {
		t.Errorf("metadata = %s, %v", mj, err)
	}
	latest, err := c1.DB.Latest(context.Background())
	if err != nil || latest["box-1"].Record == nil || latest["box-1"].Record.Line != "Kernel panic - not syncing: sysrq triggered crash" {
		t.Errorf("Latest = %+v, %v", latest, err)
	}
	// The same bytes from another host are another record.
	other := record("box-2", "dmesg-ramoops-0", data)
	if st, err := c2.Put(other, bytes.NewReader(data), ""); err != nil || st.Duplicate {
		t.Errorf("other host: %+v, %v; want stored", st, err)
	}
}

func TestPutRefusesBadBodies(t *testing.T) {
	db, _ := newDB(t)
	r := &pgstore.Records{DB: db}
	data := []byte(panicText)
	tests := []struct {
		name string
		meta store.RecordMeta
		body io.Reader
		want error
	}{
		{"short", record("h", "dmesg-ramoops-0", data), bytes.NewReader(data[:10]), store.ErrSizeMismatch},
		{"long", record("h", "dmesg-ramoops-0", data), bytes.NewReader(append(data, 'x')), store.ErrSizeMismatch},
		{"other bytes", record("h", "dmesg-ramoops-0", data), bytes.NewReader(bytes.ToUpper(data)), store.ErrDigestMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := r.Put(tt.meta, tt.body, ""); !errors.Is(err, tt.want) {
				t.Errorf("Put = %v, want %v", err, tt.want)
			}
		})
	}
	var be *store.BodyError
	if _, err := r.Put(record("h", "x", data), iotestErr{}, ""); !errors.As(err, &be) {
		t.Errorf("Put with a failing body = %v, want *store.BodyError", err)
	}
	if n, err := db.CountRecords(context.Background(), "", ""); err != nil || n != 0 {
		t.Errorf("rows after refused Puts = %d, %v; want 0", n, err)
	}
	// Quota.
	q := &pgstore.Records{DB: db, HostQuota: 10000}
	big := bytes.Repeat([]byte("x"), 3000)
	if _, err := q.Put(record("h", "a", big), bytes.NewReader(big), ""); err != nil {
		t.Fatal(err)
	}
	big2 := bytes.Repeat([]byte("y"), 3000)
	var qe *store.QuotaError
	if _, err := q.Put(record("h", "b", big2), bytes.NewReader(big2), ""); !errors.As(err, &qe) {
		t.Errorf("Put past the quota = %v, want *store.QuotaError", err)
	}
}

type iotestErr struct{}

func (iotestErr) Read([]byte) (int, error) { return 0, errors.New("connection reset") }

// A 16-digit prefix collision gets the full digest as its name; removal
// forgets the record so that it is stored again.
func TestPathCollisionAndRemove(t *testing.T) {
	db, _ := newDB(t)
	r := &pgstore.Records{DB: db}
	ctx := context.Background()
	a := []byte("a\n")
	ma := record("h", "dmesg-ramoops-0", a)
	sa, err := r.Put(ma, bytes.NewReader(a), "")
	if err != nil {
		t.Fatal(err)
	}
	// Fake a second record with the same name and 16-digit prefix.
	b := []byte("b\n")
	mb := record("h", "dmesg-ramoops-0", b)
	mb.Digest = ma.Digest[:16] + strings.Repeat("0", 48)
	c, _ := pgx.Connect(ctx, sharedURL(t, db))
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, `INSERT INTO records (host, digest, path, name, size, data, meta, record_time, received)
		SELECT host, $1, path || '-tmp', name, size, data, meta, record_time, received FROM records WHERE path = $2`, mb.Digest, sa.Path); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Exec(ctx, "DELETE FROM records WHERE path = $1", sa.Path); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Exec(ctx, "UPDATE records SET path = $1 WHERE digest = $2", sa.Path, mb.Digest); err != nil {
		t.Fatal(err)
	}
	sa2, err := r.Put(ma, bytes.NewReader(a), "")
	if err != nil || sa2.Duplicate || sa2.Path != "h/crash/dmesg-ramoops-0."+ma.Digest {
		t.Fatalf("Put after a prefix collision = %+v, %v; want the full digest", sa2, err)
	}
	if err := r.RemoveRecord(sa2.Path); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ReadRecord(ctx, sa2.Path, 0); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("ReadRecord of a removed record = %v, want ErrNotExist", err)
	}
	if st, err := r.Put(ma, bytes.NewReader(a), ""); err != nil || st.Duplicate {
		t.Errorf("Put after RemoveRecord = %+v, %v; want stored again", st, err)
	}
}

// sharedURL is the URL of db's database on the shared server.
func sharedURL(t *testing.T, db *pgstore.DB) string {
	s := db.String()
	return shared.URL(s[strings.LastIndex(s, "/")+1:])
}

// TestDatabaseDown: with the cluster stopped, Put fails with
// ErrUnavailable and the upload server answers 503; a cluster stopped
// while the body arrives leaves no row; once it is back, the same upload
// is stored, once.
func TestDatabaseDown(t *testing.T) {
	srv := pgtest.Start(t) // its own cluster: this test stops it
	url, err := srv.CreateDB(context.Background(), "down")
	if err != nil {
		t.Fatal(err)
	}
	db := open(t, url)
	db.Timeout = 3 * time.Second
	recs := &pgstore.Records{DB: db}
	up := &shipserver.Server{Store: recs, BodyTimeout: -1}
	hs := httptest.NewServer(up)
	defer hs.Close()
	data := []byte("boot\n" + panicText)
	meta := record("box", "dmesg-ramoops-0", data)
	upload := func() (int, string) {
		req, _ := http.NewRequest(http.MethodPut, hs.URL+ship.RecordPath("box", meta.Digest), bytes.NewReader(data))
		req.Header.Set(ship.HeaderRecordName, meta.RecordName)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := recs.Put(meta, bytes.NewReader(data), ""); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("Put with the database down = %v, want ErrUnavailable", err)
	}
	if code, body := upload(); code != http.StatusServiceUnavailable {
		t.Errorf("upload with the database down = %d %s, want 503", code, body)
	}
	if got := up.Stats().Rejected["store-unavailable"]; got != 2-1 {
		t.Errorf("rejected store-unavailable = %d, want 1", got)
	}

	// Down in the middle of a write: the body's reader stops the cluster
	// half way.
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	mid := &stopHalfway{r: bytes.NewReader(data), at: len(data) / 2, stop: func() { srv.Stop() }}
	if _, err := recs.Put(meta, mid, ""); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("Put with the database stopped mid-body = %v, want ErrUnavailable", err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	if n, err := db.CountRecords(context.Background(), "", ""); err != nil || n != 0 {
		t.Fatalf("rows after failed Puts = %d, %v; want 0 (nothing half-written)", n, err)
	}
	if code, body := upload(); code != http.StatusOK || !strings.Contains(body, `"stored":true`) {
		t.Fatalf("upload with the database back = %d %s, want 200 stored", code, body)
	}
	if code, body := upload(); code != http.StatusOK || !strings.Contains(body, `"duplicate":true`) {
		t.Errorf("second upload = %d %s, want 200 duplicate", code, body)
	}
	if n, err := db.CountRecords(context.Background(), "", ""); err != nil || n != 1 {
		t.Errorf("rows = %d, %v; want 1", n, err)
	}
}

type stopHalfway struct {
	r    io.Reader
	at   int
	n    int
	stop func()
	done bool
}

func (s *stopHalfway) Read(p []byte) (int, error) {
	if !s.done && s.n >= s.at {
		s.done = true
		s.stop()
	}
	if len(p) > 16 {
		p = p[:16]
	}
	n, err := s.r.Read(p)
	s.n += n
	return n, err
}

func TestOpenUnreachable(t *testing.T) {
	// A port nothing listens on (the shared cluster's, plus one, is
	// unlikely to be taken; any connection error will do).
	_, err := pgstore.Open(context.Background(), "postgres://postgres:secret@127.0.0.1:1/none?sslmode=disable&connect_timeout=2")
	if !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Open of an unreachable database = %v, want ErrUnavailable", err)
	}
	if strings.Contains(err.Error(), "secret") {
		t.Errorf("error shows the password: %v", err)
	}
	if !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Errorf("error does not name the database: %v", err)
	}
}

// Two collectors add the record and the live copy of one crash at the
// same moment: one crash, and exactly one of them sees NewSignature.
func TestIndexConcurrentCollectors(t *testing.T) {
	_, url := newDB(t)
	x1, x2 := open(t, url).Index(), open(t, url).Index()
	ctx := context.Background()
	for round := range 20 {
		id := fmt.Sprintf("sig%02d", round)
		sig := signature.Signature{ID: id, Kind: signature.KindPanic, Title: "Kernel panic - not syncing: " + id, TitleUsec: 1234}
		at := time.Date(2026, 12, 2, 0, 0, round, 0, time.UTC)
		live := sigindex.Sighting{Host: "h", Boot: "b1", Time: at, Source: sigindex.SourceNetconsole, Ref: "h/b1/kernel.log seq=" + id, Signature: sig}
		rec := sigindex.Sighting{Host: "h", Boot: "b1", Time: at, Source: sigindex.SourceRecord, Ref: "h/crash/" + id, Signature: sig}
		var a1, a2 sigindex.Added
		var e1, e2 error
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); a1, e1 = x1.Add(ctx, live) }()
		go func() { defer wg.Done(); a2, e2 = x2.Add(ctx, rec) }()
		wg.Wait()
		if e1 != nil || e2 != nil {
			t.Fatal(e1, e2)
		}
		if a1.NewSignature == a2.NewSignature || a1.NewCrash == a2.NewCrash {
			t.Errorf("round %d: new signature %v/%v, new crash %v/%v; want exactly one of each", round, a1.NewSignature, a2.NewSignature, a1.NewCrash, a2.NewCrash)
		}
		s, cs, err := x1.Signature(ctx, id, "")
		if err != nil || s.Count != 1 || len(cs) != 1 || len(cs[0].Sightings) != 2 || s.Sample.Source != sigindex.SourceRecord {
			t.Errorf("round %d: Signature = count %d, %d crashes, %v; want 1 crash of 2 sightings, a record sample", round, s.Count, len(cs), err)
		}
	}
}

// TestDatabaseDownAgentKeeps: the agent's own client (ship.ShipAll, as the
// agent calls it) against an upload server on a crash store whose
// database is down: the 503 is retried, then the record is kept (not
// removed) and no row exists; with the database back the next boot's
// upload stores it once and only then removes it.
func TestDatabaseDownAgentKeeps(t *testing.T) {
	srv := pgtest.Start(t) // its own cluster: this test stops it
	url, err := srv.CreateDB(context.Background(), "agentkeeps")
	if err != nil {
		t.Fatal(err)
	}
	db := open(t, url)
	db.Timeout = 3 * time.Second
	up := &shipserver.Server{Store: &pgstore.Records{DB: db}, BodyTimeout: -1}
	hs := httptest.NewServer(up)
	defer hs.Close()
	data := []byte("boot\n" + panicText)
	rec := records.Record{Name: "dmesg-ramoops-0", Data: data, Size: int64(len(data))}
	ship1 := func() (shipped, kept int, removed []string, err error) {
		c := &ship.Client{BaseURL: hs.URL, Host: "box", BootID: "b", Timeout: 5 * time.Second, Attempts: 2, Backoff: 10 * time.Millisecond}
		shipped, kept, err = ship.ShipAll(context.Background(), c, []records.Record{rec},
			func(r records.Record) error { removed = append(removed, r.Name); return nil }, t.Logf)
		return shipped, kept, removed, err
	}

	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	shipped, kept, removed, err := ship1()
	var se *ship.StatusError
	if shipped != 0 || kept != 1 || len(removed) != 0 || !errors.As(err, &se) || se.Code != http.StatusServiceUnavailable {
		t.Errorf("ShipAll with the database down = shipped %d, kept %d, removed %v, %v; want kept, not removed, a 503", shipped, kept, removed, err)
	}
	if got := up.Stats().Rejected["store-unavailable"]; got != 2 {
		t.Errorf("rejected store-unavailable = %d, want 2 (two attempts)", got)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	if n, err := db.CountRecords(context.Background(), "", ""); err != nil || n != 0 {
		t.Fatalf("rows after the refused uploads = %d, %v; want 0", n, err)
	}
	shipped, kept, removed, err = ship1()
	if shipped != 1 || kept != 0 || len(removed) != 1 || err != nil {
		t.Errorf("ShipAll with the database back = shipped %d, kept %d, removed %v, %v; want shipped and removed", shipped, kept, removed, err)
	}
	if n, err := db.CountRecords(context.Background(), "box", ""); err != nil || n != 1 {
		t.Errorf("rows = %d, %v; want 1", n, err)
	}
}
