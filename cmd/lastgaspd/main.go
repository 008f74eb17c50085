// Command lastgaspd is the lastgasp collector: it receives netconsole (plain
// and extended) over UDP and stores it per host and per boot, and accepts
// crash-record uploads from the agent over HTTP, writing each durably before
// it acknowledges it.
//
//	lastgaspd -netconsole :6666 -http :6667 -store /var/lib/lastgasp
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"syscall"
	"time"

	"github.com/lastgasp/lastgasp/netconsole/receiver"
	shipserver "github.com/lastgasp/lastgasp/pstore/ship/server"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		log.Fatalf("lastgaspd: %v", err)
	}
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("lastgaspd", flag.ContinueOnError)
	ncAddr := fs.String("netconsole", ":6666", "UDP address for netconsole")
	httpAddr := fs.String("http", ":6667", "HTTP address for crash-record uploads and /metrics")
	store := fs.String("store", "/var/lib/lastgasp", "store directory: <host>/<boot>/kernel.log, <host>/crash/")
	maxRecord := fs.Int64("max-record-size", 16<<20, "largest crash record accepted, bytes")
	sockets := fs.Int("sockets", runtime.GOMAXPROCS(0), "netconsole UDP sockets sharing the port with SO_REUSEPORT, one reader each")
	rcvbuf := fs.Int("rcvbuf", 8<<20, "receive buffer per netconsole socket, bytes (SO_RCVBUFFORCE as root, else capped by net.core.rmem_max)")
	maxMemory := fs.Int64("max-memory", 64<<20, "bound on bytes held for all senders (fragments, reorder windows, unannounced lines); over it, drop and count")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := os.MkdirAll(*store, 0o755); err != nil {
		return err
	}
	logger := log.New(os.Stderr, "lastgaspd: ", log.LstdFlags|log.Lmicroseconds)

	conns, err := receiver.ListenUDP(*ncAddr, *sockets, *rcvbuf)
	if err != nil {
		return fmt.Errorf("netconsole listener: %w", err)
	}
	pcs := make([]net.PacketConn, len(conns))
	for i, c := range conns {
		pcs[i] = c
	}
	rx := &receiver.Server{Store: &receiver.Store{Root: *store}, Logf: logger.Printf, MaxMemory: *maxMemory}
	up := &shipserver.Server{Root: *store, MaxRecordSize: *maxRecord, Logf: logger.Printf}

	mux := http.NewServeMux()
	mux.Handle("/v1/", up)
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, _ *http.Request) {
		writeMetrics(w, rx.Stats(), up.Stats())
	})
	hl, err := net.Listen("tcp", *httpAddr)
	if err != nil {
		return fmt.Errorf("http listener: %w", err)
	}
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	logger.Printf("netconsole on udp %s (%d sockets), uploads on http %s, store %s", conns[0].LocalAddr(), len(conns), hl.Addr(), absPath(*store))

	errc := make(chan error, 2)
	go func() { errc <- rx.ServeConns(ctx, pcs...) }()
	go func() {
		if err := hs.Serve(hl); !errors.Is(err, http.ErrServerClosed) {
			errc <- err
		}
	}()
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	hs.Shutdown(sctx)
	return err
}

func absPath(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}
