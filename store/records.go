package store

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lastgasp/lastgasp/pstore/records"
	"github.com/lastgasp/lastgasp/pstore/ship"
)

// Names in a crash directory (<root>/<host>/crash/).
const (
	// MetaSuffix ends the name of a record's metadata file, beside the
	// record: <record name>.<digest16>.json.
	MetaSuffix = ".json"
	// AssembledSuffix ends the name of the text of a multi-part crash put
	// back together: <crash id>.dmesg.txt.
	AssembledSuffix = ".dmesg.txt"
	// TempPrefix starts the names of temporary files. Record names may
	// not start with '.', so they never clash.
	TempPrefix = ".upload-"
)

// Defaults used for zero Records fields.
const (
	// DefaultMaxAssembled bounds the assembled text of one multi-part
	// crash. efi-pstore keeps a few KiB per part and ramoops a few 64 KiB
	// records, so a real crash is well under it; the newest part, which
	// holds the panic, is always kept.
	DefaultMaxAssembled = 4 << 20
	// DefaultHostQuota bounds the bytes of crash records (data, metadata
	// and assembled texts) stored for one host.
	DefaultHostQuota = 256 << 20
	// DefaultMinFree is the free space below which no record is stored,
	// so that the netconsole logs and the records already acknowledged
	// keep room.
	DefaultMinFree = 256 << 20
)

// metaReserve is what a record's metadata file is assumed to take when its
// space is reserved; the real size replaces it once it is written.
const metaReserve = 4 << 10

// maxRecordRead bounds what is read of a record stored before its panic
// line was kept in its metadata, to find that line: its tail, as a dmesg
// record ends with the newest lines.
const maxRecordRead = 4 << 20

// File is the part of *os.File that Records writes a temporary file
// through.
type File interface {
	io.Writer
	Sync() error
	Close() error
	Name() string
}

// RecordMeta is the content of a record's metadata file: what the upload
// said of the record (ship.Metadata, its fields at the top level of the
// JSON object) and what the store found in it.
type RecordMeta struct {
	ship.Metadata
	// PanicLine is the record's panic line (records.PanicLine), found
	// while it was stored. Nil in metadata written before lastgaspd kept
	// it; a pointer to "" when the record has none.
	PanicLine *string `json:"panic_line,omitempty"`
	// Verified says the upload came over TLS with a verified client
	// certificate naming the host.
	Verified bool `json:"client_verified,omitempty"`
	// Description says what a console or pmsg record is (describe).
	Description string `json:"description,omitempty"`
}

// Errors of Records.Put that callers answer differently.
var (
	// ErrDigestMismatch: the body's SHA-256 is not the digest it was
	// stored under.
	ErrDigestMismatch = errors.New("body does not match its digest")
	// ErrSizeMismatch: the body is longer or shorter than its size.
	ErrSizeMismatch = errors.New("body length differs from its size")
)

// BodyError is returned by Records.Put when reading the body failed.
type BodyError struct {
	N, Size int64 // bytes read, of the declared size
	Err     error
}

func (e *BodyError) Error() string {
	return fmt.Sprintf("read body after %d of %d bytes: %v", e.N, e.Size, e.Err)
}
func (e *BodyError) Unwrap() error { return e.Err }

// QuotaError is returned by Records.Put when storing a record would take
// its host past Records.HostQuota.
type QuotaError struct {
	Host              string
	Used, Need, Quota int64
}

func (e *QuotaError) Error() string {
	return fmt.Sprintf("host %s: crash records quota exceeded: %d bytes stored, %d more needed, quota %d", e.Host, e.Used, e.Need, e.Quota)
}

// SpaceError is returned by Records.Put when storing a record would leave
// less than Records.MinFree bytes free on the store's file system.
type SpaceError struct {
	Free, Need, Floor int64
}

func (e *SpaceError) Error() string {
	return fmt.Sprintf("store file system low on space: %d bytes free, %d needed, %d kept free", e.Free, e.Need, e.Floor)
}

// Stored says where Records.Put put a record.
type Stored struct {
	// Path is the record's canonical location relative to Root, with '/'
	// separators: <HostDir(host)>/crash/<name>.<digest16>.
	Path string
	// Duplicate: the record was already stored (at Path); nothing new was
	// written.
	Duplicate bool
	// Linked is the boot directory, relative to Root, the record was
	// hard-linked into, or "".
	Linked string
	// Assembled is the assembled text of a multi-part crash written by
	// this call, relative to Root, or ""; Truncated says it was cut to
	// MaxAssembled.
	Assembled string
	Truncated bool
}

// RecordStats counts what Records did.
type RecordStats struct {
	Assembled uint64 // multi-part crashes assembled
	Truncated uint64 // of which cut to MaxAssembled
}

// Records stores crash records durably and indexes them: it owns
//
//	<Root>/<HostDir(host)>/crash/<name>.<digest16>        a record, named by its SHA-256
//	<Root>/<HostDir(host)>/crash/<name>.<digest16>.json   its RecordMeta
//	<Root>/<HostDir(host)>/crash/<crash id>.dmesg.txt     a multi-part crash put back together
//	<Root>/<HostDir(host)>/crash/.upload-*                temporary files
//	<Root>/<HostDir(host)>/<boot>/crash/<name>.<digest16>[.json]   hard links to the records that boot left
//
// A record of the same name whose digest shares the 16-digit prefix is
// stored under the full digest instead. A record is written to a temporary
// file, checked against its digest and fsynced; its metadata is written and
// renamed into place the same way, then the record, and the directory is
// fsynced after each rename, so that a record never lacks its metadata and
// is durable when Put returns.
//
// Each host has its own lock: storing, indexing and assembling the records
// of one host never wait for another host. A Records is safe for
// concurrent use and must be the only writer of its Root's records.
type Records struct {
	// Root is the store root.
	Root string
	// MaxAssembled bounds the assembled text of a multi-part crash; the
	// oldest text beyond it is left out, with a note. Zero means
	// DefaultMaxAssembled.
	MaxAssembled int64
	// HostQuota bounds the bytes stored in one host's crash directory.
	// Zero means DefaultHostQuota; negative means no quota.
	HostQuota int64
	// MinFree is the space, in bytes, that storing a record must leave
	// free on Root's file system. Zero means DefaultMinFree; negative
	// means no floor.
	MinFree int64
	// CreateTemp creates a temporary file in dir; nil means
	// os.CreateTemp. Tests replace it to simulate a full disk.
	CreateTemp func(dir, pattern string) (File, error)
	// Logf, if set, receives a line for each problem that Put does not
	// return (a failed link or assembly: the record itself is stored).
	Logf func(format string, args ...any)

	mu        sync.Mutex
	hosts     map[string]*recordHost // by host directory
	loadedAll bool
	pending   atomic.Int64 // bytes reserved by Puts in progress, for MinFree
	stats     struct{ assembled, truncated atomic.Uint64 }
}

// recordHost is what Records knows of one host's records. mu serialises
// loading, commits and the index of the host.
type recordHost struct {
	mu       sync.Mutex
	dir      string // host directory name
	loaded   bool
	synced   bool                    // the host and crash directories are durable
	recs     map[string]*recordEntry // by digest
	byBase   map[string]*recordEntry // by file name in the crash directory
	crashes  map[string]*crashParts  // multi-part crashes by crash id
	used     int64                   // bytes in the crash directory the store wrote
	reserved int64                   // bytes reserved by Puts in progress
	texts    map[string]int64        // assembled texts by file name: size
}

// recordEntry is one stored record.
type recordEntry struct {
	base     string // file name in the crash directory
	digest   string
	bytes    int64 // data and metadata
	crash    Crash // Line is "" when the record has none
	verified bool
	linked   string // boot directory name it is linked into, or ""
}

// Stats returns the Records' counters.
func (r *Records) Stats() RecordStats {
	return RecordStats{Assembled: r.stats.assembled.Load(), Truncated: r.stats.truncated.Load()}
}

func (r *Records) logf(format string, args ...any) {
	if r.Logf != nil {
		r.Logf(format, args...)
	}
}

func (r *Records) createTemp(dir string) (File, error) {
	if r.CreateTemp != nil {
		return r.CreateTemp(dir, TempPrefix+"*")
	}
	return os.CreateTemp(dir, TempPrefix+"*")
}

// RecordFile returns the file name of the record named name with the given
// digest, before prefix collisions: <name>.<first 16 hex digits>.
func RecordFile(name, digest string) string {
	return name + "." + digest[:min(16, len(digest))]
}

// host returns the indexed state of the host directory dir.
func (r *Records) host(dir string) (*recordHost, error) {
	r.mu.Lock()
	hs := r.hosts[dir]
	if hs == nil {
		if r.hosts == nil {
			r.hosts = map[string]*recordHost{}
		}
		hs = &recordHost{dir: dir}
		r.hosts[dir] = hs
	}
	r.mu.Unlock()
	hs.mu.Lock()
	defer hs.mu.Unlock()
	if err := r.load(hs); err != nil {
		return nil, err
	}
	return hs, nil
}

// Lookup returns where the record of host with digest is stored, relative
// to Root, if it is.
func (r *Records) Lookup(host, digest string) (string, bool, error) {
	dir := HostDir(host)
	hs, err := r.host(dir)
	if err != nil {
		return "", false, err
	}
	hs.mu.Lock()
	defer hs.mu.Unlock()
	if e := hs.recs[digest]; e != nil {
		return path.Join(dir, CrashDir, e.base), true, nil
	}
	return "", false, nil
}

// Put stores the record described by meta, whose bytes body yields: exactly
// meta.Size of them, with SHA-256 meta.Digest. A record the host already
// has (same digest) is not written again: Put returns it as a duplicate
// without reading body, and the caller drains it if it wants to.
//
// linkBoot, if not "", is the boot directory relative to Root (as
// Store.PrevBootDir returns) of the boot that left the record: once
// stored, the record and its metadata are hard-linked into its crash
// subdirectory, if that boot directory exists and belongs to the host. A
// failed link is logged, not returned: the record is stored.
//
// A record that is one part of a multi-part crash (meta.CrashID) completes
// the crash once all its parts are stored: they are assembled into
// <crash id>.dmesg.txt (see AssembleCrash).
//
// Errors: *BodyError when reading body fails, ErrSizeMismatch,
// ErrDigestMismatch, *QuotaError, *SpaceError, errors wrapping ENOSPC or
// EDQUOT from the file system, and others. A failed Put leaves no file
// behind.
func (r *Records) Put(meta RecordMeta, body io.Reader, linkBoot string) (Stored, error) {
	if err := ship.CheckHost(meta.Host); err != nil {
		return Stored{}, fmt.Errorf("store: record: %w", err)
	}
	if err := ship.CheckRecordName(meta.RecordName); err != nil {
		return Stored{}, fmt.Errorf("store: record: %w", err)
	}
	if err := ship.CheckDigest(meta.Digest); err != nil {
		return Stored{}, fmt.Errorf("store: record: %w", err)
	}
	if meta.Size < 0 {
		return Stored{}, fmt.Errorf("store: record %s: negative size", meta.RecordName)
	}
	hostDir := HostDir(meta.Host)
	hs, err := r.host(hostDir)
	if err != nil {
		return Stored{}, err
	}
	dir := filepath.Join(r.Root, hostDir, CrashDir)

	hs.mu.Lock()
	if e := hs.recs[meta.Digest]; e != nil {
		st := Stored{Path: path.Join(hostDir, CrashDir, e.base), Duplicate: true}
		hs.mu.Unlock()
		if meta.CrashID != "" {
			// An earlier assembly may have failed: try again.
			st.Assembled, st.Truncated = r.assemble(hs, meta.CrashID)
		}
		return st, nil
	}
	need := meta.Size + metaReserve
	if q := r.quota(); q >= 0 && hs.used+hs.reserved+need > q {
		hs.mu.Unlock()
		return Stored{}, &QuotaError{Host: meta.Host, Used: hs.used + hs.reserved, Need: need, Quota: q}
	}
	if !hs.synced {
		if err := mkdirDurable(r.Root, hostDir, CrashDir); err != nil {
			hs.mu.Unlock()
			return Stored{}, err
		}
		hs.synced = true
	}
	hs.reserved += need
	hs.mu.Unlock()
	r.pending.Add(need)
	defer func() {
		r.pending.Add(-need)
		hs.mu.Lock()
		hs.reserved -= need
		hs.mu.Unlock()
	}()
	if err := r.checkSpace(need); err != nil {
		return Stored{}, err
	}

	data, err := r.createTemp(dir)
	if err != nil {
		return Stored{}, fmt.Errorf("store: create temporary file: %w", err)
	}
	committed := false
	defer func() {
		if !committed {
			data.Close()
			os.Remove(data.Name())
		}
	}()
	var panicLine panicScanner
	br := &hashReader{r: io.LimitReader(body, meta.Size+1), h: sha256.New(), tee: &panicLine}
	if _, err := io.Copy(data, br); err != nil {
		if br.err != nil {
			return Stored{}, &BodyError{N: br.n, Size: meta.Size, Err: br.err}
		}
		return Stored{}, fmt.Errorf("store: write record %s: %w", meta.RecordName, err)
	}
	if br.n != meta.Size {
		return Stored{}, fmt.Errorf("store: record %s: %d bytes, want %d: %w", meta.RecordName, br.n, meta.Size, ErrSizeMismatch)
	}
	if got := hex.EncodeToString(br.h.Sum(nil)); got != meta.Digest {
		return Stored{}, fmt.Errorf("store: record %s has sha256 %s, want %s: %w", meta.RecordName, got, meta.Digest, ErrDigestMismatch)
	}
	if err := data.Sync(); err != nil {
		return Stored{}, fmt.Errorf("store: sync record: %w", err)
	}
	if err := data.Close(); err != nil {
		return Stored{}, fmt.Errorf("store: close record: %w", err)
	}

	line := panicLine.line()
	meta.PanicLine = &line
	meta.Description = describe(meta.Metadata)
	mj, err := json.MarshalIndent(meta, "", "  ")
	if err != nil {
		return Stored{}, fmt.Errorf("store: encode metadata: %w", err)
	}
	mj = append(mj, '\n')
	mf, err := r.createTemp(dir)
	if err != nil {
		return Stored{}, fmt.Errorf("store: create temporary file: %w", err)
	}
	defer func() {
		if !committed {
			mf.Close()
			os.Remove(mf.Name())
		}
	}()
	if _, err := mf.Write(mj); err != nil {
		return Stored{}, fmt.Errorf("store: write metadata: %w", err)
	}
	if err := mf.Sync(); err != nil {
		return Stored{}, fmt.Errorf("store: sync metadata: %w", err)
	}
	if err := mf.Close(); err != nil {
		return Stored{}, fmt.Errorf("store: close metadata: %w", err)
	}

	// Commit under the host's lock, so that two uploads of one record
	// store it once and the index matches the directory.
	hs.mu.Lock()
	if e := hs.recs[meta.Digest]; e != nil {
		hs.mu.Unlock()
		return Stored{Path: path.Join(hostDir, CrashDir, e.base), Duplicate: true}, nil
	}
	base := RecordFile(meta.RecordName, meta.Digest)
	if _, err := os.Lstat(filepath.Join(dir, base)); err == nil || hs.byBase[base] != nil {
		base = meta.RecordName + "." + meta.Digest // another record with the same prefix
	}
	final := filepath.Join(dir, base)
	if err := commit(dir, mf.Name(), data.Name(), final); err != nil {
		hs.mu.Unlock()
		return Stored{}, err
	}
	committed = true
	e := &recordEntry{base: base, digest: meta.Digest, bytes: meta.Size + int64(len(mj)), verified: meta.Verified,
		crash: recordCrash(meta, line, base)}
	hs.add(e)
	st := Stored{Path: path.Join(hostDir, CrashDir, base)}
	if linkBoot != "" {
		if boot, err := r.link(hostDir, linkBoot, final); err != nil {
			r.logf("store: host %s: record %s not linked: %v", meta.Host, base, err)
		} else {
			e.linked = boot
			st.Linked = path.Join(hostDir, boot)
		}
	}
	assemble := false
	if meta.CrashID != "" {
		assemble = hs.addPart(meta.CrashID, meta.Part, meta.Parts, base)
	}
	hs.mu.Unlock()
	if assemble {
		st.Assembled, st.Truncated = r.assemble(hs, meta.CrashID)
	}
	return st, nil
}

// commit renames the metadata file and then the data file into place,
// fsyncing dir after each, and takes both back if either step fails.
func commit(dir, metaTemp, dataTemp, final string) error {
	if err := os.Rename(metaTemp, final+MetaSuffix); err != nil {
		return fmt.Errorf("store: rename metadata: %w", err)
	}
	if err := syncDir(dir); err != nil {
		os.Remove(final + MetaSuffix)
		return err
	}
	if err := os.Rename(dataTemp, final); err != nil {
		os.Remove(final + MetaSuffix)
		return fmt.Errorf("store: rename record: %w", err)
	}
	if err := syncDir(dir); err != nil {
		// Not known to be durable: take it back so that a retry stores
		// it again instead of being told it is a duplicate.
		os.Remove(final)
		os.Remove(final + MetaSuffix)
		return err
	}
	return nil
}

func (r *Records) quota() int64 {
	switch {
	case r.HostQuota == 0:
		return DefaultHostQuota
	case r.HostQuota < 0:
		return -1
	}
	return r.HostQuota
}

// checkSpace refuses a record of need bytes that would leave less than
// MinFree bytes free, counting the space that Puts in progress reserved.
func (r *Records) checkSpace(need int64) error {
	floor := r.MinFree
	if floor == 0 {
		floor = DefaultMinFree
	}
	if floor < 0 {
		return nil
	}
	free, err := FreeSpace(r.Root)
	if err != nil {
		return err
	}
	// pending already holds need.
	if free-r.pending.Load() < floor {
		return &SpaceError{Free: free, Need: need, Floor: floor}
	}
	return nil
}

// FreeSpace returns the bytes available to unprivileged users on the file
// system holding dir (statfs(2) f_bavail * f_bsize).
func FreeSpace(dir string) (int64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, fmt.Errorf("store: statfs %s: %w", dir, err)
	}
	return int64(st.Bavail) * int64(st.Bsize), nil
}

// recordCrash returns what the crash listing shows of a record.
func recordCrash(meta RecordMeta, line, base string) Crash {
	t := meta.RecordTime
	if t.IsZero() {
		t = meta.Received
	}
	return Crash{Time: t, Line: line, Source: CrashDir + "/" + base}
}

// add indexes e. hs.mu must be held.
func (hs *recordHost) add(e *recordEntry) {
	hs.recs[e.digest] = e
	hs.byBase[e.base] = e
	hs.used += e.bytes
}

// load indexes the records in the host's crash directory, once. It writes
// nothing: temporary files are left to CleanTemps. hs.mu must be held.
func (r *Records) load(hs *recordHost) error {
	if hs.loaded {
		return nil
	}
	hs.recs, hs.byBase, hs.texts = map[string]*recordEntry{}, map[string]*recordEntry{}, map[string]int64{}
	hostDir := filepath.Join(r.Root, hs.dir)
	dir := filepath.Join(hostDir, CrashDir)
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		hs.loaded = true
		return nil
	}
	if err != nil {
		return fmt.Errorf("store: index %s: %w", dir, err)
	}
	var metas []string
	for _, d := range ents {
		name := d.Name()
		switch {
		case strings.HasPrefix(name, ".") || !d.Type().IsRegular():
			continue
		case strings.HasSuffix(name, MetaSuffix):
			metas = append(metas, name)
			continue
		case strings.HasSuffix(name, AssembledSuffix):
			if fi, err := d.Info(); err == nil {
				hs.texts[name] = fi.Size()
				hs.used += fi.Size()
			}
			continue
		}
		e, meta, err := readEntry(filepath.Join(dir, name))
		if err != nil {
			r.logf("store: index %s: %v", dir, err)
			continue
		}
		if hs.recs[e.digest] != nil {
			continue // the same record twice (copied in by hand): one is enough
		}
		hs.add(e)
		if meta.CrashID != "" && ship.CheckRecordName(meta.CrashID) == nil && meta.Part >= 1 && meta.Part <= meta.Parts {
			hs.addPart(meta.CrashID, meta.Part, meta.Parts, name)
		}
	}
	for _, name := range metas { // orphaned metadata counts towards the quota
		if hs.byBase[strings.TrimSuffix(name, MetaSuffix)] == nil {
			if fi, err := os.Stat(filepath.Join(dir, name)); err == nil {
				hs.used += fi.Size()
			}
		}
	}
	for id, c := range hs.crashes {
		if _, ok := hs.texts[id+AssembledSuffix]; ok {
			c.assembled = true
		}
	}
	r.findLinks(hs, hostDir)
	hs.loaded = true
	return nil
}

// findLinks notes which boot directory of the host holds a hard link to
// each record. hs.mu must be held.
func (r *Records) findLinks(hs *recordHost, hostDir string) {
	boots, err := os.ReadDir(hostDir)
	if err != nil {
		return
	}
	for _, b := range boots {
		if !b.IsDir() || b.Name() == CrashDir || strings.HasPrefix(b.Name(), ".") {
			continue
		}
		links, err := os.ReadDir(filepath.Join(hostDir, b.Name(), CrashDir))
		if err != nil {
			continue
		}
		for _, l := range links {
			e := hs.byBase[l.Name()]
			if e == nil || e.linked != "" {
				continue
			}
			li, err1 := os.Stat(filepath.Join(hostDir, b.Name(), CrashDir, l.Name()))
			fi, err2 := os.Stat(filepath.Join(hostDir, CrashDir, l.Name()))
			if err1 == nil && err2 == nil && os.SameFile(li, fi) {
				e.linked = b.Name()
			}
		}
	}
}

// readEntry reads what the index holds of the record stored at p: from its
// metadata file or, failing that, from the record itself.
func readEntry(p string) (*recordEntry, RecordMeta, error) {
	fi, err := os.Stat(p)
	if err != nil {
		return nil, RecordMeta{}, err
	}
	e := &recordEntry{base: filepath.Base(p), bytes: fi.Size()}
	var m RecordMeta
	if b, err := os.ReadFile(p + MetaSuffix); err == nil {
		e.bytes += int64(len(b))
		if json.Unmarshal(b, &m) != nil {
			m = RecordMeta{}
		}
		if ship.CheckDigest(m.Digest) != nil {
			m.Digest = "" // hashed below
		}
	}
	e.digest = m.Digest
	if e.digest == "" || m.PanicLine == nil {
		f, err := os.Open(p)
		if err != nil {
			return nil, RecordMeta{}, err
		}
		defer f.Close()
		var pl panicScanner
		if e.digest == "" {
			h := sha256.New()
			if _, err := io.Copy(io.MultiWriter(h, &pl), f); err != nil {
				return nil, RecordMeta{}, fmt.Errorf("hash %s: %w", p, err)
			}
			e.digest = hex.EncodeToString(h.Sum(nil))
		} else if _, err := io.Copy(&pl, io.NewSectionReader(f, max(0, fi.Size()-maxRecordRead), maxRecordRead)); err != nil {
			return nil, RecordMeta{}, fmt.Errorf("read %s: %w", p, err)
		}
		line := pl.line()
		m.PanicLine = &line
	}
	if m.Received.IsZero() && m.RecordTime.IsZero() {
		m.Received = fi.ModTime().UTC()
	}
	e.verified = m.Verified
	e.crash = recordCrash(m, *m.PanicLine, e.base)
	return e, m, nil
}

// link hard-links the record stored at final, metadata first, into the
// crash directory of the boot directory bootRel (relative to Root), which
// must be an existing boot directory of the host directory hostDir. It
// returns the boot directory's name. Hard links let retention remove
// either path without breaking the other.
func (r *Records) link(hostDir, bootRel, final string) (string, error) {
	h, boot, ok := strings.Cut(bootRel, "/")
	if !ok || h != hostDir || boot == "" || CheckBoot(boot) != nil {
		return "", fmt.Errorf("boot directory %q is not one of host directory %q", bootRel, hostDir)
	}
	bootDir := filepath.Join(r.Root, hostDir, boot)
	if fi, err := os.Lstat(bootDir); err != nil || !fi.IsDir() {
		return "", fmt.Errorf("boot directory %q missing", bootRel)
	}
	dir := filepath.Join(bootDir, CrashDir)
	if err := os.Mkdir(dir, 0o750); err != nil && !errors.Is(err, fs.ErrExist) {
		return "", err
	}
	name := filepath.Base(final)
	for _, suffix := range []string{MetaSuffix, ""} {
		if err := linkOnce(final+suffix, filepath.Join(dir, name+suffix)); err != nil {
			return "", err
		}
	}
	return boot, nil
}

// linkOnce hard-links newname to oldname, accepting an existing link to
// the same file.
func linkOnce(oldname, newname string) error {
	err := os.Link(oldname, newname)
	if !errors.Is(err, fs.ErrExist) {
		return err
	}
	a, aerr := os.Stat(oldname)
	b, berr := os.Stat(newname)
	if aerr == nil && berr == nil && os.SameFile(a, b) {
		return nil
	}
	return fmt.Errorf("%s exists and is another file", newname)
}

// RemoveRecord removes the stored record whose data file is at p (under
// Root, in a host's crash directory), then its metadata file, and forgets
// it, so that a later upload of the same record stores it again instead of
// being acknowledged as a duplicate. A part of a multi-part crash takes
// the crash's assembled text with it: the text is no longer the parts'
// stored, and the part uploaded again assembles the crash again. Files
// already gone are not an error.
func (r *Records) RemoveRecord(p string) error {
	rel, err := filepath.Rel(r.Root, p)
	if err != nil || !filepath.IsLocal(rel) {
		return fmt.Errorf("store: remove record %s: not under %s", p, r.Root)
	}
	hostDir, rest, _ := strings.Cut(filepath.ToSlash(rel), "/")
	crash, base, ok := strings.Cut(rest, "/")
	if !ok || crash != CrashDir || strings.Contains(base, "/") {
		return fmt.Errorf("store: remove record %s: not in a crash directory", p)
	}
	hs, err := r.host(hostDir)
	if err != nil {
		return err
	}
	hs.mu.Lock()
	defer hs.mu.Unlock()
	_, err = r.removeLocked(hs, base)
	return err
}

// removedText is an assembled text removed with one of its parts.
type removedText struct {
	name string    // file name in the crash directory
	time time.Time // when it was written
}

// removeLocked removes the record base of hs, data before metadata, and
// the assembled text of the crash it is a part of, if there is one
// (returned). hs.mu must be held.
func (r *Records) removeLocked(hs *recordHost, base string) ([]removedText, error) {
	p := filepath.Join(r.Root, hs.dir, CrashDir, base)
	for _, f := range []string{p, p + MetaSuffix} {
		if err := os.Remove(f); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("store: remove record: %w", err)
		}
	}
	e := hs.byBase[base]
	if e == nil {
		return nil, nil
	}
	delete(hs.byBase, base)
	delete(hs.recs, e.digest)
	hs.used -= e.bytes
	var texts []removedText
	var errs []error
	for id, c := range hs.crashes {
		for part, b := range c.bases {
			if b != base {
				continue
			}
			delete(c.bases, part)
			t, removed, err := r.removeText(hs, id)
			if err != nil {
				errs = append(errs, err)
			} else if removed {
				texts = append(texts, removedText{name: id + AssembledSuffix, time: t})
			}
		}
	}
	return texts, errors.Join(errs...)
}

// removeText removes the assembled text of crash id of hs, if there is
// one, and reports when it was written. hs.mu must be held.
func (r *Records) removeText(hs *recordHost, id string) (time.Time, bool, error) {
	name := id + AssembledSuffix
	p := filepath.Join(r.Root, hs.dir, CrashDir, name)
	t, ok := modTime(p)
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return time.Time{}, false, fmt.Errorf("store: remove assembled crash: %w", err)
	}
	hs.used -= hs.texts[name]
	delete(hs.texts, name)
	if c := hs.crashes[id]; c != nil {
		c.assembled = false
	}
	return t, ok, nil
}

// hashReader hashes, counts and tees what it reads, and keeps the read
// error apart from errors of the writer it is copied to.
type hashReader struct {
	r   io.Reader
	h   hash.Hash
	tee io.Writer
	n   int64
	err error
}

func (b *hashReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.h.Write(p[:n])
	b.tee.Write(p[:n])
	b.n += int64(n)
	if err != nil && err != io.EOF {
		b.err = err
	}
	return n, err
}

// maxScanLine bounds the part of each line panicScanner looks at; panic
// markers sit at the start of a line, after short prefixes.
const maxScanLine = 8 << 10

// panicScanner finds the first panic line (records.PanicLine) of what is
// written to it, one line at a time, holding at most maxScanLine bytes.
type panicScanner struct {
	cur   []byte
	found string
}

func (s *panicScanner) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 && s.found == "" {
		i := indexByte(p, '\n')
		chunk := p
		if i >= 0 {
			chunk = p[:i]
		}
		if room := maxScanLine - len(s.cur); room > 0 {
			s.cur = append(s.cur, chunk[:min(len(chunk), room)]...)
		}
		if i < 0 {
			break
		}
		s.found = records.PanicLine(s.cur)
		s.cur = s.cur[:0]
		p = p[i+1:]
	}
	return n, nil
}

// line returns the panic line found, checking the last, unterminated line.
func (s *panicScanner) line() string {
	if s.found == "" && len(s.cur) > 0 {
		s.found = records.PanicLine(s.cur)
		s.cur = s.cur[:0]
	}
	return s.found
}

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}

// mkdirDurable creates root/elems... as needed and fsyncs each parent of a
// directory on the way, so the directories survive a crash.
func mkdirDurable(root string, elems ...string) error {
	if _, err := os.Stat(root); errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(root, 0o750); err != nil {
			return fmt.Errorf("store: create %s: %w", root, err)
		}
		if err := syncDir(filepath.Dir(root)); err != nil {
			return err
		}
	}
	dir := root
	for _, e := range elems {
		sub := filepath.Join(dir, e)
		if err := os.Mkdir(sub, 0o750); err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("store: create %s: %w", sub, err)
		}
		if err := syncDir(dir); err != nil {
			return err
		}
		dir = sub
	}
	return nil
}

// syncDir fsyncs a directory, making the names in it durable.
func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("store: sync directory: %w", err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("store: sync directory %s: %w", dir, err)
	}
	return nil
}
