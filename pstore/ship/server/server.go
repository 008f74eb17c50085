package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"sync"
	"syscall"
	"time"

	"github.com/lastgasp/lastgasp/pstore/records"
	"github.com/lastgasp/lastgasp/pstore/ship"
	"github.com/lastgasp/lastgasp/store"
)

// DefaultMaxRecordSize is the largest record a Server accepts when its
// MaxRecordSize is zero.
const DefaultMaxRecordSize = 16 << 20

// File is the part of *os.File a Server writes a temporary file through.
type File = store.File

// Server is the collector's end of the protocol: an http.Handler that
// verifies uploaded records, has Records store them durably and
// acknowledges them. See the package documentation for the protocol and
// store.Records for the storage layout.
//
// A Server must not be copied after first use. One Server should own a Root.
type Server struct {
	// Records stores the records. Nil means one on Root with the
	// defaults, and CreateTemp and Logf passed on.
	Records *store.Records
	// Root is the store root when Records is nil.
	Root string
	// MaxRecordSize is the largest record accepted; larger ones are
	// answered 413. Zero means DefaultMaxRecordSize.
	MaxRecordSize int64
	// Logf, if set, receives one line per request outcome.
	Logf func(format string, args ...any)
	// CreateTemp creates a temporary file in dir when Records is nil;
	// nil means os.CreateTemp. Tests replace it to simulate a full disk.
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

	once    sync.Once
	records *store.Records
	mu      sync.Mutex
	stats   Stats
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
	// Assembled counts multi-part crashes assembled into one text, and
	// Truncated those of them cut to the store's MaxAssembled.
	Assembled, Truncated uint64
}

// Stats returns a snapshot of the Server's counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	st := s.stats
	st.Rejected = maps.Clone(s.stats.Rejected)
	s.mu.Unlock()
	if st.Rejected == nil {
		st.Rejected = map[string]uint64{}
	}
	rs := s.recs().Stats()
	st.Assembled, st.Truncated = rs.Assembled, rs.Truncated
	return st
}

// recs returns the Records the Server stores into.
func (s *Server) recs() *store.Records {
	s.once.Do(func() {
		s.records = s.Records
		if s.records == nil {
			s.records = &store.Records{Root: s.Root, CreateTemp: s.CreateTemp, Logf: s.Logf}
		}
	})
	return s.records
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

	meta.Received = s.now().UTC()
	var link string
	if s.PrevBoot != nil && meta.BootID != "" {
		link = s.PrevBoot(meta.Host, meta.BootID)
	}
	st, err := s.recs().Put(store.RecordMeta{Metadata: meta, Verified: s.RequireClientIdentity}, req.Body, link)
	if err != nil {
		return ship.Ack{}, meta, classify(err)
	}
	if st.Duplicate {
		// Read the (bounded) body so the connection can be reused.
		io.Copy(io.Discard, req.Body)
	}
	if st.Linked != "" {
		s.logf("ship: host %s boot %s: %s linked into %s/crash", meta.Host, meta.BootID, st.Path, st.Linked)
	}
	if st.Assembled != "" {
		what := "assembled into"
		if st.Truncated {
			what = "assembled, truncated to the newest text, into"
		}
		s.logf("ship: host %s: crash %s: %d parts %s %s", meta.Host, meta.CrashID, meta.Parts, what, st.Assembled)
	}
	return ship.Ack{Digest: digest, Stored: true, Duplicate: st.Duplicate, Path: st.Path}, meta, nil
}

// classify maps an error of Records.Put to a response.
func classify(err error) *reqError {
	var (
		be *store.BodyError
		qe *store.QuotaError
		se *store.SpaceError
	)
	switch {
	case errors.As(err, &qe):
		return &reqError{code: http.StatusInsufficientStorage, reason: "quota", err: err}
	case errors.As(err, &se):
		return &reqError{code: http.StatusInsufficientStorage, reason: "low-space", err: err}
	case errors.As(err, &be):
		return &reqError{code: http.StatusBadRequest, reason: "short-body", err: err}
	case errors.Is(err, store.ErrSizeMismatch):
		return &reqError{code: http.StatusBadRequest, reason: "short-body", err: err}
	case errors.Is(err, store.ErrDigestMismatch):
		return &reqError{code: http.StatusBadRequest, reason: "digest-mismatch", err: err}
	case errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT):
		return &reqError{code: http.StatusInsufficientStorage, reason: "disk-full", err: err}
	}
	return &reqError{code: http.StatusInternalServerError, reason: "internal", err: err}
}
