// Package pgstore is the shared crash store on PostgreSQL: crash records
// (store.RecordStore) and the signature index (sigindex.Index) of several
// collectors in one database, so that a record is stored once fleet-wide,
// whichever collector receives it, and the crash view of any collector
// shows the whole fleet.
//
// A record is one row of the records table, keyed by (host, digest) and
// inserted with ON CONFLICT DO NOTHING in its own transaction: an upload
// is acknowledged only after that transaction committed, and a database
// that cannot be reached, or fails mid-write, stores nothing and answers
// an error wrapping store.ErrUnavailable (the upload server's 503; the
// agent keeps the record and retries, here or at the next collector).
//
// The parts of a multi-part crash (pstore's Part1..PartN) may reach
// different collectors: each part's transaction holds a lock on its crash,
// and the one that completes it stores the crash's text put back together,
// as the file store's <crash id>.dmesg.txt, once (assemble.go).
//
// The schema is versioned: the migrations are the ordered SQL files under
// migrations/ (NNNN_name.sql), applied in order by Open under an advisory
// lock, each in a transaction with its row in schema_version. A database
// whose version is newer than the binary's is refused.
package pgstore

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/lastgasp/lastgasp/store"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// Migration is one schema version: its SQL, applied once.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

// Migrations returns the package's migrations in version order. Versions
// start at 1 and have no holes.
func Migrations() ([]Migration, error) {
	ents, err := fs.ReadDir(migrationFS, "migrations")
	if err != nil {
		return nil, fmt.Errorf("pgstore: migrations: %w", err)
	}
	var ms []Migration
	for _, e := range ents {
		m, err := parseMigrationName(e.Name())
		if err != nil {
			return nil, err
		}
		b, err := migrationFS.ReadFile(path.Join("migrations", e.Name()))
		if err != nil {
			return nil, fmt.Errorf("pgstore: migration %s: %w", e.Name(), err)
		}
		m.SQL = string(b)
		ms = append(ms, m)
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].Version < ms[j].Version })
	for i, m := range ms {
		if m.Version != i+1 {
			return nil, fmt.Errorf("pgstore: migration %s: version %d, want %d", m.Name, m.Version, i+1)
		}
	}
	return ms, nil
}

// parseMigrationName reads "NNNN_name.sql".
func parseMigrationName(file string) (Migration, error) {
	base, ok := strings.CutSuffix(file, ".sql")
	num, name, ok2 := strings.Cut(base, "_")
	v, err := strconv.Atoi(num)
	digits := len(num) == 4 && strings.Trim(num, "0123456789") == ""
	if !ok || !ok2 || err != nil || !digits || v < 1 || name == "" {
		return Migration{}, fmt.Errorf("pgstore: migration file %q: want NNNN_name.sql", file)
	}
	return Migration{Version: v, Name: base}, nil
}

// migrateLock is the advisory lock key under which migrations run, so that
// collectors starting together apply each migration once.
const migrateLock = 0x6c617374676173 // "lastgas"

// ErrSchemaNewer is returned by Open for a database migrated by a newer
// lastgaspd than this one.
var ErrSchemaNewer = errors.New("database schema is newer than this lastgaspd")

// DefaultTimeout bounds one operation on the database (a record's
// transaction, an index addition, a page's query).
const DefaultTimeout = 10 * time.Second

// DB is a connection pool to the shared crash store, migrated.
type DB struct {
	pool *pgxpool.Pool
	desc string // the URL without its password, for messages
	// Version is the schema version after Open.
	Version int
	// Timeout bounds one operation; zero means DefaultTimeout.
	Timeout time.Duration
}

// Open connects to the database at url (postgres://user@host:port/db?...),
// checks that it answers, and migrates its schema to the latest version.
// An unreachable database is an error wrapping store.ErrUnavailable that
// names it (without the password).
func Open(ctx context.Context, url string) (*DB, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("pgstore: crash store URL: %w", err)
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = 5 * time.Second
	}
	cfg.MaxConnIdleTime = time.Minute
	desc := describe(cfg.ConnConfig)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("pgstore: %s: %w", desc, err)
	}
	d := &DB{pool: pool, desc: desc}
	pctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := pool.Ping(pctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("pgstore: %s: %w: %w", desc, store.ErrUnavailable, err)
	}
	if d.Version, err = d.migrate(pctx); err != nil {
		pool.Close()
		return nil, err
	}
	return d, nil
}

func describe(c *pgx.ConnConfig) string {
	return fmt.Sprintf("postgres://%s@%s/%s", c.User, net.JoinHostPort(c.Host, strconv.Itoa(int(c.Port))), c.Database)
}

// String names the database (without credentials).
func (d *DB) String() string { return d.desc }

// Close closes the pool.
func (d *DB) Close() { d.pool.Close() }

func (d *DB) ctx(parent context.Context) (context.Context, context.CancelFunc) {
	t := d.Timeout
	if t == 0 {
		t = DefaultTimeout
	}
	return context.WithTimeout(parent, t)
}

// migrate applies the missing migrations and returns the schema version.
func (d *DB) migrate(ctx context.Context) (int, error) {
	ms, err := Migrations()
	if err != nil {
		return 0, err
	}
	conn, err := d.pool.Acquire(ctx)
	if err != nil {
		return 0, fmt.Errorf("pgstore: %s: %w: %w", d.desc, store.ErrUnavailable, err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", int64(migrateLock)); err != nil {
		return 0, fmt.Errorf("pgstore: %s: migration lock: %w", d.desc, err)
	}
	defer conn.Exec(context.Background(), "SELECT pg_advisory_unlock($1)", int64(migrateLock))
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_version (
		version integer PRIMARY KEY,
		name text NOT NULL,
		applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return 0, fmt.Errorf("pgstore: %s: schema_version: %w", d.desc, err)
	}
	var have int
	if err := conn.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM schema_version").Scan(&have); err != nil {
		return 0, fmt.Errorf("pgstore: %s: schema_version: %w", d.desc, err)
	}
	if have > len(ms) {
		return have, fmt.Errorf("pgstore: %s: schema version %d, this lastgaspd knows %d: %w", d.desc, have, len(ms), ErrSchemaNewer)
	}
	for _, m := range ms[have:] {
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, m.SQL); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, "INSERT INTO schema_version (version, name) VALUES ($1, $2)", m.Version, m.Name)
			return err
		})
		if err != nil {
			return have, fmt.Errorf("pgstore: %s: migration %s: %w", d.desc, m.Name, err)
		}
		have = m.Version
	}
	return have, nil
}

// unavailable wraps a database error: nothing was stored, retry later.
func (d *DB) unavailable(what string, err error) error {
	return fmt.Errorf("pgstore: %s: %s: %w: %w", d.desc, what, store.ErrUnavailable, err)
}

// isUnique reports whether err is a unique violation of constraint.
func isUnique(err error, constraint string) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505" && pe.ConstraintName == constraint
}
