package pgstore

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/lastgasp/lastgasp/pstore/records"
	"github.com/lastgasp/lastgasp/pstore/ship"
	"github.com/lastgasp/lastgasp/store"
	"github.com/lastgasp/lastgasp/store/sigindex"
)

// Records stores crash records in the database: a store.RecordStore for
// the upload server. Put's contract is store.Records.Put's: durable (the
// transaction committed) when it returns, a record the host already has
// (same host and digest, stored by any collector) not stored again and
// returned as a duplicate, nothing written on error. The part that
// completes a multi-part crash, from whichever collector, also stores the
// crash's text put back together, as store.Records' <crash id>.dmesg.txt
// (Stored.Assembled; see assemble.go), in the same transaction.
type Records struct {
	// DB is the shared database.
	DB *DB
	// HostQuota bounds the bytes of one host's records (data and
	// metadata); zero means store.DefaultHostQuota, negative no quota.
	// Checked before the insert, so collectors storing for one host at
	// the same moment may pass it by a record each.
	HostQuota int64
	// Root, if set, is this collector's store root: a record is linked
	// to the crashed boot (linkBoot) only if that boot directory exists
	// there, as store.Records requires.
	Root string
	// Collector names this collector in the rows it inserts.
	Collector string
	// MaxAssembled bounds the assembled text of a multi-part crash, as
	// store.Records.MaxAssembled; zero means store.DefaultMaxAssembled.
	MaxAssembled int64

	stats struct{ assembled, truncated atomic.Uint64 }
}

var _ store.RecordStore = (*Records)(nil)

func (r *Records) quota() int64 {
	switch {
	case r.HostQuota == 0:
		return store.DefaultHostQuota
	case r.HostQuota < 0:
		return -1
	}
	return r.HostQuota
}

// Stats implements store.RecordStore: the crashes this collector
// assembled.
func (r *Records) Stats() store.RecordStats {
	return store.RecordStats{Assembled: r.stats.assembled.Load(), Truncated: r.stats.truncated.Load()}
}

// noteAssembled counts a and sets it in st.
func (r *Records) noteAssembled(st *store.Stored, a assembled) {
	if a.path == "" {
		return
	}
	st.Assembled, st.Truncated = a.path, a.truncated
	r.stats.assembled.Add(1)
	if a.truncated {
		r.stats.truncated.Add(1)
	}
}

// Put implements store.RecordStore (see Records).
func (r *Records) Put(meta store.RecordMeta, body io.Reader, linkBoot string) (store.Stored, error) {
	if err := ship.CheckHost(meta.Host); err != nil {
		return store.Stored{}, fmt.Errorf("pgstore: record: %w", err)
	}
	if err := ship.CheckRecordName(meta.RecordName); err != nil {
		return store.Stored{}, fmt.Errorf("pgstore: record: %w", err)
	}
	if err := ship.CheckDigest(meta.Digest); err != nil {
		return store.Stored{}, fmt.Errorf("pgstore: record: %w", err)
	}
	if meta.Size < 0 {
		return store.Stored{}, fmt.Errorf("pgstore: record %s: negative size", meta.RecordName)
	}
	d := r.DB
	ctx, cancel := d.ctx(context.Background())
	defer cancel()
	var used int64
	var have string
	err := d.pool.QueryRow(ctx, `SELECT
		coalesce((SELECT path FROM records WHERE host = $1 AND digest = $2), ''),
		(SELECT coalesce(sum(size + octet_length(meta::text)), 0) FROM records WHERE host = $1) +
		(SELECT coalesce(sum(size), 0) FROM assembled WHERE host = $1)`,
		meta.Host, meta.Digest).Scan(&have, &used)
	if err != nil {
		return store.Stored{}, d.unavailable("look up record", err)
	}
	if have != "" {
		st := store.Stored{Path: have, Duplicate: true}
		if meta.CrashID != "" {
			// Its crash may have been stored before assembly was: try.
			// A failure leaves the record stored; the next upload tries
			// again.
			if a, err := r.assembleAgain(ctx, meta.Host, meta.CrashID, meta.Received); err == nil {
				r.noteAssembled(&st, a)
			}
		}
		return st, nil
	}
	need := meta.Size + 4<<10
	if q := r.quota(); q >= 0 && used+need > q {
		return store.Stored{}, &store.QuotaError{Host: meta.Host, Used: used, Need: need, Quota: q}
	}

	// The body, whole and checked, before anything is written.
	var buf bytes.Buffer
	buf.Grow(int(min(meta.Size, 64<<20)))
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(&buf, h), io.LimitReader(body, meta.Size+1))
	if err != nil {
		return store.Stored{}, &store.BodyError{N: n, Size: meta.Size, Err: err}
	}
	if n != meta.Size {
		return store.Stored{}, fmt.Errorf("pgstore: record %s: %d bytes, want %d: %w", meta.RecordName, n, meta.Size, store.ErrSizeMismatch)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != meta.Digest {
		return store.Stored{}, fmt.Errorf("pgstore: record %s has sha256 %s, want %s: %w", meta.RecordName, got, meta.Digest, store.ErrDigestMismatch)
	}
	data := buf.Bytes()
	if data == nil {
		data = []byte{} // an empty record: bytea '', not NULL
	}
	line := records.PanicLine(data)
	meta.PanicLine = &line
	linked := r.linkTo(meta.Host, linkBoot)
	mj, err := json.Marshal(meta)
	if err != nil {
		return store.Stored{}, fmt.Errorf("pgstore: encode metadata: %w", err)
	}
	at := meta.RecordTime
	if at.IsZero() {
		at = meta.Received
	}
	hostDir := store.HostDir(meta.Host)
	paths := []string{
		hostDir + "/" + store.CrashDir + "/" + store.RecordFile(meta.RecordName, meta.Digest),
		hostDir + "/" + store.CrashDir + "/" + meta.RecordName + "." + meta.Digest, // prefix collision
	}
	// A new context: the body may have taken most of the first one.
	ctx, cancel = d.ctx(context.Background())
	defer cancel()
	for i, p := range paths {
		var got string
		var dup bool
		var asm assembled
		err := pgx.BeginFunc(ctx, d.pool, func(tx pgx.Tx) error {
			asm = assembled{}
			if meta.CrashID != "" {
				// Before the insert: the parts of one crash are
				// stored one at a time fleet-wide (assemble.go).
				if err := lockCrash(ctx, tx, meta.Host, meta.CrashID); err != nil {
					return err
				}
			}
			err := tx.QueryRow(ctx, `INSERT INTO records
				(host, digest, path, name, size, data, meta, panic_line, verified, linked_boot, record_time, received, collector,
				 crash_id, part, parts)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
				ON CONFLICT (host, digest) DO NOTHING RETURNING path`,
				meta.Host, meta.Digest, p, meta.RecordName, meta.Size, data, mj, line, meta.Verified,
				linked, at, meta.Received, r.Collector, meta.CrashID, meta.Part, meta.Parts).Scan(&got)
			if errors.Is(err, pgx.ErrNoRows) {
				// Stored meanwhile (another collector): that row is the record.
				dup = true
				err = tx.QueryRow(ctx, "SELECT path FROM records WHERE host = $1 AND digest = $2", meta.Host, meta.Digest).Scan(&got)
			}
			if err != nil || meta.CrashID == "" {
				return err
			}
			asm, err = r.assembleTx(ctx, tx, meta.Host, meta.CrashID, meta.Received)
			return err
		})
		if err != nil && i == 0 && isUnique(err, "records_path_key") {
			continue // another digest with the same 16-digit prefix: the full digest
		}
		if err != nil {
			return store.Stored{}, d.unavailable("store record "+meta.RecordName, err)
		}
		st := store.Stored{Path: got, Duplicate: dup}
		if !dup && linked != "" {
			st.Linked = hostDir + "/" + linked
		}
		r.noteAssembled(&st, asm)
		return st, nil
	}
	return store.Stored{}, fmt.Errorf("pgstore: record %s: no free name", meta.RecordName)
}

// linkTo returns the boot the record is filed under (its crashed boot),
// from linkBoot (<host dir>/<boot>, as store.Store.PrevBootDir returns),
// or "".
func (r *Records) linkTo(host, linkBoot string) string {
	if linkBoot == "" {
		return ""
	}
	h, boot, ok := strings.Cut(linkBoot, "/")
	if !ok || h != store.HostDir(host) || store.CheckBoot(boot) != nil || strings.Contains(boot, "/") {
		return ""
	}
	if r.Root != "" {
		if fi, err := os.Stat(filepath.Join(r.Root, h, boot)); err != nil || !fi.IsDir() {
			return ""
		}
	}
	return boot
}

// RemoveRecord implements store.RecordStore: it deletes the record whose
// path (relative to the store root, as Stored.Path; a path under Root is
// taken relative to it) is p. A part of a multi-part crash takes the
// crash's assembled text with it, under the crash's lock, as the file
// store's RemoveRecord does: the part uploaded again assembles the crash
// again. A record not stored is not an error.
func (r *Records) RemoveRecord(p string) error {
	if r.Root != "" && filepath.IsAbs(p) {
		if rel, err := filepath.Rel(r.Root, p); err == nil && filepath.IsLocal(rel) {
			p = filepath.ToSlash(rel)
		}
	}
	ctx, cancel := r.DB.ctx(context.Background())
	defer cancel()
	err := pgx.BeginFunc(ctx, r.DB.pool, func(tx pgx.Tx) error {
		var host, id string
		err := tx.QueryRow(ctx, "SELECT host, crash_id FROM records WHERE path = $1", p).Scan(&host, &id)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		refs := []string{p}
		if id != "" {
			// Not while the crash is being assembled from this part.
			if err := lockCrash(ctx, tx, host, id); err != nil {
				return err
			}
			var texts []string
			if err := tx.QueryRow(ctx, `WITH gone AS (DELETE FROM assembled WHERE host = $1 AND crash_id = $2 RETURNING path)
				SELECT coalesce(array_agg(path), '{}') FROM gone`, host, id).Scan(&texts); err != nil {
				return err
			}
			refs = append(refs, texts...)
		}
		if _, err = tx.Exec(ctx, "DELETE FROM records WHERE path = $1", p); err != nil {
			return err
		}
		// The signature index links no page to what is gone.
		_, err = removeSightings(ctx, tx, sigindex.SourceRecord, refs...)
		return err
	})
	if err != nil {
		return r.DB.unavailable("remove record", err)
	}
	return nil
}

// ReadRecord returns the bytes of the record at rel (Stored.Path), or its
// metadata as JSON for rel + store.MetaSuffix; os.ErrNotExist if there is
// none. limit > 0 returns only the last limit bytes of the record.
func (d *DB) ReadRecord(ctx context.Context, rel string, limit int64) ([]byte, error) {
	ctx, cancel := d.ctx(ctx)
	defer cancel()
	if isAssembledPath(rel) {
		return d.readAssembled(ctx, rel, limit)
	}
	var b []byte
	var err error
	if p, ok := strings.CutSuffix(rel, store.MetaSuffix); ok {
		var m string
		err = d.pool.QueryRow(ctx, "SELECT meta::text FROM records WHERE path = $1", p).Scan(&m)
		b = []byte(m)
		if errors.Is(err, pgx.ErrNoRows) {
			// A record whose name ends in .json: the record itself.
			err = d.pool.QueryRow(ctx, "SELECT data FROM records WHERE path = $1", rel).Scan(&b)
		}
	} else if limit > 0 {
		err = d.pool.QueryRow(ctx, "SELECT substring(data FROM greatest(1, octet_length(data) - $2 + 1)) FROM records WHERE path = $1", rel, limit).Scan(&b)
	} else {
		err = d.pool.QueryRow(ctx, "SELECT data FROM records WHERE path = $1", rel).Scan(&b)
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("pgstore: record %s: %w", rel, os.ErrNotExist)
	}
	if err != nil {
		return nil, d.unavailable("read record", err)
	}
	return b, nil
}

// StoredRecord is one record as the listing knows it.
type StoredRecord struct {
	Path       string
	Meta       store.RecordMeta
	LinkedBoot string // the crashed boot it is filed under, or ""
}

// Latest returns, per host directory, the newest record with a panic
// line: what /crashes lists as the host's record.
func (d *DB) Latest(ctx context.Context) (map[string]store.HostCrashes, error) {
	ctx, cancel := d.ctx(ctx)
	defer cancel()
	rows, err := d.pool.Query(ctx, `SELECT DISTINCT ON (host) host, path, panic_line, verified, record_time
		FROM records WHERE panic_line <> '' ORDER BY host, record_time DESC, path`)
	if err != nil {
		return nil, d.unavailable("list records", err)
	}
	defer rows.Close()
	out := map[string]store.HostCrashes{}
	for rows.Next() {
		var host, p, line string
		var verified bool
		var at time.Time
		if err := rows.Scan(&host, &p, &line, &verified, &at); err != nil {
			return nil, d.unavailable("list records", err)
		}
		dir := store.HostDir(host)
		_, base, _ := strings.Cut(p, "/")
		out[dir] = store.HostCrashes{Host: dir, Verified: verified, Record: &store.Crash{Time: at.UTC(), Line: line, Source: base}}
	}
	if err := rows.Err(); err != nil {
		return nil, d.unavailable("list records", err)
	}
	return out, nil
}

// HostRecords returns the records of host, newest first, and the
// assembled texts of its multi-part crashes (as the file store's crash
// directory lists <crash id>.dmesg.txt beside the parts): Meta.CrashID,
// Parts, Size and Received, RecordTime its Received.
func (d *DB) HostRecords(ctx context.Context, host string) ([]StoredRecord, error) {
	out, err := d.queryRecords(ctx, "WHERE host = $1 ORDER BY record_time DESC, path", host)
	if err != nil {
		return nil, err
	}
	ctx, cancel := d.ctx(ctx)
	defer cancel()
	rows, err := d.pool.Query(ctx, "SELECT path, crash_id, parts, size, received FROM assembled WHERE host = $1", host)
	if err != nil {
		return nil, d.unavailable("list assembled crashes", err)
	}
	defer rows.Close()
	n := len(out)
	for rows.Next() {
		sr := StoredRecord{Meta: store.RecordMeta{Metadata: ship.Metadata{Host: host}}}
		m := &sr.Meta.Metadata
		if err := rows.Scan(&sr.Path, &m.CrashID, &m.Parts, &m.Size, &m.Received); err != nil {
			return nil, d.unavailable("list assembled crashes", err)
		}
		m.RecordName = m.CrashID + store.AssembledSuffix
		m.Received = m.Received.UTC()
		m.RecordTime = m.Received
		out = append(out, sr)
	}
	if err := rows.Err(); err != nil {
		return nil, d.unavailable("list assembled crashes", err)
	}
	if len(out) > n {
		at := func(sr StoredRecord) time.Time { return cmp.Or(sr.Meta.RecordTime, sr.Meta.Received) }
		sort.SliceStable(out, func(i, j int) bool { return at(out[i]).After(at(out[j])) })
	}
	return out, nil
}

// DefaultUnindexedPage is how many rows Unindexed reads at a time.
const DefaultUnindexedPage = 500

// Unindexed calls each, in path order, for what the signature index may
// lack a sighting of (stored by a collector that stopped before indexing
// it, or whose Add failed), as the file store's backfill
// (collect.Indexer.Backfill) finds it in the crash directories: the
// records without a sighting, except the parts of multi-part crashes,
// which are not indexed alone, and the assembled texts without a
// sighting (of more than one part: the one part of a crash of one is
// indexed itself), each with the metadata and boot of its crash's Part1. It
// reads page rows at a time (zero: DefaultUnindexedPage), each page after
// the last path of the one before, so that what each could not index (a
// record without a report) is passed once; each runs with no query open.
// It stops at ctx's end and at the first error of each, and returns it.
func (d *DB) Unindexed(ctx context.Context, page int, each func(StoredRecord) error) error {
	if page <= 0 {
		page = DefaultUnindexedPage
	}
	for after := ""; ; {
		rs, err := d.scanRecords(ctx, `SELECT path, meta, linked_boot FROM (
				SELECT r.path, r.meta, r.linked_boot FROM records r
				WHERE NOT (r.crash_id <> '' AND r.parts > 1)
					AND NOT EXISTS (SELECT 1 FROM sightings s WHERE s.source = $3 AND s.ref = r.path)
				UNION ALL
				SELECT a.path, p1.meta, p1.linked_boot FROM assembled a
				CROSS JOIN LATERAL (SELECT r.meta, r.linked_boot FROM records r
					WHERE r.crash_id <> '' AND r.host = a.host AND r.crash_id = a.crash_id AND r.part = 1
					ORDER BY r.received, r.path LIMIT 1) p1
				WHERE a.parts > 1 AND NOT EXISTS (SELECT 1 FROM sightings s WHERE s.source = $3 AND s.ref = a.path)
			) u WHERE path > $1 ORDER BY path LIMIT $2`, after, page, string(sigindex.SourceRecord))
		if err != nil {
			return err
		}
		for _, sr := range rs {
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := each(sr); err != nil {
				return err
			}
			after = sr.Path
		}
		if len(rs) < page {
			return ctx.Err()
		}
	}
}

func (d *DB) queryRecords(ctx context.Context, where string, args ...any) ([]StoredRecord, error) {
	return d.scanRecords(ctx, "SELECT path, meta, linked_boot FROM records "+where, args...)
}

// scanRecords runs query, which selects path, meta and linked_boot.
func (d *DB) scanRecords(ctx context.Context, query string, args ...any) ([]StoredRecord, error) {
	ctx, cancel := d.ctx(ctx)
	defer cancel()
	rows, err := d.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, d.unavailable("list records", err)
	}
	defer rows.Close()
	var out []StoredRecord
	for rows.Next() {
		var sr StoredRecord
		var mj []byte
		if err := rows.Scan(&sr.Path, &mj, &sr.LinkedBoot); err != nil {
			return nil, d.unavailable("list records", err)
		}
		if err := json.Unmarshal(mj, &sr.Meta); err != nil {
			return nil, fmt.Errorf("pgstore: record %s: metadata: %w", sr.Path, err)
		}
		out = append(out, sr)
	}
	if err := rows.Err(); err != nil {
		return nil, d.unavailable("list records", err)
	}
	return out, nil
}

// CountRecords returns the number of rows of host and digest ("" for any).
func (d *DB) CountRecords(ctx context.Context, host, digest string) (int, error) {
	ctx, cancel := d.ctx(ctx)
	defer cancel()
	var n int
	err := d.pool.QueryRow(ctx, "SELECT count(*) FROM records WHERE ($1 = '' OR host = $1) AND ($2 = '' OR digest = $2)", host, digest).Scan(&n)
	if err != nil {
		return 0, d.unavailable("count records", err)
	}
	return n, nil
}

// Expire deletes the records received before cutoff (retention) and the
// assembled texts received before it or whose crash lost a part (to this
// sweep, or to a removal racing an assembly), and the signature index's
// sightings of all of them, and returns how many records and texts it
// deleted.
func (d *DB) Expire(ctx context.Context, cutoff time.Time) (int64, error) {
	ctx, cancel := d.ctx(ctx)
	defer cancel()
	var recs, texts int64
	err := pgx.BeginFunc(ctx, d.pool, func(tx pgx.Tx) error {
		// One statement, one snapshot: texts sees the parts gone deletes,
		// and records as they were before.
		var seqs []int64
		err := tx.QueryRow(ctx, `WITH gone AS (
				DELETE FROM records WHERE received < $1 RETURNING host, crash_id, path
			), texts AS (
				DELETE FROM assembled a WHERE a.received < $1
					OR (a.host, a.crash_id) IN (SELECT host, crash_id FROM gone WHERE crash_id <> '')
					OR (SELECT count(DISTINCT r.part) FROM records r
						WHERE r.crash_id <> '' AND r.host = a.host AND r.crash_id = a.crash_id AND r.part BETWEEN 1 AND a.parts) < a.parts
				RETURNING path
			), sightings AS (
				DELETE FROM sightings WHERE source = 'record'
					AND ref IN (SELECT path FROM gone UNION ALL SELECT path FROM texts)
				RETURNING crash_seq
			)
			SELECT (SELECT count(*) FROM gone), (SELECT count(*) FROM texts),
				(SELECT coalesce(array_agg(DISTINCT crash_seq), '{}') FROM sightings)`, cutoff).Scan(&recs, &texts, &seqs)
		if err != nil {
			return err
		}
		return prune(ctx, tx, seqs)
	})
	if err != nil {
		return 0, d.unavailable("expire records", err)
	}
	return recs + texts, nil
}
