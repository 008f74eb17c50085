package store

import (
	"bufio"
	"bytes"
	"container/list"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// LogName is the name of the log file in each boot directory.
const LogName = "kernel.log"

// Defaults used for zero Store fields.
const (
	DefaultMaxOpenFiles = 4096
	DefaultRotateSize   = 64 << 20
	DefaultRotateKeep   = 5
)

// maxShards is how many independently locked parts a Store has at most, so
// that receive goroutines writing different hosts do not contend.
const maxShards = 16

// Store appends lines to per-host, per-boot log files
// <Root>/<host>/<boot>/kernel.log. Host and boot names are escaped with
// HostDir, and an empty boot is UnknownBoot. A Store is safe for
// concurrent use.
//
// A log that would grow past RotateSize is rotated first: kernel.log
// becomes kernel.log.1, kernel.log.1 becomes kernel.log.2 and so on up to
// kernel.log.<RotateKeep>; older files are removed. Rotation happens under
// the lock that serialises the appends to that log, so no line is lost or
// split, and the Store is the only writer, so no handle goes stale.
//
// Writes are buffered per open file: appended lines reach the file when the
// buffer fills, when Flush or Close is called, or when the file is closed to
// stay within MaxOpenFiles. Netconsole logs are best effort (the datagrams
// themselves may be lost on the way), and a collector that dies loses at
// most what it had not flushed; files are never fsynced. Callers flush
// periodically (Server does, every FlushInterval) and Close when done.
type Store struct {
	// Root is the directory holding one directory per host.
	Root string
	// MaxOpenFiles bounds the log files kept open (and so the write
	// buffers held). Zero means DefaultMaxOpenFiles.
	MaxOpenFiles int
	// BufferSize, if positive, gives each open file a write buffer of
	// that many bytes, for callers that append line by line. Zero or
	// negative writes every Append and Write through at once: the
	// netconsole receiver batches lines per host itself and writes each
	// batch with one Write, so that thousands of open logs do not each
	// hold a buffer.
	BufferSize int
	// RotateSize is the size in bytes past which a log is rotated. Zero
	// means DefaultRotateSize; negative disables rotation. A single
	// append larger than RotateSize still goes to one file.
	RotateSize int64
	// RotateKeep is how many rotated files (kernel.log.1 ...) are kept.
	// Zero means DefaultRotateKeep; negative keeps none.
	RotateKeep int

	once   sync.Once
	shards []storeShard

	opens atomic.Uint64 // log files opened

	bootsMu sync.Mutex
	boots   map[string][]string // escaped host -> escaped boot names, oldest first
}

// storeShard is one independently locked part of a Store's open files.
type storeShard struct {
	mu      sync.Mutex
	files   map[string]*list.Element // path -> element holding *openFile
	lru     list.List                // most recently used first
	maxOpen int
	opens   *atomic.Uint64
	_       [64]byte // keep shards' locks on separate cache lines
}

type openFile struct {
	path string
	fd   fdWriter
	w    *bufio.Writer // nil when unbuffered
	size int64         // bytes in the file, buffered ones included
}

// fdWriter writes to a log's descriptor. The store keeps plain descriptors,
// not *os.File: at fleet scale it opens tens of thousands of logs a second,
// and os.NewFile's fcntl, poller set-up and finalizer were a sixth of each
// open.
type fdWriter int

// Write writes all of b, or returns why not.
func (fd fdWriter) Write(b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := unix.Write(int(fd), b[n:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return n, err
		}
		if m == 0 {
			return n, io.ErrShortWrite
		}
		n += m
	}
	return n, nil
}

func (s *Store) init() {
	s.once.Do(func() {
		maxOpen := s.MaxOpenFiles
		if maxOpen <= 0 {
			maxOpen = DefaultMaxOpenFiles
		}
		n := min(maxShards, maxOpen)
		s.shards = make([]storeShard, n)
		for i := range s.shards {
			s.shards[i].files = make(map[string]*list.Element)
			s.shards[i].maxOpen = maxOpen / n
			s.shards[i].opens = &s.opens
		}
	})
}

func (s *Store) shard(path string) *storeShard {
	s.init()
	h := uint32(2166136261) // FNV-1a
	for i := 0; i < len(path); i++ {
		h ^= uint32(path[i])
		h *= 16777619
	}
	return &s.shards[h%uint32(len(s.shards))]
}

// Path returns the log file for host and boot.
func (s *Store) Path(host, boot string) string {
	return filepath.Join(s.Root, HostDir(host), bootDirName(boot), LogName)
}

// Append appends lines, each followed by a newline, to the log of host and
// boot, creating directories and the file as needed. Lines must not contain
// newlines.
func (s *Store) Append(host, boot string, lines ...string) error {
	if len(lines) == 0 {
		return nil
	}
	if s.Root == "" {
		return errors.New("store: store root not set")
	}
	if err := CheckBoot(boot); err != nil {
		return fmt.Errorf("store: host %q: %w", host, err)
	}
	n := 0
	for _, l := range lines {
		n += len(l) + 1
	}
	b := make([]byte, 0, n)
	for _, l := range lines {
		b = append(append(b, l...), '\n')
	}
	return s.Write(host, boot, b)
}

// Write appends data, complete lines each ending in a newline, to the log of
// host and boot in one write (unless a BufferSize is set), creating
// directories and the file as needed. Rotation happens only between
// Writes, so a batch is never split across files.
func (s *Store) Write(host, boot string, data []byte) error {
	if len(data) == 0 {
		return nil
	}
	if s.Root == "" {
		return errors.New("store: store root not set")
	}
	if err := CheckBoot(boot); err != nil {
		return fmt.Errorf("store: host %q: %w", host, err)
	}
	path := s.Path(host, boot)
	sh := s.shard(path)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	var errs []error
	for len(data) > 0 {
		of, err := sh.open(path, s.BufferSize)
		if err != nil {
			return errors.Join(append(errs, err)...)
		}
		chunk := s.fitting(of.size, data)
		if len(chunk) == 0 {
			if err := s.rotate(sh, path); err != nil {
				// Keep storing into the unrotated file.
				errs = append(errs, err)
				if of, err = sh.open(path, s.BufferSize); err != nil {
					return errors.Join(append(errs, err)...)
				}
				chunk = data
			} else {
				continue
			}
		}
		of.size += int64(len(chunk))
		var werr error
		if of.w != nil {
			_, werr = of.w.Write(chunk)
		} else {
			_, werr = of.fd.Write(chunk)
		}
		if werr != nil {
			sh.close(path)
			return errors.Join(append(errs, fmt.Errorf("store: append to %s: %w", path, werr))...)
		}
		data = data[len(chunk):]
	}
	return errors.Join(errs...)
}

// fitting returns the longest prefix of data, in whole lines, that fits in
// a log of size bytes before RotateSize, or nil if the log must be rotated
// first. A batch is split between files only at line boundaries, and only a
// single line longer than RotateSize makes a file longer.
func (s *Store) fitting(size int64, data []byte) []byte {
	limit := s.RotateSize
	if limit == 0 {
		limit = DefaultRotateSize
	}
	if limit < 0 || size+int64(len(data)) <= limit {
		return data
	}
	if room := limit - size; room > 0 {
		if i := bytes.LastIndexByte(data[:min(room, int64(len(data)))], '\n'); i >= 0 {
			return data[:i+1]
		}
	}
	if size > 0 {
		return nil // rotate, then try again
	}
	if i := bytes.IndexByte(data, '\n'); i >= 0 {
		return data[:i+1] // one line longer than the limit
	}
	return data
}

// rotate closes the log at path and shifts it and its rotated files by one
// (path -> path.1 -> path.2 ...), keeping RotateKeep of them. sh.mu must be
// held.
func (s *Store) rotate(sh *storeShard, path string) error {
	errs := []error{sh.close(path)}
	keep := s.RotateKeep
	if keep == 0 {
		keep = DefaultRotateKeep
	}
	keep = max(keep, 0)
	// Files beyond keep, left by a larger RotateKeep before.
	for i := keep + 1; ; i++ {
		if err := os.Remove(RotatedName(path, i)); err != nil {
			if !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, err)
			}
			break
		}
	}
	if keep == 0 {
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	for i := keep; i >= 1; i-- {
		from := path
		if i > 1 {
			from = RotatedName(path, i-1)
		}
		if err := os.Rename(from, RotatedName(path, i)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("store: rotate %s: %w", path, err)
	}
	return nil
}

// RotatedName returns the name of the i-th rotated file of the log at path:
// path.i.
func RotatedName(path string, i int) string { return path + "." + strconv.Itoa(i) }

// Exclusive runs fn while no line is written to the log in the boot
// directory dir (a directory Path puts logs in), after writing out and
// closing that log. Retention uses it to check a log's age and remove it
// without racing appends; the next append reopens, and recreates, the log.
func (s *Store) Exclusive(dir string, fn func() error) error {
	path := filepath.Join(dir, LogName)
	sh := s.shard(path)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if err := sh.close(path); err != nil {
		return fmt.Errorf("store: close %s: %w", path, err)
	}
	return fn()
}

// open returns the open log file at path, opening it and closing the least
// recently used file if needed.
func (sh *storeShard) open(path string, bufSize int) (*openFile, error) {
	if e, ok := sh.files[path]; ok {
		sh.lru.MoveToFront(e)
		return e.Value.(*openFile), nil
	}
	// The directory usually exists: try the open first. A plain
	// descriptor (see fdWriter): at fleet scale the store opens tens of
	// thousands of logs a second.
	const flags = unix.O_WRONLY | unix.O_APPEND | unix.O_CREAT | unix.O_CLOEXEC
	sh.opens.Add(1)
	fd, err := unix.Open(path, flags, 0o640)
	if errors.Is(err, unix.ENOENT) {
		if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
			return nil, fmt.Errorf("store: create log directory: %w", err)
		}
		fd, err = unix.Open(path, flags, 0o640)
	}
	if err != nil {
		return nil, fmt.Errorf("store: open log %s: %w", path, err)
	}
	var stat unix.Stat_t
	if err := unix.Fstat(fd, &stat); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("store: open log %s: %w", path, err)
	}
	for len(sh.files) >= max(1, sh.maxOpen) {
		sh.close(sh.lru.Back().Value.(*openFile).path)
	}
	of := &openFile{path: path, fd: fdWriter(fd), size: stat.Size}
	if bufSize > 0 {
		of.w = bufio.NewWriterSize(of.fd, bufSize)
	}
	sh.files[path] = sh.lru.PushFront(of)
	return of, nil
}

// close flushes and closes the file at path, if open.
func (sh *storeShard) close(path string) error {
	e, ok := sh.files[path]
	if !ok {
		return nil
	}
	delete(sh.files, path)
	sh.lru.Remove(e)
	of := e.Value.(*openFile)
	var ferr error
	if of.w != nil {
		ferr = of.w.Flush()
	}
	var cerr error
	if err := unix.Close(int(of.fd)); err != nil {
		cerr = &os.PathError{Op: "close", Path: of.path, Err: err}
	}
	return errors.Join(ferr, cerr)
}

// Flush writes the buffered lines of every open file to the file.
func (s *Store) Flush() error {
	s.init()
	var errs []error
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		for e := sh.lru.Front(); e != nil; {
			of := e.Value.(*openFile)
			e = e.Next()
			if of.w == nil || of.w.Buffered() == 0 {
				continue
			}
			if err := of.w.Flush(); err != nil {
				errs = append(errs, fmt.Errorf("store: flush %s: %w", of.path, err))
				sh.close(of.path)
			}
		}
		sh.mu.Unlock()
	}
	return errors.Join(errs...)
}

// openFiles returns how many log files are open.
func (s *Store) openFiles() int {
	s.init()
	n := 0
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		n += len(sh.files)
		sh.mu.Unlock()
	}
	return n
}

// Close flushes and closes the open log files. The Store may be used again
// afterwards.
func (s *Store) Close() error {
	s.init()
	var errs []error
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		for path := range sh.files {
			if err := sh.close(path); err != nil {
				errs = append(errs, fmt.Errorf("store: close %s: %w", path, err))
			}
		}
		sh.mu.Unlock()
	}
	return errors.Join(errs...)
}

// Stats counts what a Store did with its log files.
type Stats struct {
	// Opens is the log files opened (a descriptor cache miss each).
	Opens uint64
	// OpenFiles is the log files open now (a gauge).
	OpenFiles int
}

// Stats returns the Store's counters.
func (s *Store) Stats() Stats {
	return Stats{Opens: s.opens.Load(), OpenFiles: s.openFiles()}
}
