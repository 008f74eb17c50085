package server

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/netip"
	"os"
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

// Defaults for zero Server fields.
const (
	DefaultBodyTimeout = 10 * time.Second
	DefaultMinRate     = 4 << 10 // bytes per second
	DefaultAckTimeout  = 30 * time.Second
)

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
	// Store, if set, stores the records instead of Records (e.g. a
	// shared database, store/pgstore).
	Store store.RecordStore
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
	// known, and the address the netconsole announcement of that boot
	// came from (invalid if not known). A stored record is then also
	// hard-linked, with its metadata, into that directory's "crash"
	// subdirectory, but only if the upload comes from that same address:
	// announcements are unauthenticated UDP, and a sender elsewhere must
	// not steer where an upload is filed. <host>/crash stays the
	// canonical location either way. lastgaspd wires it to the store's
	// boot index.
	PrevBoot func(host, uploadingBoot string) (dir string, from netip.Addr)
	// BootFrom, if set, returns the directory of host's boot boot and the
	// address its announcement came from, like PrevBoot. It is used
	// instead of PrevBoot for an upload that names the boot its record
	// came from (ship.HeaderRecordBootID: lastgasp's ring records), with
	// the same address check. lastgaspd wires it to Store.BootFrom.
	BootFrom func(host, boot string) (dir string, from netip.Addr)
	// BodyTimeout and MinRate bound how slowly a body may arrive: by
	// BodyTimeout after the request's headers plus one second per
	// MinRate bytes read so far, the next byte must have arrived, else
	// the request is answered 408 and the connection closed. A client
	// may pause up to BodyTimeout in all, and must average at least
	// MinRate bytes per second beyond that. Zero means
	// DefaultBodyTimeout and DefaultMinRate; a negative BodyTimeout turns
	// the bound off. It needs an http.ResponseWriter that supports
	// http.ResponseController's SetReadDeadline, as net/http's does.
	BodyTimeout time.Duration
	MinRate     int64
	// AckTimeout bounds the writing of the answer once the record is
	// stored (the http.Server's WriteTimeout counts from the request's
	// headers, which a slow but acceptable body may outlast). Zero means
	// DefaultAckTimeout; negative leaves the write deadline alone.
	AckTimeout time.Duration
	// Stored, if set, is called with each record Records has stored
	// (duplicates included, st.Duplicate set) before it is acknowledged:
	// lastgaspd indexes its crash signature.
	Stored func(meta store.RecordMeta, st store.Stored)

	once    sync.Once
	records store.RecordStore
	mu      sync.Mutex
	stats   Stats
}

// Stats counts what a Server did.
type Stats struct {
	Uploads    uint64 // requests received
	Stored     uint64 // records stored
	Duplicates uint64 // uploads of records already stored
	// Rejected counts failed requests by reason: "method", "path",
	// "host", "digest", "forbidden", "name", "header", "length",
	// "too-large", "short-body", "slow-body" (slower than MinRate),
	// "digest-mismatch", "quota" (the host's crash records quota is
	// used up), "low-space" (the store's file system is at its free-space
	// floor), "disk-full" (ENOSPC, EDQUOT), "internal".
	Rejected map[string]uint64
	// Assembled counts multi-part crashes assembled into one text, and
	// Truncated those of them cut to the store's MaxAssembled.
	Assembled, Truncated uint64
	// Linked counts records hard-linked into the crashed boot's
	// directory; Unlinked those not linked because the boot was
	// announced from another address than the upload's, or from an
	// unknown one.
	Linked, Unlinked uint64
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
func (s *Server) recs() store.RecordStore {
	s.once.Do(func() {
		if s.Store != nil {
			s.records = s.Store
			return
		}
		s.records = s.Records
		if s.Records == nil {
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
	public bool // the client may see err even for a 5xx
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

	start := time.Now()
	rc := http.NewResponseController(w)
	ack, meta, rerr := s.handle(rc, start, req)
	if s.AckTimeout >= 0 {
		// The body may have taken longer than the server's WriteTimeout.
		rc.SetWriteDeadline(time.Now().Add(cmp.Or(s.AckTimeout, DefaultAckTimeout)))
	}
	if rerr != nil {
		s.mu.Lock()
		if s.stats.Rejected == nil {
			s.stats.Rejected = map[string]uint64{}
		}
		s.stats.Rejected[rerr.reason]++
		s.mu.Unlock()
		// The method and path are the client's: quoted, so that they
		// cannot forge a line or send escape sequences to the log.
		s.logf("ship: %q %q from %s: %d %s: %v", req.Method, req.URL.Path, req.RemoteAddr, rerr.code, rerr.reason, rerr.err)
		msg := rerr.err.Error()
		if rerr.code >= 500 && !rerr.public {
			msg = http.StatusText(rerr.code) // details are in the log, not for the client
		}
		switch rerr.code {
		case http.StatusRequestEntityTooLarge, http.StatusForbidden, http.StatusInsufficientStorage:
			w.Header().Set("Connection", "close") // do not read a huge or unwanted body
		case http.StatusRequestTimeout:
			w.Header().Set("Connection", "close") // the connection's read deadline has passed
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

// handle validates req and stores its record. rc controls req's
// connection; start is when its headers were read.
func (s *Server) handle(rc *http.ResponseController, start time.Time, req *http.Request) (ship.Ack, ship.Metadata, *reqError) {
	if req.Method != http.MethodPut {
		return ship.Ack{}, ship.Metadata{}, reject(http.StatusMethodNotAllowed, "method", "method %q not allowed", req.Method)
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
	if err := store.CheckBoot(meta.BootID); err != nil {
		// The store's own names (crash, boot-unknown) cannot be boots.
		return ship.Ack{}, meta, reject(http.StatusBadRequest, "header", "%s: %w", ship.HeaderBootID, err)
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
	meta.RecordBootID = req.Header.Get(ship.HeaderRecordBootID)
	if err := store.CheckBoot(meta.RecordBootID); err != nil {
		return ship.Ack{}, meta, reject(http.StatusBadRequest, "header", "%s: %w", ship.HeaderRecordBootID, err)
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
	link := s.crashedBoot(req, meta)
	body := io.Reader(req.Body)
	if s.BodyTimeout >= 0 {
		body = &rateReader{r: req.Body, rc: rc, start: start, size: meta.Size,
			grace: cmp.Or(s.BodyTimeout, DefaultBodyTimeout), rate: max(cmp.Or(s.MinRate, DefaultMinRate), 1)}
	}
	rm := store.RecordMeta{Metadata: meta, Verified: s.RequireClientIdentity}
	st, err := s.recs().Put(rm, body, link)
	if err != nil {
		return ship.Ack{}, meta, classify(err)
	}
	if s.Stored != nil {
		s.Stored(rm, st)
	}
	if st.Duplicate {
		// Read the (bounded) body so the connection can be reused.
		io.Copy(io.Discard, body)
	}
	if st.Linked != "" {
		s.mu.Lock()
		s.stats.Linked++
		s.mu.Unlock()
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

// crashedBoot returns the boot directory to link the record of meta into:
// the boot before the uploading one, if it was announced from the address
// the upload comes from.
func (s *Server) crashedBoot(req *http.Request, meta ship.Metadata) string {
	var dir string
	var from netip.Addr
	switch {
	case meta.RecordBootID != "" && s.BootFrom != nil:
		dir, from = s.BootFrom(meta.Host, meta.RecordBootID)
	case s.PrevBoot == nil || meta.BootID == "":
		return ""
	default:
		dir, from = s.PrevBoot(meta.Host, meta.BootID)
	}
	if dir == "" {
		return ""
	}
	client, err := netip.ParseAddrPort(req.RemoteAddr)
	if err == nil && from.IsValid() && from.Unmap() == client.Addr().Unmap() {
		return dir
	}
	s.mu.Lock()
	s.stats.Unlinked++
	s.mu.Unlock()
	announcer := "an unknown address"
	if from.IsValid() {
		announcer = from.Unmap().String()
	}
	s.logf("ship: host %s boot %s: not linked into %s/crash: that boot was announced from %s, the upload comes from %s",
		meta.Host, meta.BootID, dir, announcer, req.RemoteAddr)
	return ""
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
		return &reqError{code: http.StatusInsufficientStorage, reason: "quota", err: err, public: true}
	case errors.As(err, &se):
		return &reqError{code: http.StatusInsufficientStorage, reason: "low-space", err: err, public: true}
	case errors.As(err, &be) && errors.Is(err, os.ErrDeadlineExceeded):
		return &reqError{code: http.StatusRequestTimeout, reason: "slow-body", err: err}
	case errors.As(err, &be):
		return &reqError{code: http.StatusBadRequest, reason: "short-body", err: err}
	case errors.Is(err, store.ErrSizeMismatch):
		return &reqError{code: http.StatusBadRequest, reason: "short-body", err: err}
	case errors.Is(err, store.ErrDigestMismatch):
		return &reqError{code: http.StatusBadRequest, reason: "digest-mismatch", err: err}
	case errors.Is(err, store.ErrUnavailable):
		// The agent keeps the record and retries (5xx), here or at the
		// next collector.
		return &reqError{code: http.StatusServiceUnavailable, reason: "store-unavailable", err: err}
	case errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT):
		return &reqError{code: http.StatusInsufficientStorage, reason: "disk-full", err: err}
	}
	return &reqError{code: http.StatusInternalServerError, reason: "internal", err: err}
}

// rateReader reads a request body under a read deadline that moves with
// what arrived: start + grace + n/rate for n bytes read. Once the body is
// read, it lifts the deadline, so that storing the record is not cut
// short; after a timeout it leaves it, so that net/http does not wait for
// the rest of the body either.
type rateReader struct {
	r     io.Reader
	rc    *http.ResponseController
	start time.Time
	grace time.Duration
	rate  int64
	size  int64
	n     int64
}

func (b *rateReader) Read(p []byte) (int, error) {
	if b.rc != nil && b.n < b.size {
		d := b.start.Add(b.grace + time.Duration(float64(b.n)/float64(b.rate)*float64(time.Second)))
		if err := b.rc.SetReadDeadline(d); err != nil {
			b.rc = nil // not supported (e.g. httptest.ResponseRecorder)
		}
	}
	n, err := b.r.Read(p)
	b.n += int64(n)
	if b.rc != nil && b.n >= b.size {
		b.rc.SetReadDeadline(time.Time{})
		b.rc = nil
	}
	return n, err
}
