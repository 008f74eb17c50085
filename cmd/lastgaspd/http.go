package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/lastgasp/lastgasp/netconsole/wire"
	shipserver "github.com/lastgasp/lastgasp/pstore/ship/server"
	"github.com/lastgasp/lastgasp/store"
)

// Defaults of the -http-* flags.
const (
	defaultMaxConns      = 1024
	defaultMaxConnsPerIP = 64
	defaultHeaderTimeout = 10 * time.Second
	defaultIdleTimeout   = 60 * time.Second
	defaultWriteTimeout  = 30 * time.Second
)

// How HTTP connections share the process's descriptors (RLIMIT_NOFILE):
// the store's log file cache, the UDP sockets and fdReserve come first; the
// rest, divided by fdsPerConn, bounds the connections.
const (
	// fdReserve covers the listener, the connection accepted over the cap
	// while room is made for it, the receiver's state file, directory
	// scans, the forwarder's and journal's connections and the config.
	fdReserve = 64
	// fdsPerConn is what one connection may hold at once: itself, a
	// record's temporary file, and a part being read while a crash is
	// assembled.
	fdsPerConn = 3
	// minConns is the fewest connections lastgaspd starts with.
	minConns = 8
)

// When a connection is accepted at the cap, another is closed to make
// room: the longest idle, else the oldest still sending its
// request headers (or TLS handshake) for shedRequestAge, else the oldest
// upload still sending its body for shedBodyAge. A request whose body has
// arrived is never closed.
const (
	shedRequestAge = time.Second
	shedBodyAge    = 5 * time.Second
	shedNoteEvery  = 10 * time.Second
)

// httpConfig is the HTTP server's part of the configuration.
type httpConfig struct {
	maxConns      int
	maxConnsPerIP int
	headerTimeout time.Duration
	bodyTimeout   time.Duration
	minRate       int64
	idleTimeout   time.Duration
	writeTimeout  time.Duration
}

// addHTTPFlags defines the -http-* flags.
func addHTTPFlags(fs *flag.FlagSet, h *httpConfig) {
	fs.IntVar(&h.maxConns, "http-max-conns", defaultMaxConns, "HTTP connections at most (also bounded by RLIMIT_NOFILE: (limit - log file cache - sockets - 64) / 3); at the cap, idle and slow connections are closed to admit new ones")
	fs.IntVar(&h.maxConnsPerIP, "http-max-conns-per-ip", defaultMaxConnsPerIP, "HTTP connections from one client address at most (and at most a quarter of the cap); more are closed at once")
	fs.DurationVar(&h.headerTimeout, "http-header-timeout", defaultHeaderTimeout, "time a client has for its TLS handshake and request headers")
	fs.DurationVar(&h.bodyTimeout, "http-body-timeout", shipserver.DefaultBodyTimeout, "time an upload's body may pause in all; beyond it the body must average -http-min-rate (else 408)")
	fs.Int64Var(&h.minRate, "http-min-rate", shipserver.DefaultMinRate, "slowest average rate of an upload's body past -http-body-timeout, bytes per second")
	fs.DurationVar(&h.idleTimeout, "http-idle-timeout", defaultIdleTimeout, "idle keep-alive connections are closed after this long")
	fs.DurationVar(&h.writeTimeout, "http-write-timeout", defaultWriteTimeout, "time to write an answer (/metrics, /crashes; for uploads from when the record is stored)")
}

func (h httpConfig) check() error {
	if h.maxConns < 1 || h.maxConnsPerIP < 1 || h.headerTimeout <= 0 || h.bodyTimeout <= 0 || h.minRate < 1 || h.idleTimeout <= 0 || h.writeTimeout <= 0 {
		return errors.New("-http-max-conns, -http-max-conns-per-ip, -http-min-rate and the -http-*-timeout flags must be positive")
	}
	return nil
}

// fdPlan is how lastgaspd divides its descriptors.
type fdPlan struct {
	limit      int // RLIMIT_NOFILE
	conns      int // HTTP connections at most
	storeFiles int // log files the store keeps open at most
}

// planFDs divides nofile descriptors: the store's log file cache (lowered
// to a quarter of the limit if larger), the UDP sockets and fdReserve
// first, then HTTP connections, fdsPerConn each, at most maxConns.
func planFDs(nofile uint64, maxConns, storeFiles, sockets int) (fdPlan, error) {
	limit := int(min(nofile, 1<<30))
	p := fdPlan{limit: limit, storeFiles: min(storeFiles, limit/4)}
	p.conns = min(maxConns, (limit-p.storeFiles-sockets-fdReserve)/fdsPerConn)
	if p.conns < minConns {
		return p, fmt.Errorf("RLIMIT_NOFILE %d leaves room for %d HTTP connections (the store keeps %d, %d sockets, %d reserved), want at least %d: raise it (LimitNOFILE= in the unit)",
			limit, max(p.conns, 0), p.storeFiles, sockets, fdReserve, minConns)
	}
	return p, nil
}

// nofile returns the process's RLIMIT_NOFILE (Go raises the soft limit to
// the hard one at start).
func nofile() (uint64, error) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0, fmt.Errorf("getrlimit: %w", err)
	}
	return rl.Cur, nil
}

// uploadServer returns the crash-record upload server of configuration c,
// storing into recs and linking records into the boots st's boot index
// knows, when announced from the uploading address (Store.PrevBootFrom).
func uploadServer(c config, recs *store.Records, st *store.Store, logger *log.Logger) *shipserver.Server {
	return &shipserver.Server{Records: recs, Root: c.store, MaxRecordSize: c.maxRecord, Logf: logger.Printf, RequireClientIdentity: c.clientCA != "",
		PrevBoot: st.PrevBootFrom, BootFrom: st.BootFrom, BodyTimeout: c.web.bodyTimeout, MinRate: c.web.minRate, AckTimeout: c.web.writeTimeout}
}

// webServer is lastgaspd's HTTP side: uploads, /metrics, /crashes.
type webServer struct {
	hs   *http.Server
	ln   net.Listener
	lim  *connLimit
	plan fdPlan
	desc string // for the start line
}

// listenHTTP listens on c.http (TLS as c asks) with the connection cap
// that the descriptor plan allows, and lowers st's log file cache to the
// plan's if needed. st must not be in use yet.
func listenHTTP(c config, handler http.Handler, st *store.Store, sockets int, logger *log.Logger) (*webServer, error) {
	htc, err := httpTLS(c)
	if err != nil {
		return nil, err
	}
	lim, err := nofile()
	if err != nil {
		return nil, err
	}
	plan, err := planFDs(lim, c.web.maxConns, cmpOr(st.MaxOpenFiles, store.DefaultMaxOpenFiles), sockets)
	if err != nil {
		return nil, err
	}
	st.MaxOpenFiles = plan.storeFiles
	tl, err := net.Listen("tcp", c.http)
	if err != nil {
		return nil, fmt.Errorf("http listener: %w", err)
	}
	// No address may hold more than a quarter of the connections.
	l := newConnLimit(tl, plan.conns, min(c.web.maxConnsPerIP, max(plan.conns/4, 1)), logger.Printf)
	w := &webServer{lim: l, plan: plan, ln: l}
	w.desc = "http %s (plain HTTP: INSECURE, unauthenticated; for labs and QEMU only)"
	if htc != nil {
		w.ln = tls.NewListener(l, htc)
		w.desc = "https %s (no client certificates: any client may upload for any host)"
		if c.clientCA != "" {
			w.desc = "https %s (client certificate required; each writes only its own host's records)"
		}
	}
	w.desc = fmt.Sprintf(w.desc+", at most %d connections (RLIMIT_NOFILE %d), %d per address", tl.Addr(), plan.conns, plan.limit, l.perIP)
	w.hs = &http.Server{
		Handler:           l.track(handler),
		ReadHeaderTimeout: c.web.headerTimeout,
		IdleTimeout:       c.web.idleTimeout,
		WriteTimeout:      c.web.writeTimeout,
		MaxHeaderBytes:    64 << 10, // uploads send a few short headers
		ConnState:         l.connState,
		ConnContext:       l.connContext,
		ErrorLog:          log.New(sanitizedWriter{logger.Writer()}, logger.Prefix(), logger.Flags()),
	}
	return w, nil
}

// serve serves until Shutdown; it returns http.ErrServerClosed then.
func (w *webServer) serve() error { return w.hs.Serve(w.ln) }

// Shutdown stops accepting, closes idle connections and waits for the
// others until ctx is done.
func (w *webServer) Shutdown(ctx context.Context) error { return w.hs.Shutdown(ctx) }

func cmpOr(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

// sanitizedWriter escapes control and format characters in each line
// written to it (net/http's error log may quote what clients sent).
type sanitizedWriter struct{ w io.Writer }

func (s sanitizedWriter) Write(p []byte) (int, error) {
	line := string(p)
	nl := len(line) > 0 && line[len(line)-1] == '\n'
	if nl {
		line = line[:len(line)-1]
	}
	line = wire.Sanitize(line)
	if nl {
		line += "\n"
	}
	if _, err := io.WriteString(s.w, line); err != nil {
		return 0, err
	}
	return len(p), nil
}

// phase is where a connection is in its request.
type phase int

// net/http reports a connection active only once a request's headers are
// read: until then it is new (TLS handshake, first request's headers) or
// idle (between requests, or the headers of the next).
const (
	phaseNew  phase = iota // accepted, first request's headers not read yet
	phaseBody              // in a handler, reading the body
	phaseWork              // in a handler, body read: storing and answering
	phaseIdle              // keep-alive, between requests
)

var phaseNames = [...]string{"new", "body", "work", "idle"}

// connLimit is a listener that holds at most max connections at once, and
// one more while it makes room for it: at the cap, accepting a connection
// closes another (see shedRequestAge), so that neither slow nor idle
// clients can keep a new one out for long. Connections beyond wait in the
// kernel's listen queue, which costs no descriptor.
type connLimit struct {
	net.Listener
	max   int
	perIP int // connections from one address at most; more are closed at once (0: no limit)
	logf  func(format string, args ...any)

	mu       sync.Mutex
	conns    map[*limitedConn]struct{}
	byIP     map[netip.Addr]int
	refused  uint64 // closed at once: their address had perIP
	shed     [len(phaseNames)]uint64
	noted    time.Time // last shed note
	notedAt  [len(phaseNames)]uint64
	slot     chan struct{} // a connection closed
	closed   chan struct{}
	closeErr sync.Once
}

func newConnLimit(l net.Listener, max, perIP int, logf func(string, ...any)) *connLimit {
	return &connLimit{Listener: l, max: max, perIP: perIP, logf: logf, conns: map[*limitedConn]struct{}{}, byIP: map[netip.Addr]int{},
		slot: make(chan struct{}, 1), closed: make(chan struct{})}
}

// limitedConn is a connection counted by a connLimit.
type limitedConn struct {
	net.Conn
	l     *connLimit
	once  sync.Once
	phase phase     // guarded by l.mu, as are since and shed
	since time.Time // when it entered phase
	shed  bool      // closed to make room; its server goroutine is ending
	ip    netip.Addr
}

// remoteIP returns the address c comes from.
func remoteIP(c net.Conn) netip.Addr {
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return a.AddrPort().Addr().Unmap()
	}
	return netip.Addr{}
}

// Close closes the connection and frees its slot.
func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.l.mu.Lock()
		delete(c.l.conns, c)
		if c.l.byIP[c.ip]--; c.l.byIP[c.ip] <= 0 {
			delete(c.l.byIP, c.ip)
		}
		c.l.mu.Unlock()
		select {
		case c.l.slot <- struct{}{}:
		default:
		}
	})
	return err
}

// Accept accepts the next connection. At the cap it still accepts one
// more and closes another to make room for it (shedOne); while over the
// cap it waits for a connection to close, shedding again as connections
// age into being sheddable.
func (l *connLimit) Accept() (net.Conn, error) {
	for {
		l.mu.Lock()
		n := len(l.conns)
		l.mu.Unlock()
		if n <= l.max {
			break
		}
		select {
		case <-l.slot:
		case <-time.After(100 * time.Millisecond):
			l.shedOne()
		case <-l.closed:
			return nil, net.ErrClosed
		}
	}
	var lc *limitedConn
	for lc == nil {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		lc = &limitedConn{Conn: c, l: l, since: time.Now(), ip: remoteIP(c)}
		l.mu.Lock()
		if l.perIP > 0 && l.byIP[lc.ip] >= l.perIP {
			l.refused++
			l.mu.Unlock()
			c.Close() // this address holds its share already
			lc = nil
			continue
		}
		l.conns[lc] = struct{}{}
		l.byIP[lc.ip]++
		l.mu.Unlock()
	}
	l.mu.Lock()
	over := len(l.conns) > l.max
	l.mu.Unlock()
	if over {
		l.shedOne()
	}
	return lc, nil
}

// Close closes the listener.
func (l *connLimit) Close() error {
	l.closeErr.Do(func() { close(l.closed) })
	return l.Listener.Close()
}

// shedOne closes the connection that most deserves it, if any may be.
func (l *connLimit) shedOne() {
	now := time.Now()
	l.mu.Lock()
	var victim *limitedConn
	rank := func(c *limitedConn) int { // lower sheds first; -1 never
		switch age := now.Sub(c.since); {
		case c.phase == phaseIdle:
			return 0
		case c.phase == phaseNew && age >= shedRequestAge:
			return 1
		case c.phase == phaseBody && age >= shedBodyAge:
			return 2
		}
		return -1
	}
	best := -1
	for c := range l.conns {
		r := rank(c)
		if r < 0 || c.shed {
			continue
		}
		if victim == nil || r < best || r == best && c.since.Before(victim.since) {
			victim, best = c, r
		}
	}
	var note string
	if victim != nil {
		victim.shed = true
		l.shed[victim.phase]++
		if now.Sub(l.noted) >= shedNoteEvery {
			var d [len(phaseNames)]uint64
			for i := range d {
				d[i] = l.shed[i] - l.notedAt[i]
			}
			note = fmt.Sprintf("http: at the cap of %d connections: closed %d idle, %d slow in their request, %d slow in their body to admit new ones (%d in all)",
				l.max, d[phaseIdle], d[phaseNew], d[phaseBody], l.shed[phaseIdle]+l.shed[phaseNew]+l.shed[phaseBody])
			l.noted, l.notedAt = now, l.shed
		}
	}
	l.mu.Unlock()
	if victim != nil {
		victim.Conn.Close() // the server's goroutine sees the error and calls Close
	}
	if note != "" && l.logf != nil {
		l.logf("%s", note)
	}
}

// limitStats counts what a connLimit did.
type limitStats struct {
	Open    int
	Max     int
	Shed    map[string]uint64 // by the phase they were in
	Refused uint64            // over -http-max-conns-per-ip
}

func (l *connLimit) stats() limitStats {
	l.mu.Lock()
	defer l.mu.Unlock()
	st := limitStats{Open: len(l.conns), Max: l.max, Shed: map[string]uint64{}, Refused: l.refused}
	for i, n := range l.shed {
		if n > 0 {
			st.Shed[phaseNames[i]] = n
		}
	}
	return st
}

// connOf returns the limitedConn under c, a connection net/http serves.
func connOf(c net.Conn) *limitedConn {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	lc, _ := c.(*limitedConn)
	return lc
}

func (l *connLimit) setPhase(c *limitedConn, p phase) {
	if c == nil {
		return
	}
	l.mu.Lock()
	c.phase, c.since = p, time.Now()
	l.mu.Unlock()
}

// connState follows net/http's view of each connection.
func (l *connLimit) connState(c net.Conn, s http.ConnState) {
	switch s {
	case http.StateActive:
		l.setPhase(connOf(c), phaseWork) // until track says more
	case http.StateIdle:
		l.setPhase(connOf(c), phaseIdle)
	}
}

type connKey struct{}

// connContext puts the connection in its requests' contexts for track.
func (l *connLimit) connContext(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, connKey{}, connOf(c))
}

// track notes when a request enters its handler and when its body has
// been read.
func (l *connLimit) track(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := r.Context().Value(connKey{}).(*limitedConn)
		if c != nil && r.ContentLength != 0 {
			l.setPhase(c, phaseBody)
			r.Body = &trackedBody{ReadCloser: r.Body, done: func() { l.setPhase(c, phaseWork) }}
		} else {
			l.setPhase(c, phaseWork)
		}
		h.ServeHTTP(w, r)
	})
}

// trackedBody calls done once reading the body ends.
type trackedBody struct {
	io.ReadCloser
	done func()
	once sync.Once
}

func (b *trackedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil {
		b.once.Do(b.done)
	}
	return n, err
}

// httpTLS returns the TLS configuration of the HTTP listener (-tls-cert,
// -tls-key, -client-ca), or nil for plain HTTP.
func httpTLS(c config) (*tls.Config, error) {
	if c.tlsCert == "" && c.tlsKey == "" {
		if c.clientCA != "" {
			return nil, errors.New("-client-ca needs -tls-cert and -tls-key")
		}
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(c.tlsCert, c.tlsKey)
	if err != nil {
		return nil, fmt.Errorf("-tls-cert/-tls-key: %w", err)
	}
	tc := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if c.clientCA != "" {
		pem, err := os.ReadFile(c.clientCA)
		if err != nil {
			return nil, fmt.Errorf("client-ca: %w", err)
		}
		tc.ClientCAs = x509.NewCertPool()
		if !tc.ClientCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("client-ca %s: no PEM certificates", c.clientCA)
		}
		tc.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return tc, nil
}
