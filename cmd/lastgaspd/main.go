// Command lastgaspd is the lastgasp collector: it receives netconsole (plain
// and extended) over UDP and stores it per host and per boot, accepts
// crash-record uploads from the agent over HTTP or HTTPS, writing each
// durably before it acknowledges it, optionally forwards every message to a
// syslog server (RFC 5424 over TCP or TLS) and lists the last panic of each
// host.
//
//	lastgaspd -netconsole :6666 -http :6667 -store /var/lib/lastgasp
//	lastgaspd -tls-cert collector.pem -tls-key collector.key -client-ca agents-ca.pem ...
//	lastgaspd -config /etc/lastgasp/lastgaspd.conf
//	lastgaspd crashes -store /var/lib/lastgasp
//
// Durability differs by path: crash records are fsynced before the agent is
// told they are stored; netconsole logs are best effort, like the UDP they
// arrive on: lines are buffered per file and written every flush interval
// (100 ms) and on shutdown, never fsynced, so a collector crash loses up to
// one interval of lines.
//
// Logs are rotated by size (-rotate-size, -rotate-keep); a crash record is
// also hard-linked into the directory of the boot that crashed (the host's
// boot announced before the uploading one); boot directories and crash
// records older than -retention (14 days) are removed at start and hourly.
//
// A config file (-config) holds "key = value" lines whose keys are the flag
// names; flags given on the command line win over it.
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
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"syscall"
	"time"

	"github.com/lastgasp/lastgasp/netconsole/forward"
	"github.com/lastgasp/lastgasp/netconsole/journal"
	"github.com/lastgasp/lastgasp/netconsole/receiver"
	"github.com/lastgasp/lastgasp/netconsole/retention"
	"github.com/lastgasp/lastgasp/store"
	"github.com/lastgasp/lastgasp/store/pgstore"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		log.Fatalf("lastgaspd: %v", err)
	}
}

// config is the collector's configuration, from flags and a config file.
type config struct {
	netconsole, http, store string
	crashStore              string
	maxRecord               int64
	web                     httpConfig
	records                 recordsConfig
	view                    viewConfig
	sockets, rcvbuf         int
	maxMemory               int64
	forward                 string
	forwardCA               string
	forwardCert             string
	forwardKey              string
	forwardQueue            int
	journal                 string
	journalQueue            int
	tlsCert, tlsKey         string
	clientCA                string
	rotateSize              int64
	rotateKeep              int
	retention               time.Duration
	rx                      rxFlags
}

// rxFlags are the netconsole receiver's fleet-scale settings.
type rxFlags struct {
	maxHosts, maxActive int
	hostTTL, writeDelay time.Duration
	rateLimit           float64
	rateBurst           int
	pins                []receiver.Pin
	state               string
	pprof               string
	maxNames            int
}

// pinFlag collects -pin flags.
type pinFlag struct{ pins *[]receiver.Pin }

func (f pinFlag) String() string { return "" }
func (f pinFlag) Set(v string) error {
	p, err := receiver.ParsePin(v)
	if err == nil {
		*f.pins = append(*f.pins, p)
	}
	return err
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("lastgaspd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgFile := fs.String("config", "", "config file of key = value lines (keys are these flag names); command-line flags win")
	fs.StringVar(&c.netconsole, "netconsole", ":6666", "UDP address for netconsole (\":6666\" takes IPv4 and IPv6)")
	fs.StringVar(&c.http, "http", ":6667", "HTTP address for crash-record uploads, /metrics and /crashes")
	fs.StringVar(&c.store, "store", "/var/lib/lastgasp", "store directory: <host>/<boot>/kernel.log, <host>/crash/")
	fs.StringVar(&c.crashStore, "crash-store", "", "crash records and the signature index in a shared PostgreSQL database (postgres://user@host:port/db); default: the local file store under -store")
	fs.Int64Var(&c.maxRecord, "max-record-size", 16<<20, "largest crash record accepted, bytes")
	addHTTPFlags(fs, &c.web)
	addRecordFlags(fs, &c.records)
	addViewFlags(fs, &c.view)
	fs.IntVar(&c.sockets, "sockets", runtime.GOMAXPROCS(0), "netconsole UDP sockets sharing the port with SO_REUSEPORT, one reader each")
	fs.IntVar(&c.rcvbuf, "rcvbuf", 0, "receive buffer per netconsole socket, bytes (SO_RCVBUFFORCE as root, else capped by net.core.rmem_max); 0: 64 MiB over the sockets, at least 8 MiB each")
	fs.Int64Var(&c.maxMemory, "max-memory", 64<<20, "bound on bytes held for all senders (fragments, reorder windows, unannounced lines); over it, drop and count")
	fs.StringVar(&c.forward, "forward", "", "forward messages to syslog: tcp://host:port or tls://host:port (RFC 5424, octet counting)")
	fs.StringVar(&c.forwardCA, "forward-ca", "", "PEM CA certificates to verify the tls:// syslog server (default: system roots)")
	fs.StringVar(&c.forwardCert, "forward-cert", "", "PEM client certificate for tls:// forwarding")
	fs.StringVar(&c.forwardKey, "forward-key", "", "PEM client key for tls:// forwarding")
	fs.IntVar(&c.forwardQueue, "forward-queue", forward.DefaultQueueSize, "messages waiting to be forwarded; more are dropped and counted")
	fs.StringVar(&c.journal, "journal", "", "send messages to systemd-journal-remote: http://host:19532 (Journal Export Format, POST /upload)")
	fs.IntVar(&c.journalQueue, "journal-queue", journal.DefaultQueueSize, "messages waiting to be sent to the journal; more are dropped and counted")
	fs.StringVar(&c.tlsCert, "tls-cert", "", "PEM certificate (chain) of the collector: -http serves HTTPS (default: plain HTTP, for labs and QEMU only)")
	fs.StringVar(&c.tlsKey, "tls-key", "", "PEM private key for -tls-cert")
	fs.StringVar(&c.clientCA, "client-ca", "", "PEM CA certificates of the agents' client certificates: require and verify one on every HTTPS connection, and let it upload only for the host it names (CN or DNS name)")
	fs.Int64Var(&c.rotateSize, "rotate-size", store.DefaultRotateSize, "rotate a kernel.log that would grow past this many bytes to kernel.log.1 (0: never)")
	fs.IntVar(&c.rotateKeep, "rotate-keep", store.DefaultRotateKeep, "rotated logs kept per boot: kernel.log.1 ... kernel.log.N")
	fs.DurationVar(&c.retention, "retention", retention.DefaultMaxAge, "remove boot directories and crash records not written for this long, at start and hourly (0: keep everything)")
	fs.IntVar(&c.rx.maxHosts, "max-hosts", receiver.DefaultMaxHosts, "netconsole senders whose identity (host, boot, sequence, counters) is kept; about 300 bytes each")
	fs.IntVar(&c.rx.maxActive, "max-active", receiver.DefaultMaxActive, "netconsole senders holding reassembly and reorder state at once; the least recently heard is shed, its identity kept")
	fs.DurationVar(&c.rx.hostTTL, "host-ttl", receiver.DefaultHostTTL, "forget a netconsole sender's identity after this long without a message")
	fs.DurationVar(&c.rx.writeDelay, "write-delay", receiver.DefaultWriteDelay, "how long a host's lines may wait to be written together (one write per host per interval)")
	fs.Float64Var(&c.rx.rateLimit, "rate-limit", receiver.DefaultRateLimit, "messages per second a host may send on average; the excess is dropped and counted (negative: no limit)")
	fs.IntVar(&c.rx.rateBurst, "rate-burst", receiver.DefaultRateBurst, "messages a host may send at once above -rate-limit (a panic or a boot log)")
	fs.Var(pinFlag{&c.rx.pins}, "pin", "accept announcements of hosts matching a glob only from these networks: 'db-*=10.1.0.0/16,fd00::/64' (repeatable)")
	fs.StringVar(&c.rx.state, "state", "", "file the netconsole sender identities are saved to each minute and at exit, so a restart files the rest of a boot correctly (default <store>/"+store.StateDir+"/sources; \"none\": not saved)")
	fs.IntVar(&c.rx.maxNames, "max-names-per-sender", receiver.DefaultMaxNamesPerSender, "distinct host names one netconsole sender (address and port) may announce; more are refused and counted (at most 255)")
	fs.StringVar(&c.rx.pprof, "pprof", "", "serve Go's profiler (net/http/pprof) on this address, e.g. 127.0.0.1:6060; keep it on loopback")
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *cfgFile != "" {
		if err := applyConfig(fs, *cfgFile); err != nil {
			return config{}, err
		}
	}
	if c.rotateSize < 0 || c.rotateKeep < 0 || c.retention < 0 {
		return config{}, errors.New("-rotate-size, -rotate-keep and -retention must not be negative")
	}
	if err := errors.Join(c.web.check(), c.records.check()); err != nil {
		return config{}, err
	}
	return c, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "crashes" {
		return runCrashes(args[1:], stdout)
	}
	c, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	return serve(ctx, c, log.New(stderr, "lastgaspd: ", log.LstdFlags|log.Lmicroseconds))
}

// serve runs the collector until ctx is done.
func serve(ctx context.Context, c config, logger *log.Logger) error {
	if err := os.MkdirAll(c.store, 0o755); err != nil {
		return err
	}
	if c.rx.pprof != "" {
		go func() { logger.Printf("pprof: %v", http.ListenAndServe(c.rx.pprof, pprofMux())) }()
	}
	sinks, err := newSinkSet(c, logger)
	if err != nil {
		return err
	}
	db, err := openCrashStore(ctx, c, logger)
	if err != nil {
		return err
	}
	if db != nil {
		defer db.Close()
	}
	view, err := newCrashView(c, logger, db)
	if err != nil {
		return err
	}
	sinks.fanout = append(sinks.fanout, view.live) // live reports to the signature index

	conns, err := receiver.ListenUDP(c.netconsole, c.sockets, rcvbufFor(c.rcvbuf, c.sockets))
	if err != nil {
		return fmt.Errorf("netconsole listener: %w", err)
	}
	pcs := make([]net.PacketConn, len(conns))
	for i, conn := range conns {
		pcs[i] = conn
	}
	st := &store.Store{Root: c.store, RotateSize: orNone(c.rotateSize), RotateKeep: int(orNone(int64(c.rotateKeep)))}
	rx := &receiver.Server{Store: st, Logf: logger.Printf, MaxMemory: c.maxMemory, Forward: sinks.forwardHook(),
		MaxHosts: c.rx.maxHosts, MaxActive: c.rx.maxActive, HostTTL: c.rx.hostTTL, WriteDelay: c.rx.writeDelay,
		RateLimit: c.rx.rateLimit, RateBurst: c.rx.rateBurst, Pins: c.rx.pins, StateFile: c.rx.statePath(c.store),
		MaxNamesPerSender: c.rx.maxNames}
	go keepMemoryLimit(ctx, rx, c.maxMemory, c.rx.maxActive)
	recs, err := newRecords(c, logger)
	if err != nil {
		for _, conn := range conns {
			conn.Close()
		}
		return err
	}
	up := uploadServer(c, recs, st, logger)
	if db != nil {
		up.Store = &pgstore.Records{DB: db, HostQuota: orNone(c.records.hostQuota), Root: c.store, Collector: c.http,
			MaxAssembled: c.records.maxAssembled}
	}
	up.Stored = view.recordStored

	mux := http.NewServeMux()
	mux.Handle("/v1/", up)
	ms := metricSources{receiver: rx.Stats, uploads: up.Stats, store: st.Stats, rateLimitedHosts: rx.RateLimitedHosts}
	ms.extra = append(ms.extra, view.metrics())
	if sinks.fwd != nil {
		ms.forward = sinks.fwd.Stats
	}
	if sinks.journal != nil {
		ms.journal = sinks.journal.Stats
	}
	mux.Handle("/metrics", metricsHandler(ms, logger))
	mux.Handle("/crashes", view.scopedCrashes(&store.CrashIndex{Root: c.store, Records: recs}))
	mux.Handle("/ui/", view.web)
	web, err := listenHTTP(c, mux, st, len(conns), logger)
	if err != nil {
		for _, conn := range conns {
			conn.Close()
		}
		return err
	}
	logger.Printf("netconsole on udp %s (%d sockets), uploads on %s, store %s", conns[0].LocalAddr(), len(conns), web.desc, absPath(c.store))

	errc := make(chan error, 2)
	rxDone := make(chan struct{})
	go func() { errc <- rx.ServeConns(ctx, pcs...); close(rxDone) }()
	go func() {
		if err := web.serve(); !errors.Is(err, http.ErrServerClosed) {
			errc <- err
		}
	}()
	sweepCtx, sweepCancel := context.WithCancel(ctx)
	defer sweepCancel()
	sweepDone := make(chan struct{})
	if c.retention > 0 {
		sw := &retention.Sweeper{
			Root: c.store, MaxAge: c.retention, Logf: logger.Printf,
			Exclusive: st.Exclusive, Records: recs,
			Removed: view.forget, Swept: view.expire,
		}
		go func() { sw.Run(sweepCtx); close(sweepDone) }()
	} else {
		close(sweepDone)
	}
	stopSinks := sinks.start(logger)
	stopView := view.start(ctx, logger)
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	web.Shutdown(sctx)
	select {
	case <-rxDone:
	case <-sctx.Done():
	}
	sweepCancel()
	select {
	case <-sweepDone:
	case <-sctx.Done():
	}
	// Let the sinks send what the receiver's shutdown wrote out, briefly.
	stopSinks()
	stopView()
	return err
}

// Kernel memory for datagrams queued on the netconsole sockets, by default:
// rcvbufTotal over the sockets, at least rcvbufMin each.
const (
	rcvbufTotal = 64 << 20
	rcvbufMin   = 8 << 20
)

// rcvbufFor returns the receive buffer per socket: flag if set, else the
// default share. The buffer is what rides out the moments the readers are
// off the CPU: on a 2-core box shared with the load, 65,536 hosts kept
// 61-66% of their messages with 8 MiB a socket, 88-92% with 32 MiB (the
// rest dropped by the kernel, counted). The kernel charges
// each datagram's whole buffer (about 1-2 KiB for a short one) against it,
// and the memory is the kernel's, not the collector's resident set.
func rcvbufFor(flag, sockets int) int {
	if flag > 0 {
		return flag
	}
	return max(rcvbufMin, rcvbufTotal/max(sockets, 1))
}

// statePath returns the receiver's state file, "" for none.
func (r rxFlags) statePath(root string) string {
	switch r.state {
	case "none":
		return ""
	case "":
		return filepath.Join(root, store.StateDir, "sources")
	}
	return r.state
}

// forwardTLS returns the TLS configuration for a tls:// forward, or nil.
func forwardTLS(c config) (*tls.Config, error) {
	if c.forwardCA == "" && c.forwardCert == "" && c.forwardKey == "" {
		return nil, nil
	}
	tc := &tls.Config{}
	if c.forwardCA != "" {
		pem, err := os.ReadFile(c.forwardCA)
		if err != nil {
			return nil, fmt.Errorf("forward-ca: %w", err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("forward-ca %s: no PEM certificates", c.forwardCA)
		}
	}
	if c.forwardCert != "" || c.forwardKey != "" {
		cert, err := tls.LoadX509KeyPair(c.forwardCert, c.forwardKey)
		if err != nil {
			return nil, fmt.Errorf("forward client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

func absPath(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

// orNone maps a flag's 0 ("none") to the negative value that turns the
// corresponding store.Store setting off; zero there means its default.
func orNone(v int64) int64 {
	if v == 0 {
		return -1
	}
	return v
}
