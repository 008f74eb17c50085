package server

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"maps"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/lastgasp/lastgasp/pstore/ship"

	"github.com/lastgasp/lastgasp/pstore/records"
)

// DefaultMaxRecordSize is the largest record a Server accepts when its
// MaxRecordSize is zero.
const DefaultMaxRecordSize = 16 << 20

// staleTemp is how old a leftover temporary file must be before a Server
// removes it.
const staleTemp = time.Hour

// tempPrefix starts the names of temporary files; record names may not start
// with '.', so they never clash.
const tempPrefix = ".upload-"

// File is the part of *os.File a Server writes a temporary file through.
type File interface {
	io.Writer
	Sync() error
	Close() error
	Name() string
}

// Server is the collector's end of the protocol: an http.Handler that
// verifies uploaded records, stores them durably under Root and acknowledges
// them. See the package documentation for the protocol and storage layout.
//
// A Server must not be copied after first use. One Server should own a Root.
type Server struct {
	// Root is the directory records are stored under. It is created if
	// missing.
	Root string
	// MaxRecordSize is the largest record accepted; larger ones are
	// answered 413. Zero means DefaultMaxRecordSize.
	MaxRecordSize int64
	// Logf, if set, receives one line per request outcome.
	Logf func(format string, args ...any)
	// CreateTemp creates a temporary file in dir; nil means os.CreateTemp.
	// Tests replace it to simulate a full disk.
	CreateTemp func(dir, pattern string) (File, error)
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// RequireClientIdentity scopes each credential to its own host: an
	// upload must arrive over TLS with a verified client certificate
	// whose identity (the subject's common name or one of its DNS names)
	// is the <host> of the path, else it is answered 403. Set it when the
	// TLS listener verifies client certificates (tls.Config.ClientCAs with
	// RequireAndVerifyClientCert); the Server checks only the names.
	RequireClientIdentity bool
	// PrevBoot, if set, returns the directory, relative to Root with '/'
	// separators, of the logs of host's boot before uploadingBoot (the
	// boot that crashed and left the record behind), or "" if it is not
	// known. A stored record is then also hard-linked, with its metadata,
	// into that directory's "crash" subdirectory; <host>/crash stays the
	// canonical location. lastgaspd wires it to the netconsole receiver's
	// Store.PrevBootDir.
	PrevBoot func(host, uploadingBoot string) string

	mu    sync.Mutex
	hosts map[string]*hostState
	stats Stats
}

// hostState is what a Server knows of one host's directory.
type hostState struct {
	byDigest map[string]string // digest -> path relative to Root
	synced   bool              // the host and crash directories are durable
	crashes  map[string]*crashParts
}

// Stats counts what a Server did.
type Stats struct {
	Uploads    uint64 // requests received
	Stored     uint64 // records stored
	Duplicates uint64 // uploads of records already stored
	// Rejected counts failed requests by reason: "method", "path",
	// "host", "digest", "forbidden", "name", "header", "length", "too-large",
	// "short-body", "digest-mismatch", "disk-full", "internal".
	Rejected map[string]uint64
}

// Stats returns a snapshot of the Server's counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.Rejected = maps.Clone(s.stats.Rejected)
	if st.Rejected == nil {
		st.Rejected = map[string]uint64{}
	}
	return st
}

// reqError is a failed request: the status to answer, the reason to count
// and the error to log.
type reqError struct {
	code   int
	reason string
	err    error
}

func (e *reqError) Error() string { return e.err.Error() }
func (e *reqError) Unwrap() error { return e.err }

func reject(code int, reason string, format string, args ...any) *reqError {
	return &reqError{code: code, reason: reason, err: fmt.Errorf(format, args...)}
}

// ServeHTTP handles one upload.
func (s *Server) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	s.mu.Lock()
	s.stats.Uploads++
	s.mu.Unlock()

	ack, meta, rerr := s.handle(req)
	if rerr != nil {
		s.mu.Lock()
		if s.stats.Rejected == nil {
			s.stats.Rejected = map[string]uint64{}
		}
		s.stats.Rejected[rerr.reason]++
		s.mu.Unlock()
		s.logf("ship: %s %s from %s: %d %s: %v", req.Method, req.URL.Path, req.RemoteAddr, rerr.code, rerr.reason, rerr.err)
		msg := rerr.err.Error()
		if rerr.code >= 500 {
			msg = http.StatusText(rerr.code) // details are in the log, not for the client
		}
		if rerr.code == http.StatusRequestEntityTooLarge || rerr.code == http.StatusForbidden {
			w.Header().Set("Connection", "close") // do not read a huge or unwanted body
		}
		if rerr.code == http.StatusMethodNotAllowed {
			w.Header().Set("Allow", http.MethodPut)
		}
		http.Error(w, msg, rerr.code)
		return
	}
	s.mu.Lock()
	if ack.Duplicate {
		s.stats.Duplicates++
	} else {
		s.stats.Stored++
	}
	s.mu.Unlock()
	what := "stored"
	if ack.Duplicate {
		what = "duplicate of"
	}
	s.logf("ship: host %s boot %s: %s (%d bytes, sha256 %s) %s %s", meta.Host, meta.BootID, meta.RecordName, meta.Size, ack.Digest, what, ack.Path)
	body, err := json.Marshal(ack)
	if err != nil {
		panic(err) // ship.Ack always marshals
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	w.Write(append(body, '\n'))
}

func (s *Server) logf(format string, args ...any) {
	if s.Logf != nil {
		s.Logf(format, args...)
	}
}

func (s *Server) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Server) maxSize() int64 {
	if s.MaxRecordSize > 0 {
		return s.MaxRecordSize
	}
	return DefaultMaxRecordSize
}

func (s *Server) createTemp(dir, pattern string) (File, error) {
	if s.CreateTemp != nil {
		return s.CreateTemp(dir, pattern)
	}
	return os.CreateTemp(dir, pattern)
}

// handle validates req and stores its record.
func (s *Server) handle(req *http.Request) (ship.Ack, ship.Metadata, *reqError) {
	if req.Method != http.MethodPut {
		return ship.Ack{}, ship.Metadata{}, reject(http.StatusMethodNotAllowed, "method", "method %s not allowed", req.Method)
	}
	host, digest, ok := ship.ParsePath(req.URL.Path)
	if !ok {
		return ship.Ack{}, ship.Metadata{}, reject(http.StatusNotFound, "path", "no such path %q", req.URL.Path)
	}
	if err := ship.CheckHost(host); err != nil {
		return ship.Ack{}, ship.Metadata{}, reject(http.StatusBadRequest, "host", "host %w", err)
	}
	if err := ship.CheckDigest(digest); err != nil {
		return ship.Ack{}, ship.Metadata{}, reject(http.StatusBadRequest, "digest", "digest %w", err)
	}
	if s.RequireClientIdentity {
		if err := Authorize(req.TLS, host); err != nil {
			return ship.Ack{}, ship.Metadata{}, reject(http.StatusForbidden, "forbidden", "%w", err)
		}
	}
	meta := ship.Metadata{
		Host:          host,
		Digest:        digest,
		RecordName:    req.Header.Get(ship.HeaderRecordName),
		BootID:        req.Header.Get(ship.HeaderBootID),
		KernelRelease: req.Header.Get(ship.HeaderKernelRelease),
		RemoteAddr:    req.RemoteAddr,
	}
	if err := ship.CheckRecordName(meta.RecordName); err != nil {
		return ship.Ack{}, meta, reject(http.StatusBadRequest, "name", "%s %w", ship.HeaderRecordName, err)
	}
	if err := ship.CheckBootID(meta.BootID); err != nil {
		return ship.Ack{}, meta, reject(http.StatusBadRequest, "header", "%w", err)
	}
	if err := ship.CheckKernelRelease(meta.KernelRelease); err != nil {
		return ship.Ack{}, meta, reject(http.StatusBadRequest, "header", "%w", err)
	}
	if v := req.Header.Get(ship.HeaderRecordTime); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return ship.Ack{}, meta, reject(http.StatusBadRequest, "header", "%s: %w", ship.HeaderRecordTime, err)
		}
		meta.RecordTime = t
	}
	id, part, parts, err := ship.CrashHeaders(req.Header.Get(ship.HeaderCrashID), req.Header.Get(ship.HeaderPart), req.Header.Get(ship.HeaderParts))
	if err != nil {
		return ship.Ack{}, meta, reject(http.StatusBadRequest, "header", "%w", err)
	}
	meta.CrashID, meta.Part, meta.Parts = id, part, parts
	if meta.Decompressed, err = ship.ParseFlag(ship.HeaderDecompressed, req.Header.Get(ship.HeaderDecompressed)); err != nil {
		return ship.Ack{}, meta, reject(http.StatusBadRequest, "header", "%w", err)
	}
	if meta.Corrupt, err = ship.ParseFlag(ship.HeaderCorrupt, req.Header.Get(ship.HeaderCorrupt)); err != nil {
		return ship.Ack{}, meta, reject(http.StatusBadRequest, "header", "%w", err)
	}
	if typ, _, _, compressed, err := records.ParseName(meta.RecordName); err == nil {
		// Compressed describes the stored bytes: not once the agent
		// inflated them.
		meta.RecordType, meta.Compressed = typ, compressed && !meta.Decompressed
	}
	// The server reports a request without Content-Length and without a
	// body as ContentLength 0; only the header tells them apart.
	if req.ContentLength < 0 || req.ContentLength == 0 && req.Header.Get("Content-Length") == "" {
		return ship.Ack{}, meta, reject(http.StatusLengthRequired, "length", "Content-Length required")
	}
	if limit := s.maxSize(); req.ContentLength > limit {
		return ship.Ack{}, meta, reject(http.StatusRequestEntityTooLarge, "too-large", "record of %d bytes exceeds limit of %d", req.ContentLength, limit)
	}
	meta.Size = req.ContentLength

	s.mu.Lock()
	hs, err := s.loadHost(host)
	var rel string
	if hs != nil {
		rel = hs.byDigest[digest]
	}
	s.mu.Unlock()
	if err != nil {
		return ship.Ack{}, meta, classify(err)
	}
	if rel != "" {
		// Read the (bounded) body so the connection can be reused.
		io.Copy(io.Discard, req.Body)
		if meta.CrashID != "" {
			// An earlier assembly may have failed: try again.
			s.mu.Lock()
			s.assemble(host, meta.CrashID)
			s.mu.Unlock()
		}
		return ship.Ack{Digest: digest, Stored: true, Duplicate: true, Path: rel}, meta, nil
	}
	meta.Received = s.now().UTC()
	ack, rerr := s.store(req.Body, meta)
	return ack, meta, rerr
}

// classify maps an error of the storage path to a response.
func classify(err error) *reqError {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return &reqError{code: http.StatusInsufficientStorage, reason: "disk-full", err: err}
	}
	return &reqError{code: http.StatusInternalServerError, reason: "internal", err: err}
}

// bodyReader remembers the error reading the request body, to tell it apart
// from an error writing the file.
type bodyReader struct {
	r   io.Reader
	h   hash.Hash
	n   int64
	err error
}

func (b *bodyReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.h.Write(p[:n])
	b.n += int64(n)
	if err != nil && err != io.EOF {
		b.err = err
	}
	return n, err
}

// store writes body and meta durably and returns the acknowledgement.
func (s *Server) store(body io.Reader, meta ship.Metadata) (ship.Ack, *reqError) {
	dir := filepath.Join(s.Root, meta.Host, "crash")

	data, err := s.createTemp(dir, tempPrefix+"*")
	if err != nil {
		return ship.Ack{}, classify(fmt.Errorf("create temporary file: %w", err))
	}
	committed := false
	defer func() {
		if !committed {
			data.Close()
			os.Remove(data.Name())
		}
	}()
	// Go's server ends the body at Content-Length; the limit guards other
	// callers of ServeHTTP.
	br := &bodyReader{r: io.LimitReader(body, meta.Size+1), h: sha256.New()}
	if _, err := io.Copy(data, br); err != nil {
		if br.err != nil {
			return ship.Ack{}, reject(http.StatusBadRequest, "short-body", "read body after %d of %d bytes: %w", br.n, meta.Size, br.err)
		}
		return ship.Ack{}, classify(fmt.Errorf("write record: %w", err))
	}
	if br.n != meta.Size {
		return ship.Ack{}, reject(http.StatusBadRequest, "short-body", "body length differs from Content-Length %d", meta.Size)
	}
	if got := fmt.Sprintf("%x", br.h.Sum(nil)); got != meta.Digest {
		return ship.Ack{}, reject(http.StatusBadRequest, "digest-mismatch", "body has sha256 %s, path says %s", got, meta.Digest)
	}
	if err := data.Sync(); err != nil {
		return ship.Ack{}, classify(fmt.Errorf("sync record: %w", err))
	}
	if err := data.Close(); err != nil {
		return ship.Ack{}, classify(fmt.Errorf("close record: %w", err))
	}

	mj, err := json.MarshalIndent(meta, "", "  ")
	if err != nil {
		return ship.Ack{}, classify(fmt.Errorf("encode metadata: %w", err))
	}
	mf, err := s.createTemp(dir, tempPrefix+"*")
	if err != nil {
		return ship.Ack{}, classify(fmt.Errorf("create temporary file: %w", err))
	}
	defer func() {
		if !committed {
			mf.Close()
			os.Remove(mf.Name())
		}
	}()
	if _, err := mf.Write(append(mj, '\n')); err != nil {
		return ship.Ack{}, classify(fmt.Errorf("write metadata: %w", err))
	}
	if err := mf.Sync(); err != nil {
		return ship.Ack{}, classify(fmt.Errorf("sync metadata: %w", err))
	}
	if err := mf.Close(); err != nil {
		return ship.Ack{}, classify(fmt.Errorf("close metadata: %w", err))
	}

	crashedBoot := s.prevBoot(meta)

	// Commit under the lock, so that two uploads of one record store it
	// once and the index matches the directory.
	s.mu.Lock()
	defer s.mu.Unlock()
	hs, err := s.loadHost(meta.Host)
	if err != nil {
		return ship.Ack{}, classify(err)
	}
	if rel, ok := hs.byDigest[meta.Digest]; ok {
		return ship.Ack{Digest: meta.Digest, Stored: true, Duplicate: true, Path: rel}, nil
	}
	base := meta.RecordName + "." + meta.Digest[:16]
	if _, err := os.Lstat(filepath.Join(dir, base)); err == nil {
		base = meta.RecordName + "." + meta.Digest // a different record with the same prefix
	}
	final := filepath.Join(dir, base)
	if err := os.Rename(mf.Name(), final+".json"); err != nil {
		return ship.Ack{}, classify(fmt.Errorf("rename metadata: %w", err))
	}
	if err := syncDir(dir); err != nil {
		os.Remove(final + ".json")
		return ship.Ack{}, classify(err)
	}
	if err := os.Rename(data.Name(), final); err != nil {
		os.Remove(final + ".json")
		return ship.Ack{}, classify(fmt.Errorf("rename record: %w", err))
	}
	if err := syncDir(dir); err != nil {
		// Not known to be durable: take it back so that a retry
		// stores it again instead of being told it is a duplicate.
		os.Remove(final)
		os.Remove(final + ".json")
		return ship.Ack{}, classify(err)
	}
	committed = true
	rel := path.Join(meta.Host, "crash", base)
	hs.byDigest[meta.Digest] = rel
	s.linkToBoot(meta, crashedBoot, final)
	if meta.CrashID != "" {
		hs.addPart(meta.CrashID, meta.Part, meta.Parts, rel)
		s.assemble(meta.Host, meta.CrashID)
	}
	return ship.Ack{Digest: meta.Digest, Stored: true, Path: rel}, nil
}

// loadHost returns what the Server knows of host, creating its directories
// durably and indexing the records already stored there on first use.
// s.mu must be held.
func (s *Server) loadHost(host string) (*hostState, error) {
	hs := s.hosts[host]
	if hs == nil {
		hostDir := filepath.Join(s.Root, host)
		dir := filepath.Join(hostDir, "crash")
		hs = &hostState{}
		var err error
		if hs.byDigest, err = s.scan(hs, host, dir); err != nil {
			return nil, err
		}
		if s.hosts == nil {
			s.hosts = map[string]*hostState{}
		}
		s.hosts[host] = hs
	}
	if !hs.synced {
		if err := mkdirDurable(s.Root, host, "crash"); err != nil {
			return nil, err
		}
		hs.synced = true
	}
	return hs, nil
}

// scan indexes the records stored in dir by digest, and removes temporary
// files left by a crash long ago.
func (s *Server) scan(hs *hostState, host, dir string) (map[string]string, error) {
	byDigest := map[string]string{}
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return byDigest, nil
	}
	if err != nil {
		return nil, fmt.Errorf("index %s: %w", dir, err)
	}
	for _, e := range ents {
		name := e.Name()
		switch {
		case strings.HasPrefix(name, tempPrefix):
			if fi, err := e.Info(); err == nil && s.now().Sub(fi.ModTime()) > staleTemp {
				os.Remove(filepath.Join(dir, name))
			}
			continue
		case !e.Type().IsRegular() || strings.HasPrefix(name, ".") || strings.HasSuffix(name, ".json") || strings.HasSuffix(name, assembledSuffix):
			continue
		}
		d, m, err := storedDigest(filepath.Join(dir, name))
		if err != nil {
			s.logf("ship: index %s: %v", dir, err)
			continue
		}
		rel := path.Join(host, "crash", name)
		byDigest[d] = rel
		if m.CrashID != "" && ship.CheckRecordName(m.CrashID) == nil && m.Part >= 1 && m.Part <= m.Parts {
			hs.addPart(m.CrashID, m.Part, m.Parts, rel)
		}
	}
	return byDigest, nil
}

// storedDigest returns the digest of a stored record, from its metadata file
// or, failing that, by hashing it.
func storedDigest(p string) (string, ship.Metadata, error) {
	var m ship.Metadata
	if b, err := os.ReadFile(p + ".json"); err == nil {
		if json.Unmarshal(b, &m) == nil && ship.CheckDigest(m.Digest) == nil {
			return m.Digest, m, nil
		}
	}
	f, err := os.Open(p)
	if err != nil {
		return "", ship.Metadata{}, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", ship.Metadata{}, fmt.Errorf("hash %s: %w", p, err)
	}
	return fmt.Sprintf("%x", h.Sum(nil)), ship.Metadata{}, nil
}

// mkdirDurable creates root/elems... as needed and fsyncs each parent of a
// directory on the way, so the directories survive a crash.
func mkdirDurable(root string, elems ...string) error {
	if _, err := os.Stat(root); errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(root, 0o750); err != nil {
			return fmt.Errorf("create %s: %w", root, err)
		}
		if err := syncDir(filepath.Dir(root)); err != nil {
			return err
		}
	}
	dir := root
	for _, e := range elems {
		sub := filepath.Join(dir, e)
		if err := os.Mkdir(sub, 0o750); err != nil && !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("create %s: %w", sub, err)
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
		return fmt.Errorf("sync directory: %w", err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}
