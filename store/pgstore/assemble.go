package pgstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/lastgasp/lastgasp/store"
)

// Multi-part crashes on the shared store. pstore writes one crash's dmesg
// as Part1..PartN (ramoops records, EFI variables); the agent uploads each
// part as a record naming its crash, and the parts may reach different
// collectors. The record transaction of every part takes an advisory lock
// on its (host, crash id) before inserting: the parts of one crash are
// stored one after the other fleet-wide, each sees the parts committed
// before it (READ COMMITTED: a statement after the lock sees every commit
// before it), and the one that completes the crash inserts the assembled
// text, in the same transaction. So a crash is assembled exactly once,
// whichever collector got which part, and the assembled text is committed
// when the last part's upload is acknowledged.

// crashLockSpace keeps the crashes' advisory locks apart from the hosts'
// (hostLockSpace) and other users of two-key advisory locks.
const crashLockSpace = 0x6c63

// maxHeaderLine is what the query listing a crash's parts fetches of
// each: the part header line store.WriteAssembled looks for is shorter.
const maxHeaderLine = 64

// lockCrash takes the transaction's lock on crash id of host.
func lockCrash(ctx context.Context, tx pgx.Tx, host, id string) error {
	_, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1, hashtext($2))", int32(crashLockSpace), host+" "+id)
	return err
}

// rowPart is a part's record row as a store.CrashPart. The query listing
// the crash's parts fetched its first bytes and its last byte, which serve
// store.WriteAssembled's reads of the part header and the final newline;
// any other read fetches the row's data from there to its end, once, for
// the reads of the text that follow it. So only the text kept is read, in
// one query a part.
type rowPart struct {
	size        int64
	first, last []byte // data[:len(first)], data[size-len(last):]
	rest        []byte // data[restOff:], fetched
	restOff     int64
	fetch       func(off, n int64) ([]byte, error)
}

func (p *rowPart) Size() int64 { return p.size }

func (p *rowPart) ReadAt(b []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("pgstore: read at %d: negative offset", off)
	}
	if off >= p.size {
		return 0, io.EOF
	}
	for _, s := range []struct {
		at  int64
		buf []byte
	}{{0, p.first}, {p.size - int64(len(p.last)), p.last}, {p.restOff, p.rest}} {
		end := s.at + int64(len(s.buf))
		if off < s.at || off >= end {
			continue
		}
		if n := copy(b, s.buf[off-s.at:]); n == len(b) {
			return n, nil
		} else if end == p.size {
			return n, io.EOF
		}
	}
	data, err := p.fetch(off, p.size-off)
	if err != nil {
		return 0, err
	}
	if int64(len(data)) != p.size-off {
		return 0, fmt.Errorf("pgstore: read %d bytes of a part at %d, want %d", len(data), off, p.size-off)
	}
	p.rest, p.restOff = data, off
	if n := copy(b, data); n < len(b) {
		return n, io.EOF
	}
	return len(b), nil
}

// assembled is what assembleTx did.
type assembled struct {
	path      string // the assembled text's path, "" if nothing was assembled
	truncated bool
}

// assembleTx assembles crash id of host if all its parts are stored and it
// is not assembled yet. The caller holds the crash's lock (lockCrash) in
// tx. Like store.Records: the parts are Part1..PartN of the largest N a
// part announced, each the first record stored under its number.
func (r *Records) assembleTx(ctx context.Context, tx pgx.Tx, host, id string, received time.Time) (assembled, error) {
	var done bool
	if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM assembled WHERE host = $1 AND crash_id = $2)", host, id).Scan(&done); err != nil || done {
		return assembled{}, err
	}
	rows, err := tx.Query(ctx, `SELECT part, parts, path, octet_length(data),
		substring(data FROM 1 FOR $3), substring(data FROM greatest(octet_length(data), 1) FOR 1)
		FROM records WHERE host = $1 AND crash_id = $2 AND part >= 1 ORDER BY part, received, path`, host, id, maxHeaderLine)
	if err != nil {
		return assembled{}, err
	}
	type info struct {
		path        string
		size        int64
		first, last []byte
	}
	byPart := map[int]info{}
	n := 0
	for rows.Next() {
		var part, parts int
		var in info
		if err := rows.Scan(&part, &parts, &in.path, &in.size, &in.first, &in.last); err != nil {
			rows.Close()
			return assembled{}, err
		}
		n = max(n, parts)
		if _, ok := byPart[part]; !ok {
			byPart[part] = in
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return assembled{}, err
	}
	if n == 0 || len(byPart) < n {
		return assembled{}, nil // not complete yet (before allocating for the parts announced)
	}
	parts := make([]store.CrashPart, n)
	for p := 1; p <= n; p++ {
		in, ok := byPart[p]
		if !ok {
			return assembled{}, nil // not complete yet
		}
		parts[p-1] = &rowPart{size: in.size, first: in.first, last: in.last, fetch: func(off, n int64) ([]byte, error) {
			var b []byte
			err := tx.QueryRow(ctx, "SELECT substring(data FROM $2 FOR $3) FROM records WHERE path = $1", in.path, off+1, n).Scan(&b)
			return b, err
		}}
	}
	var buf bytes.Buffer
	_, truncated, err := store.WriteAssembled(&buf, parts, r.MaxAssembled)
	if err != nil {
		return assembled{}, err
	}
	text := buf.Bytes()
	if text == nil {
		text = []byte{} // bytea '', not NULL
	}
	p := store.HostDir(host) + "/" + store.CrashDir + "/" + id + store.AssembledSuffix
	tag, err := tx.Exec(ctx, `INSERT INTO assembled (host, crash_id, path, parts, size, data, truncated, received, collector)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING`,
		host, id, p, n, len(text), text, truncated, received, r.Collector)
	if err != nil || tag.RowsAffected() == 0 {
		return assembled{}, err
	}
	return assembled{path: p, truncated: truncated}, nil
}

// assembleAgain tries to assemble crash id of host in a transaction of its
// own: for a part uploaded again (a duplicate) of a crash whose parts were
// stored before this schema version assembled them.
func (r *Records) assembleAgain(ctx context.Context, host, id string, received time.Time) (assembled, error) {
	var a assembled
	err := pgx.BeginFunc(ctx, r.DB.pool, func(tx pgx.Tx) error {
		if err := lockCrash(ctx, tx, host, id); err != nil {
			return err
		}
		var err error
		a, err = r.assembleTx(ctx, tx, host, id, received)
		return err
	})
	return a, err
}

// readAssembled returns the assembled text at rel (its last limit bytes if
// limit > 0), os.ErrNotExist if there is none.
func (d *DB) readAssembled(ctx context.Context, rel string, limit int64) ([]byte, error) {
	var b []byte
	var err error
	if limit > 0 {
		err = d.pool.QueryRow(ctx, "SELECT substring(data FROM greatest(1, octet_length(data) - $2 + 1)) FROM assembled WHERE path = $1", rel, limit).Scan(&b)
	} else {
		err = d.pool.QueryRow(ctx, "SELECT data FROM assembled WHERE path = $1", rel).Scan(&b)
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("pgstore: assembled crash %s: %w", rel, os.ErrNotExist)
	}
	if err != nil {
		return nil, d.unavailable("read assembled crash", err)
	}
	return b, nil
}

// isAssembledPath reports whether rel names an assembled text: record
// paths end in hex digits, never in store.AssembledSuffix.
func isAssembledPath(rel string) bool { return strings.HasSuffix(rel, store.AssembledSuffix) }
