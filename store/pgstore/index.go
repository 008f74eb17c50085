package pgstore

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/lastgasp/lastgasp/crash/signature"
	"github.com/lastgasp/lastgasp/store/sigindex"
)

// Index is the signature index in the database: a sigindex.Index that
// several collectors share. Add runs in one transaction under an advisory
// lock on the sighting's host (so the two copies of one crash, added by
// two collectors at once, make one crash) and inserts a new signature with
// ON CONFLICT DO NOTHING (so exactly one Add, fleet-wide, reports
// NewSignature). Close does not close the DB.
//
// Expire and Remove delete sightings, then the crashes left without one
// and the signatures left without a crash, in one transaction; a
// signature whose sample was deleted takes its first record sighting
// left (else its first) as the sample, without a report, as the File
// does.
type Index struct {
	DB *DB
	// Now returns the time Add stamps sightings with (Sighting.Added);
	// nil means time.Now.
	Now func() time.Time
}

var _ sigindex.Index = (*Index)(nil)

// Index returns the database's signature index.
func (d *DB) Index() *Index { return &Index{DB: d} }

// Close implements sigindex.Index; the DB stays open.
func (x *Index) Close() error { return nil }

// hostLockSpace keeps the hosts' advisory locks apart from other users of
// two-key advisory locks.
const hostLockSpace = 0x6c67

// Add implements sigindex.Index.
func (x *Index) Add(ctx context.Context, s sigindex.Sighting) (sigindex.Added, error) {
	if s.Signature.ID == "" || s.Host == "" {
		return sigindex.Added{}, fmt.Errorf("pgstore: sighting without host or signature")
	}
	if len(s.Report) > sigindex.MaxReport {
		s.Report = s.Report[len(s.Report)-sigindex.MaxReport:]
	}
	if x.Now != nil {
		s.Added = x.Now().UTC()
	} else {
		s.Added = time.Now().UTC()
	}
	d := x.DB
	ctx, cancel := d.ctx(ctx)
	defer cancel()
	var a sigindex.Added
	err := pgx.BeginFunc(ctx, d.pool, func(tx pgx.Tx) error {
		a = sigindex.Added{}
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1, hashtext($2))", int32(hostLockSpace), s.Host); err != nil {
			return err
		}
		var crashSeq int64
		err := tx.QueryRow(ctx, "SELECT crash_seq FROM sightings WHERE source = $1 AND ref = $2", string(s.Source), s.Ref).Scan(&crashSeq)
		if err == nil {
			a.Duplicate = true
			return x.fill(ctx, tx, &a, crashSeq, "")
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		sig := s.Signature
		sig.TitleUsec = -1 // per crash, not per signature
		sj, err := json.Marshal(sig)
		if err != nil {
			return err
		}
		full, err := json.Marshal(s)
		if err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `INSERT INTO signatures (id, sig, first_seen, last_seen, sample, sample_source)
			VALUES ($1, $2, $3, $3, $4, $5) ON CONFLICT (id) DO NOTHING`, s.Signature.ID, sj, s.Time, full, string(s.Source))
		if err != nil {
			return err
		}
		a.NewSignature = tag.RowsAffected() == 1
		// The crash it belongs to: the host's first of the signature that
		// it is a copy of (sigindex.Index's identity rules).
		err = tx.QueryRow(ctx, `SELECT seq FROM crashes WHERE host = $1 AND signature_id = $2 AND
			CASE WHEN boot <> '' AND $3 <> '' THEN boot = $3 ELSE title_usec >= 0 AND title_usec = $4 END
			ORDER BY seq LIMIT 1`, s.Host, s.Signature.ID, s.Boot, s.Signature.TitleUsec).Scan(&crashSeq)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			err = tx.QueryRow(ctx, `INSERT INTO crashes (id, signature_id, host, boot, release, time, title_usec)
				VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING seq`,
				crashID(s), s.Signature.ID, s.Host, s.Boot, s.Release, s.Time, s.Signature.TitleUsec).Scan(&crashSeq)
			if err != nil {
				return err
			}
			a.NewCrash = true
		case err != nil:
			return err
		default:
			// A second copy fills in what the first did not know.
			if _, err := tx.Exec(ctx, `UPDATE crashes SET
				boot = CASE WHEN boot = '' THEN $2 ELSE boot END,
				release = CASE WHEN release = '' THEN $3 ELSE release END,
				title_usec = CASE WHEN title_usec < 0 THEN $4 ELSE title_usec END,
				time = least(time, $5)
				WHERE seq = $1`, crashSeq, s.Boot, s.Release, s.Signature.TitleUsec, s.Time); err != nil {
				return err
			}
		}
		ref := s
		ref.Report = ""
		rj, err := json.Marshal(ref)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "INSERT INTO sightings (source, ref, crash_seq, data, added) VALUES ($1, $2, $3, $4, $5)",
			string(s.Source), s.Ref, crashSeq, rj, s.Added); err != nil {
			return err
		}
		newCrash := 0
		if a.NewCrash {
			newCrash = 1
		}
		// The sample: the first record sighting, else the first sighting.
		if _, err := tx.Exec(ctx, `UPDATE signatures SET
			first_seen = least(first_seen, $2), last_seen = greatest(last_seen, $2),
			crash_count = crash_count + $3,
			sample = CASE WHEN $4 = 'record' AND sample_source <> 'record' THEN $5 ELSE sample END,
			sample_source = CASE WHEN $4 = 'record' THEN 'record' ELSE sample_source END
			WHERE id = $1`, s.Signature.ID, s.Time, newCrash, string(s.Source), full); err != nil {
			return err
		}
		return x.fill(ctx, tx, &a, crashSeq, "")
	})
	if err != nil {
		return sigindex.Added{}, d.unavailable("index "+s.Ref, err)
	}
	return a, nil
}

// fill sets a's Crash and Signature from the database.
func (x *Index) fill(ctx context.Context, q querier, a *sigindex.Added, crashSeq int64, host string) error {
	cs, err := x.crashes(ctx, q, "WHERE seq = $1", crashSeq)
	if err != nil {
		return err
	}
	if len(cs) != 1 {
		return fmt.Errorf("crash %d: not found", crashSeq)
	}
	a.Crash = cs[0]
	sigs, err := x.summaries(ctx, q, a.Crash.SignatureID, host, nil, 0)
	if err != nil {
		return err
	}
	if len(sigs) != 1 {
		return fmt.Errorf("signature %s: not found", a.Crash.SignatureID)
	}
	a.Signature = sigs[0]
	return nil
}

func crashID(s sigindex.Sighting) string {
	mid := s.Boot
	if mid == "" {
		mid = "t" + strconv.FormatInt(s.Signature.TitleUsec, 10)
	}
	return s.Host + "/" + mid + "/" + s.Signature.ID
}

// querier is a pool or a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// summaries returns the signatures (one if id is not "") with their counts
// restricted to host ("" for all) and Recent counted from since (nil:
// none), by Recent, Count, ID; limit > 0 bounds the answer.
func (x *Index) summaries(ctx context.Context, q querier, id, host string, since *time.Time, limit int) ([]sigindex.Signature, error) {
	sql := `SELECT s.id, s.sig, s.first_seen, s.last_seen, s.sample,
		count(*) AS n,
		count(*) FILTER (WHERE $3::timestamptz IS NOT NULL AND c.time >= $3) AS recent,
		array_agg(DISTINCT c.host),
		coalesce(array_agg(DISTINCT c.release) FILTER (WHERE c.release <> ''), '{}'),
		min(c.time), max(c.time)
		FROM signatures s JOIN crashes c ON c.signature_id = s.id
		WHERE ($1 = '' OR s.id = $1) AND ($2 = '' OR c.host = $2)
		GROUP BY s.id
		ORDER BY recent DESC, n DESC, s.id COLLATE "C"`
	args := []any{id, host, since}
	if limit > 0 {
		sql += " LIMIT $4"
		args = append(args, limit)
	}
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	var out []sigindex.Signature
	for rows.Next() {
		var sg sigindex.Signature
		var sid string
		var sj, sample []byte
		var first, last, cfirst, clast time.Time
		if err := rows.Scan(&sid, &sj, &first, &last, &sample, &sg.Count, &sg.Recent, &sg.Hosts, &sg.Releases, &cfirst, &clast); err != nil {
			rows.Close()
			return nil, err
		}
		var sig signature.Signature
		if err := json.Unmarshal(sj, &sig); err != nil {
			rows.Close()
			return nil, fmt.Errorf("signature %s: %w", sid, err)
		}
		sg.Signature = sig
		if err := json.Unmarshal(sample, &sg.Sample); err != nil {
			rows.Close()
			return nil, fmt.Errorf("signature %s: sample: %w", sid, err)
		}
		sg.FirstSeen, sg.LastSeen = first.UTC(), last.UTC()
		if host != "" {
			sg.FirstSeen, sg.LastSeen = cfirst.UTC(), clast.UTC()
		}
		slices.Sort(sg.Hosts)
		slices.Sort(sg.Releases)
		out = append(out, sg)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if host != "" {
		// Another host's sample is not shown: the host's first sighting,
		// without its text.
		for i := range out {
			if out[i].Sample.Host == host {
				continue
			}
			out[i].Sample = sigindex.Sighting{}
			var sj []byte
			err := q.QueryRow(ctx, `SELECT g.data FROM crashes c JOIN sightings g ON g.crash_seq = c.seq
				WHERE c.signature_id = $1 AND c.host = $2 ORDER BY c.seq, g.seq LIMIT 1`, out[i].ID, host).Scan(&sj)
			if err == nil {
				err = json.Unmarshal(sj, &out[i].Sample)
			}
			if err != nil && !errors.Is(err, pgx.ErrNoRows) {
				return nil, err
			}
		}
	}
	slices.SortStableFunc(out, func(a, b sigindex.Signature) int {
		return cmp.Or(cmp.Compare(b.Recent, a.Recent), cmp.Compare(b.Count, a.Count), cmp.Compare(a.ID, b.ID))
	})
	return out, nil
}

// crashes returns the crashes selected by where (on table crashes) with
// their sightings, newest first.
func (x *Index) crashes(ctx context.Context, q querier, where string, args ...any) ([]sigindex.Crash, error) {
	rows, err := q.Query(ctx, "SELECT seq, id, signature_id, host, boot, release, time, title_usec FROM crashes "+where, args...)
	if err != nil {
		return nil, err
	}
	var out []sigindex.Crash
	var seqs []int64
	for rows.Next() {
		var c sigindex.Crash
		var seq int64
		if err := rows.Scan(&seq, &c.ID, &c.SignatureID, &c.Host, &c.Boot, &c.Release, &c.Time, &c.TitleUsec); err != nil {
			rows.Close()
			return nil, err
		}
		c.Time = c.Time.UTC()
		out = append(out, c)
		seqs = append(seqs, seq)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(seqs) > 0 {
		at := map[int64]int{}
		for i, s := range seqs {
			at[s] = i
		}
		rows, err := q.Query(ctx, "SELECT crash_seq, data FROM sightings WHERE crash_seq = ANY($1) ORDER BY crash_seq, seq", seqs)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var seq int64
			var dj []byte
			if err := rows.Scan(&seq, &dj); err != nil {
				rows.Close()
				return nil, err
			}
			var s sigindex.Sighting
			if err := json.Unmarshal(dj, &s); err != nil {
				rows.Close()
				return nil, fmt.Errorf("sighting of crash %d: %w", seq, err)
			}
			c := &out[at[seq]]
			c.Sightings = append(c.Sightings, s)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	slices.SortStableFunc(out, func(a, b sigindex.Crash) int { return cmp.Or(b.Time.Compare(a.Time), cmp.Compare(a.ID, b.ID)) })
	return out, nil
}

// Signatures implements sigindex.Index.
func (x *Index) Signatures(ctx context.Context, q sigindex.Query) ([]sigindex.Signature, error) {
	ctx, cancel := x.DB.ctx(ctx)
	defer cancel()
	var since *time.Time
	if !q.Since.IsZero() {
		since = &q.Since
	}
	out, err := x.summaries(ctx, x.DB.pool, "", q.Host, since, q.Limit)
	if err != nil {
		return nil, x.DB.unavailable("signatures", err)
	}
	return out, nil
}

// Signature implements sigindex.Index.
func (x *Index) Signature(ctx context.Context, id, host string) (sigindex.Signature, []sigindex.Crash, error) {
	if id == "" {
		return sigindex.Signature{}, nil, fmt.Errorf("pgstore: signature %q: %w", id, sigindex.ErrNotFound)
	}
	ctx, cancel := x.DB.ctx(ctx)
	defer cancel()
	sigs, err := x.summaries(ctx, x.DB.pool, id, host, nil, 0)
	if err != nil {
		return sigindex.Signature{}, nil, x.DB.unavailable("signature "+id, err)
	}
	if len(sigs) == 0 {
		return sigindex.Signature{}, nil, fmt.Errorf("pgstore: signature %q: %w", id, sigindex.ErrNotFound)
	}
	cs, err := x.crashes(ctx, x.DB.pool, "WHERE signature_id = $1 AND ($2 = '' OR host = $2)", id, host)
	if err != nil {
		return sigindex.Signature{}, nil, x.DB.unavailable("signature "+id, err)
	}
	return sigs[0], cs, nil
}

// HostCrashes implements sigindex.Index.
func (x *Index) HostCrashes(ctx context.Context, host string) ([]sigindex.Crash, error) {
	ctx, cancel := x.DB.ctx(ctx)
	defer cancel()
	cs, err := x.crashes(ctx, x.DB.pool, "WHERE host = $1", host)
	if err != nil {
		return nil, x.DB.unavailable("crashes of "+host, err)
	}
	return cs, nil
}

// Expire implements sigindex.Index.
func (x *Index) Expire(ctx context.Context, cutoff time.Time) (int, error) {
	ctx, cancel := x.DB.ctx(ctx)
	defer cancel()
	var n int
	err := pgx.BeginFunc(ctx, x.DB.pool, func(tx pgx.Tx) error {
		var seqs []int64
		err := tx.QueryRow(ctx, `WITH gone AS (DELETE FROM sightings WHERE added < $1 RETURNING crash_seq)
			SELECT count(*), coalesce(array_agg(DISTINCT crash_seq), '{}') FROM gone`, cutoff).Scan(&n, &seqs)
		if err != nil {
			return err
		}
		return prune(ctx, tx, seqs)
	})
	if err != nil {
		return 0, x.DB.unavailable("expire sightings", err)
	}
	return n, nil
}

// Remove implements sigindex.Index.
func (x *Index) Remove(ctx context.Context, source sigindex.Source, ref string) (bool, error) {
	ctx, cancel := x.DB.ctx(ctx)
	defer cancel()
	var n int
	err := pgx.BeginFunc(ctx, x.DB.pool, func(tx pgx.Tx) error {
		var err error
		n, err = removeSightings(ctx, tx, source, ref)
		return err
	})
	if err != nil {
		return false, x.DB.unavailable("remove sighting "+ref, err)
	}
	return n > 0, nil
}

// removeSightings deletes the sightings of source whose refs are given,
// under their hosts' locks (not while Add joins a copy to their crash),
// and prunes what they leave; it returns how many it deleted.
func removeSightings(ctx context.Context, tx pgx.Tx, source sigindex.Source, refs ...string) (int, error) {
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, hashtext(h)) FROM (
			SELECT DISTINCT c.host AS h FROM sightings g JOIN crashes c ON c.seq = g.crash_seq
			WHERE g.source = $2 AND g.ref = ANY($3) ORDER BY 1) hosts`, int32(hostLockSpace), string(source), refs); err != nil {
		return 0, err
	}
	var n int
	var seqs []int64
	err := tx.QueryRow(ctx, `WITH gone AS (DELETE FROM sightings WHERE source = $1 AND ref = ANY($2) RETURNING crash_seq)
		SELECT count(*), coalesce(array_agg(DISTINCT crash_seq), '{}') FROM gone`, string(source), refs).Scan(&n, &seqs)
	if err != nil {
		return 0, err
	}
	return n, prune(ctx, tx, seqs)
}

// prune brings the crashes whose sightings were deleted, and their
// signatures, up to date: a crash without sightings is deleted, else its
// time is its earliest sighting's; a signature without crashes is
// deleted, else its count and times are its crashes', and a deleted
// sample is replaced by the first record sighting (else the first).
func prune(ctx context.Context, tx pgx.Tx, seqs []int64) error {
	if len(seqs) == 0 {
		return nil
	}
	var ids []string
	if err := tx.QueryRow(ctx, "SELECT coalesce(array_agg(DISTINCT signature_id), '{}') FROM crashes WHERE seq = ANY($1)", seqs).Scan(&ids); err != nil {
		return err
	}
	for _, q := range []string{
		`DELETE FROM crashes c WHERE c.seq = ANY($1) AND NOT EXISTS (SELECT 1 FROM sightings g WHERE g.crash_seq = c.seq)`,
		`UPDATE crashes c SET time = (SELECT min((g.data->>'time')::timestamptz) FROM sightings g WHERE g.crash_seq = c.seq)
			WHERE c.seq = ANY($1)`,
	} {
		if _, err := tx.Exec(ctx, q, seqs); err != nil {
			return err
		}
	}
	for _, q := range []string{
		`DELETE FROM signatures s WHERE s.id = ANY($1) AND NOT EXISTS (SELECT 1 FROM crashes c WHERE c.signature_id = s.id)`,
		`UPDATE signatures s SET crash_count = a.n, first_seen = a.first, last_seen = a.last FROM (
			SELECT c.signature_id AS id, count(DISTINCT c.seq) AS n, min(c.time) AS first, max((g.data->>'time')::timestamptz) AS last
			FROM crashes c JOIN sightings g ON g.crash_seq = c.seq WHERE c.signature_id = ANY($1) GROUP BY c.signature_id) a
			WHERE s.id = a.id`,
		`UPDATE signatures s SET sample = p.data, sample_source = p.source FROM (
			SELECT DISTINCT ON (c.signature_id) c.signature_id AS id, g.data, g.source
			FROM crashes c JOIN sightings g ON g.crash_seq = c.seq WHERE c.signature_id = ANY($1)
			ORDER BY c.signature_id, g.source = 'record' DESC, c.seq, g.seq) p
			WHERE s.id = p.id AND NOT EXISTS (SELECT 1 FROM sightings g WHERE g.source = s.sample->>'source' AND g.ref = s.sample->>'ref')`,
	} {
		if _, err := tx.Exec(ctx, q, ids); err != nil {
			return err
		}
	}
	return nil
}
