package pgstore_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"

	"github.com/lastgasp/lastgasp/pstore/records"
	"github.com/lastgasp/lastgasp/pstore/ship"
	shipserver "github.com/lastgasp/lastgasp/pstore/ship/server"
	"github.com/lastgasp/lastgasp/store"
	"github.com/lastgasp/lastgasp/store/pgstore"
)

// efiDir holds a real multi-part crash: the 14 dmesg-efi-* variables a
// sysrq panic left in OVMF's NVRAM (scenario pstore-efi-coldboot, Debian
// 6.1, pstore.kmsg_bytes 10240), as the file store received them, and the
// <crash id>.dmesg.txt the file store assembled from them in that run.
const (
	efiDir     = "testdata/efi-panic-14parts"
	efiCrashID = "dmesg-efi-Panic-1-1796228255"
)

// efiParts returns the parts of the real EFI crash, Part1 first.
func efiParts(t testing.TB) (names []string, parts [][]byte) {
	t.Helper()
	for p := 1; p <= 14; p++ {
		name := fmt.Sprintf("dmesg-efi-1796228255%02d001", p) // efi-pstore's id: time, part, count
		b, err := os.ReadFile(filepath.Join(efiDir, name))
		if err != nil {
			t.Fatal(err)
		}
		if h, ok := records.ParsePartHeader(b); !ok || h.Part != p {
			t.Fatalf("%s: header %+v, %v; want Part%d", name, h, ok, p)
		}
		names, parts = append(names, name), append(parts, b)
	}
	return names, parts
}

// partMeta is the upload of part p of parts of crash id.
func partMeta(host, name, id string, p, parts int, data []byte) store.RecordMeta {
	m := record(host, name, data)
	m.CrashID, m.Part, m.Parts = id, p, parts
	m.RecordType = "dmesg"
	return m
}

// fileAssembled is what the file store writes for the same parts: the
// reference the shared store must match.
func fileAssembled(t *testing.T, id string, names []string, parts [][]byte, limit int64) (string, bool) {
	t.Helper()
	r := &store.Records{Root: t.TempDir(), MaxAssembled: limit, Logf: t.Logf}
	var st store.Stored
	for i, b := range parts {
		s, err := r.Put(partMeta("box", names[i], id, i+1, len(parts), b), bytes.NewReader(b), "")
		if err != nil {
			t.Fatal(err)
		}
		if s.Assembled != "" {
			st = s
		}
	}
	if st.Assembled == "" {
		t.Fatal("the file store assembled nothing")
	}
	b, err := os.ReadFile(filepath.Join(r.Root, st.Assembled))
	if err != nil {
		t.Fatal(err)
	}
	return string(b), st.Truncated
}

// TestAssembleAsFileStore: the parts of a multi-part crash, uploaded in
// any order and split between two collectors, are assembled once, into
// the text the file store writes for them (its .dmesg.txt byte for byte,
// truncation and its note included).
func TestAssembleAsFileStore(t *testing.T) {
	efiNames, efi := efiParts(t)
	const small = "dmesg-efi-Panic-1-1764064800"
	smallCase := func(parts ...string) ([]string, [][]byte) {
		var names []string
		var bs [][]byte
		for i, p := range parts {
			names, bs = append(names, fmt.Sprintf("dmesg-efi-%d", i+1)), append(bs, []byte(p))
		}
		return names, bs
	}
	type tc struct {
		name      string
		id        string
		names     []string
		parts     [][]byte // Part1 first
		order     []int    // upload order (indexes into parts); nil: Part1..PartN
		limit     int64
		truncated bool
		want      string // "" : the file store's text
	}
	real, err := os.ReadFile(filepath.Join(efiDir, efiCrashID+store.AssembledSuffix))
	if err != nil {
		t.Fatal(err)
	}
	cases := []tc{
		{name: "real EFI panic, 14 parts in order", id: efiCrashID, names: efiNames, parts: efi, want: string(real)},
		{name: "real EFI panic, newest part last", id: efiCrashID, names: efiNames, parts: efi,
			order: []int{13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0}, want: string(real)},
		{name: "real EFI panic, shuffled", id: efiCrashID, names: efiNames, parts: efi,
			order: []int{6, 0, 13, 2, 9, 4, 11, 1, 8, 12, 3, 10, 5, 7}, want: string(real)},
		{name: "real EFI panic cut to 8 KiB", id: efiCrashID, names: efiNames, parts: efi, limit: 8 << 10, truncated: true},
		{name: "real EFI panic cut inside a part", id: efiCrashID, names: efiNames, parts: efi, limit: 5000, truncated: true},
		{name: "real EFI panic cut to less than the note", id: efiCrashID, names: efiNames, parts: efi, limit: 100, truncated: true},
	}
	for _, c := range []struct {
		name  string
		parts []string
	}{
		{"no trailing newlines", []string{"Panic#2 Part1\nnewest", "Panic#2 Part2\nolder"}},
		{"a part that is only its header", []string{"Oops#1 Part1\nnewest\n", "Oops#1 Part2"}},
		{"an empty part", []string{"Panic#1 Part1\nnewest\n", ""}},
		{"no part headers", []string{"newest\n", "oldest\n"}},
		{"header line with CR", []string{"Panic#1 Part1\r\nnewest\n", "Panic#1 Part2\r\nold\n"}},
	} {
		names, parts := smallCase(c.parts...)
		cases = append(cases, tc{name: c.name, id: small, names: names, parts: parts, want: string(records.Assemble(parts))})
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			want, wantTrunc := tt.want, false
			if fw, ft := fileAssembled(t, tt.id, tt.names, tt.parts, tt.limit); want == "" {
				want, wantTrunc = fw, ft
			} else if fw != want {
				t.Fatalf("the file store's own text differs from the reference:\n%s", cmp.Diff(want, fw))
			}
			if wantTrunc != tt.truncated {
				t.Fatalf("file store truncated = %v, want %v", wantTrunc, tt.truncated)
			}
			_, url := newDB(t)
			cs := []*pgstore.Records{
				{DB: open(t, url), Collector: "c1", MaxAssembled: tt.limit},
				{DB: open(t, url), Collector: "c2", MaxAssembled: tt.limit},
			}
			order := tt.order
			if order == nil {
				for i := range tt.parts {
					order = append(order, i)
				}
			}
			var got []store.Stored
			for k, i := range order {
				m := partMeta("box", tt.names[i], tt.id, i+1, len(tt.parts), tt.parts[i])
				st, err := cs[k%2].Put(m, bytes.NewReader(tt.parts[i]), "")
				if err != nil {
					t.Fatalf("Put part %d: %v", i+1, err)
				}
				if st.Assembled != "" && k != len(order)-1 {
					t.Errorf("part %d (upload %d of %d) assembled the crash early", i+1, k+1, len(order))
				}
				got = append(got, st)
			}
			last := got[len(got)-1]
			wantPath := "box/crash/" + tt.id + store.AssembledSuffix
			if last.Assembled != wantPath || last.Truncated != tt.truncated {
				t.Fatalf("last Put = %+v, want Assembled %s, Truncated %v", last, wantPath, tt.truncated)
			}
			if n := cs[0].Stats().Assembled + cs[1].Stats().Assembled; n != 1 {
				t.Errorf("assembled %d times, want 1", n)
			}
			for i, c := range cs {
				text, err := c.DB.ReadRecord(context.Background(), wantPath, 0)
				if err != nil {
					t.Fatalf("collector %d: ReadRecord(%s): %v", i+1, wantPath, err)
				}
				if diff := cmp.Diff(want, string(text)); diff != "" {
					t.Fatalf("collector %d: assembled text (-file store +shared store):\n%s", i+1, diff)
				}
			}
			if tt.limit > 0 && int64(len(want)) > max(tt.limit, 256) {
				t.Errorf("assembled text %d bytes, over the bound %d", len(want), tt.limit)
			}
			// Uploaded again: stored, assembled, nothing new.
			m := partMeta("box", tt.names[0], tt.id, 1, len(tt.parts), tt.parts[0])
			if st, err := cs[1].Put(m, bytes.NewReader(tt.parts[0]), ""); err != nil || !st.Duplicate || st.Assembled != "" {
				t.Errorf("Part1 again = %+v, %v; want a duplicate, nothing assembled", st, err)
			}
		})
	}
}

// TestAssembleConcurrentCollectors: two upload servers on one cluster,
// the parts of the real EFI crash uploaded all at once, either each part
// to both (28 PUTs in flight) or the odd parts to one and the even parts
// to the other: each crash has one row per part and one assembled text,
// assembled by exactly one of the collectors, equal to the file store's.
func TestAssembleConcurrentCollectors(t *testing.T) {
	names, parts := efiParts(t)
	want, err := os.ReadFile(filepath.Join(efiDir, efiCrashID+store.AssembledSuffix))
	if err != nil {
		t.Fatal(err)
	}
	_, url := newDB(t)
	var recs []*pgstore.Records
	var urls []string
	for i := range 2 {
		r := &pgstore.Records{DB: open(t, url), Collector: fmt.Sprintf("c%d", i+1)}
		hs := httptest.NewServer(&shipserver.Server{Store: r, BodyTimeout: -1})
		t.Cleanup(hs.Close)
		recs, urls = append(recs, r), append(urls, hs.URL)
	}
	const rounds = 4
	for round := range rounds {
		host := fmt.Sprintf("box-%d", round)
		var wg sync.WaitGroup
		errs := make(chan error, 2*len(parts))
		for i, b := range parts {
			to := urls // every part to both collectors
			if round%2 == 1 {
				to = urls[i%2 : i%2+1] // odd parts to one, even parts to the other
			}
			for _, u := range to {
				wg.Add(1)
				go func() {
					defer wg.Done()
					c := &ship.Client{BaseURL: u, Host: host, BootID: "b2", Timeout: 20 * time.Second}
					rec := records.Record{Name: names[i], Type: "dmesg", Backend: "efi", Data: b, Size: int64(len(b)),
						CrashID: efiCrashID, Part: i + 1, Parts: len(parts)}
					if _, err := c.Ship(context.Background(), rec); err != nil {
						errs <- fmt.Errorf("%s part %d to %s: %w", host, i+1, u, err)
					}
				}()
			}
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		if n, err := recs[0].DB.CountRecords(context.Background(), host, ""); err != nil || n != len(parts) {
			t.Errorf("%s: %d rows, %v; want %d", host, n, err, len(parts))
		}
		text, err := recs[1].DB.ReadRecord(context.Background(), host+"/crash/"+efiCrashID+store.AssembledSuffix, 0)
		if err != nil {
			t.Fatalf("%s: %v", host, err)
		}
		if !bytes.Equal(text, want) {
			t.Errorf("%s: assembled text differs from the file store's:\n%s", host, cmp.Diff(string(want), string(text)))
		}
	}
	a1, a2 := recs[0].Stats().Assembled, recs[1].Stats().Assembled
	if a1+a2 != rounds {
		t.Errorf("collectors assembled %d + %d crashes, want %d in all (each once)", a1, a2, rounds)
	}
	t.Logf("assembled by collector 1: %d, collector 2: %d", a1, a2)
	c, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	var n, distinct int
	if err := c.QueryRow(context.Background(), "SELECT count(*), count(DISTINCT host) FROM assembled").Scan(&n, &distinct); err != nil || n != rounds || distinct != rounds {
		t.Errorf("assembled rows = %d over %d hosts, %v; want %d, one per host", n, distinct, err, rounds)
	}
}

// TestAssembleListedAndExpired: the host's record list shows the
// assembled text beside its parts (as the file store's crash directory
// does), and retention deletes it with them.
func TestAssembleListedAndExpired(t *testing.T) {
	names, parts := efiParts(t)
	db, _ := newDB(t)
	r := &pgstore.Records{DB: db}
	for i, b := range parts {
		if _, err := r.Put(partMeta("box", names[i], efiCrashID, i+1, len(parts), b), bytes.NewReader(b), ""); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	rs, err := db.HostRecords(ctx, "box")
	if err != nil {
		t.Fatal(err)
	}
	var texts []string
	for _, sr := range rs {
		if strings.HasSuffix(sr.Path, store.AssembledSuffix) {
			texts = append(texts, sr.Path)
			want, _ := os.ReadFile(filepath.Join(efiDir, efiCrashID+store.AssembledSuffix))
			if sr.Meta.Size != int64(len(want)) || sr.Meta.Parts != 14 {
				t.Errorf("listed %s: size %d, parts %d; want %d, 14", sr.Path, sr.Meta.Size, sr.Meta.Parts, len(want))
			}
		}
	}
	if len(rs) != 15 || len(texts) != 1 {
		t.Errorf("HostRecords = %d entries, assembled %v; want 14 parts and 1 assembled text", len(rs), texts)
	}
	n, err := db.Expire(ctx, time.Date(2026, 12, 2, 8, 0, 1, 0, time.UTC)) // record() received them at 08:00
	if err != nil || n != 15 {
		t.Errorf("Expire = %d, %v; want 15 (14 parts, 1 assembled text)", n, err)
	}
	if _, err := db.ReadRecord(ctx, "box/crash/"+efiCrashID+store.AssembledSuffix, 0); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("ReadRecord after expiry = %v, want not found", err)
	}
}

// TestAssembleAfterMigration: the parts of a crash stored by a lastgaspd
// before schema version 3 (no crash columns, nothing assembled) get their
// crash from their metadata when the schema is migrated, and the next
// upload of any part assembles it.
func TestAssembleAfterMigration(t *testing.T) {
	names, parts := efiParts(t)
	url := sharedServer(t).NewDB(t)
	ctx := context.Background()
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	ms, err := pgstore.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Exec(ctx, `CREATE TABLE schema_version (version integer PRIMARY KEY, name text NOT NULL,
		applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		t.Fatal(err)
	}
	for _, m := range ms[:2] {
		if _, err := c.Exec(ctx, m.SQL); err != nil {
			t.Fatalf("migration %s: %v", m.Name, err)
		}
		if _, err := c.Exec(ctx, "INSERT INTO schema_version (version, name) VALUES ($1, $2)", m.Version, m.Name); err != nil {
			t.Fatal(err)
		}
	}
	metas := make([]store.RecordMeta, len(parts))
	for i, b := range parts {
		metas[i] = partMeta("box", names[i], efiCrashID, i+1, len(parts), b)
		mj, err := json.Marshal(metas[i])
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Exec(ctx, `INSERT INTO records (host, digest, path, name, size, data, meta, record_time, received)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)`, "box", metas[i].Digest, "box/crash/"+store.RecordFile(names[i], metas[i].Digest),
			names[i], len(b), b, mj, metas[i].Received); err != nil {
			t.Fatal(err)
		}
	}
	db := open(t, url)
	if db.Version < 3 {
		t.Fatalf("Version = %d, want at least 3", db.Version)
	}
	r := &pgstore.Records{DB: db}
	st, err := r.Put(metas[2], bytes.NewReader(parts[2]), "")
	if err != nil || !st.Duplicate || st.Assembled != "box/crash/"+efiCrashID+store.AssembledSuffix {
		t.Fatalf("Part3 again = %+v, %v; want a duplicate that assembled the crash", st, err)
	}
	want, _ := os.ReadFile(filepath.Join(efiDir, efiCrashID+store.AssembledSuffix))
	if got, err := db.ReadRecord(ctx, st.Assembled, 0); err != nil || !bytes.Equal(got, want) {
		t.Errorf("assembled after migration: %d bytes, %v; want the file store's %d bytes", len(got), err, len(want))
	}
}

// TestAssembleWaitsForAllParts: as in the file store, a crash is
// assembled only once it has Part1..PartN of the largest N a part
// announced; until then each part is just stored.
func TestAssembleWaitsForAllParts(t *testing.T) {
	for _, tt := range []struct {
		name     string
		uploads  [][2]int // part, parts
		complete bool
	}{
		{"one part of two", [][2]int{{1, 2}}, false},
		{"announced counts differ: wait for the largest", [][2]int{{1, 2}, {2, 3}}, false},
		{"announced counts differ, all there", [][2]int{{1, 2}, {2, 3}, {3, 3}}, true},
		{"a huge count announced", [][2]int{{1, 4096}, {2, 4096}}, false},
		{"the same part number twice", [][2]int{{1, 3}, {1, 3}, {2, 3}}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			db, _ := newDB(t)
			r := &pgstore.Records{DB: db}
			fr := &store.Records{Root: t.TempDir()}
			var got, fgot string
			for i, u := range tt.uploads {
				data := fmt.Appendf(nil, "Panic#1 Part%d\nupload %d\n", u[0], i)
				m := partMeta("box", fmt.Sprintf("dmesg-efi-%d", i), "dmesg-efi-Panic-1-1", u[0], u[1], data)
				st, err := r.Put(m, bytes.NewReader(data), "")
				if err != nil {
					t.Fatal(err)
				}
				fst, err := fr.Put(m, bytes.NewReader(data), "")
				if err != nil {
					t.Fatal(err)
				}
				got, fgot = got+st.Assembled, fgot+fst.Assembled
			}
			if (got != "") != tt.complete || (fgot != "") != tt.complete {
				t.Errorf("assembled: shared store %q, file store %q; want assembled = %v", got, fgot, tt.complete)
			}
			if n, err := db.CountRecords(context.Background(), "box", ""); err != nil || n != len(tt.uploads) {
				t.Errorf("rows = %d, %v; want %d", n, err, len(tt.uploads))
			}
		})
	}
}

// TestRemovedPartTakesAssembled: a part removed takes the crash's
// assembled text with it, as on the file store: RemoveRecord, retention
// with the parts received before the cutoff and the last after it, and
// retention after a part went another way (a removal before this rule,
// or racing an assembly). The parts uploaded again assemble it again.
func TestRemovedPartTakesAssembled(t *testing.T) {
	names, parts := efiParts(t)
	text := "box/crash/" + efiCrashID + store.AssembledSuffix
	at := func(h int) time.Time { return time.Date(2026, 12, 2, h, 0, 0, 0, time.UTC) }
	for _, tt := range []struct {
		name   string
		remove func(t *testing.T, r *pgstore.Records, url string, paths []string)
	}{
		{"RemoveRecord", func(t *testing.T, r *pgstore.Records, _ string, paths []string) {
			if err := r.RemoveRecord(paths[2]); err != nil {
				t.Fatal(err)
			}
		}},
		{"Expire, the last part after the cutoff", func(t *testing.T, r *pgstore.Records, _ string, _ []string) {
			if n, err := r.DB.Expire(context.Background(), at(9)); err != nil || n != 14 {
				t.Errorf("Expire = %d, %v; want 14 (13 parts, the assembled text)", n, err)
			}
		}},
		{"Expire after a part went behind the store's back", func(t *testing.T, r *pgstore.Records, url string, paths []string) {
			ctx := context.Background()
			c, err := pgx.Connect(ctx, url)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close(ctx)
			if _, err := c.Exec(ctx, "DELETE FROM records WHERE path = $1", paths[4]); err != nil {
				t.Fatal(err)
			}
			if n, err := r.DB.Expire(ctx, at(0)); err != nil || n != 1 {
				t.Errorf("Expire = %d, %v; want 1 (the assembled text of the incomplete crash)", n, err)
			}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			db, url := newDB(t)
			r := &pgstore.Records{DB: db}
			ctx := context.Background()
			put := func(i int) store.Stored {
				m := partMeta("box", names[i], efiCrashID, i+1, len(parts), parts[i])
				if i == len(parts)-1 {
					m.Received = at(10)
				}
				st, err := r.Put(m, bytes.NewReader(parts[i]), "")
				if err != nil {
					t.Fatal(err)
				}
				return st
			}
			var paths []string
			for i := range parts {
				paths = append(paths, put(i).Path)
			}
			if _, err := db.ReadRecord(ctx, text, 0); err != nil {
				t.Fatalf("assembled text: %v", err)
			}
			tt.remove(t, r, url, paths)
			if _, err := db.ReadRecord(ctx, text, 0); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("assembled text after a part was removed: %v, want not found", err)
			}
			var again string
			for i := range parts {
				if st := put(i); st.Assembled != "" {
					again = st.Assembled
				}
			}
			if again != text {
				t.Fatalf("parts uploaded again assembled %q, want %s", again, text)
			}
		})
	}
}

// BenchmarkAssembleEFI14: the 14 parts of the real EFI panic stored one
// after the other through Records.Put (each in its transaction, under
// the crash's lock), the last one assembling the crash; one op is one
// crash (a new host each).
func BenchmarkAssembleEFI14(b *testing.B) {
	names, parts := efiParts(b)
	db, _ := newDB(b)
	r := &pgstore.Records{DB: db}
	b.ResetTimer()
	for i := range b.N {
		host := fmt.Sprintf("box-%d", i)
		for p, data := range parts {
			st, err := r.Put(partMeta(host, names[p], efiCrashID, p+1, len(parts), data), bytes.NewReader(data), "")
			if err != nil {
				b.Fatal(err)
			}
			if (st.Assembled != "") != (p == len(parts)-1) {
				b.Fatalf("part %d: Assembled %q", p+1, st.Assembled)
			}
		}
	}
}

// BenchmarkAssembleEFI14File: the same in the file store (its fsyncs and
// the .dmesg.txt), for comparison.
func BenchmarkAssembleEFI14File(b *testing.B) {
	names, parts := efiParts(b)
	r := &store.Records{Root: b.TempDir(), MinFree: -1}
	b.ResetTimer()
	for i := range b.N {
		host := fmt.Sprintf("box-%d", i)
		for p, data := range parts {
			st, err := r.Put(partMeta(host, names[p], efiCrashID, p+1, len(parts), data), bytes.NewReader(data), "")
			if err != nil {
				b.Fatal(err)
			}
			if (st.Assembled != "") != (p == len(parts)-1) {
				b.Fatalf("part %d: Assembled %q", p+1, st.Assembled)
			}
		}
	}
}
