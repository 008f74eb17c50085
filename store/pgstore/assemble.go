package pgstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/lastgasp/lastgasp/pstore/records"
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

// maxHeaderLine and maxNote are store.Records' bounds: the part header
// line ("Panic#1 Part12") looked for at the start of a part, and the room
// kept for the truncation note.
const (
	maxHeaderLine = 64
	maxNote       = 128
)

// lockCrash takes the transaction's lock on crash id of host.
func lockCrash(ctx context.Context, tx pgx.Tx, host, id string) error {
	_, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1, hashtext($2))", int32(crashLockSpace), host+" "+id)
	return err
}

// partText is where the text of one part lies in its record: after its
// part header line, if it has one, up to its end (store's measurePart).
type partText struct {
	path       string // the part's record
	start, end int64
	newline    bool // a newline must follow it
}

func (t partText) len() int64 {
	n := t.end - t.start
	if t.newline && n > 0 {
		n++
	}
	return n
}

// measure finds the text of a part of size bytes from its first bytes
// (at most maxHeaderLine) and its last byte.
func measure(path string, size int64, first []byte, last byte) (partText, *records.PartHeader) {
	t := partText{path: path, end: size}
	var hdr *records.PartHeader
	if i := bytes.IndexByte(first, '\n'); i >= 0 {
		if h, ok := records.ParsePartHeader(first[:i+1]); ok {
			hdr, t.start = &h, int64(i+1)
		}
	} else if int64(len(first)) == size {
		if h, ok := records.ParsePartHeader(first); ok {
			hdr, t.start = &h, size // nothing but the header
		}
	}
	if t.end > t.start {
		t.newline = last != '\n'
	}
	return t, hdr
}

// readAt returns n bytes of a part's record from off.
type readAt func(path string, off, n int64) ([]byte, error)

// assembleParts puts the parts of one crash back together as
// store.Records does for <crash id>.dmesg.txt (and records.Assemble, up
// to the bound): PartN first, Part1 last, each part's header line replaced
// by one for the whole crash; beyond limit bytes the oldest text is left
// out, up to a line boundary, with a note. texts[0] is Part1 (hdr its
// header, or nil). Only the text kept is read.
func assembleParts(texts []partText, hdr *records.PartHeader, limit int64, read readAt) ([]byte, bool, error) {
	var head []byte
	if hdr != nil {
		head = fmt.Appendf(nil, "%s#%d Part1..%d\n", hdr.Reason, hdr.Count, len(texts))
	}
	var total int64
	for _, t := range texts {
		total += t.len()
	}
	var note []byte
	var omitted int64
	if budget := limit - int64(len(head)) - maxNote; int64(len(head))+total > limit {
		excess := total - max(budget, 0)
		for i := len(texts) - 1; i >= 0 && excess > 0; i-- {
			t := &texts[i]
			n := t.len()
			if n <= excess {
				excess -= n
				omitted += n
				*t = partText{}
				continue
			}
			cut := t.start + excess
			if cut < t.end {
				b, err := read(t.path, cut, min(4<<10, t.end-cut))
				if err != nil {
					return nil, false, err
				}
				if j := bytes.IndexByte(b, '\n'); j >= 0 {
					cut += int64(j) + 1
				}
			}
			omitted += cut - t.start
			t.start = cut
			excess = 0
		}
		note = fmt.Appendf(nil, "[lastgaspd: %d bytes of the oldest text omitted, to keep this file within %d bytes]\n", omitted, limit)
	}
	out := bytes.NewBuffer(make([]byte, 0, min(int64(len(head)+len(note))+total, limit+maxNote)))
	out.Write(head)
	out.Write(note)
	for i := len(texts) - 1; i >= 0; i-- {
		t := texts[i]
		if t.end <= t.start {
			continue
		}
		b, err := read(t.path, t.start, t.end-t.start)
		if err != nil {
			return nil, false, err
		}
		if int64(len(b)) != t.end-t.start {
			return nil, false, fmt.Errorf("part %s: read %d bytes, want %d", t.path, len(b), t.end-t.start)
		}
		out.Write(b)
		if t.newline {
			out.WriteByte('\n')
		}
	}
	return out.Bytes(), note != nil, nil
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
	texts := make([]partText, n)
	var hdr *records.PartHeader
	for p := 1; p <= n; p++ {
		in, ok := byPart[p]
		if !ok {
			return assembled{}, nil // not complete yet
		}
		var last byte
		if len(in.last) == 1 {
			last = in.last[0]
		}
		var h *records.PartHeader
		texts[p-1], h = measure(in.path, in.size, in.first, last)
		if p == 1 {
			hdr = h
		}
	}
	read := func(path string, off, n int64) ([]byte, error) {
		var b []byte
		err := tx.QueryRow(ctx, "SELECT substring(data FROM $2 FOR $3) FROM records WHERE path = $1", path, off+1, n).Scan(&b)
		return b, err
	}
	text, truncated, err := assembleParts(texts, hdr, r.maxAssembled(), read)
	if err != nil {
		return assembled{}, err
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

func (r *Records) maxAssembled() int64 {
	if r.MaxAssembled <= 0 {
		return store.DefaultMaxAssembled
	}
	return r.MaxAssembled
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
