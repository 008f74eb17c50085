// Command lastgasp-load is a load generator for the lastgasp collector, in
// the spirit of netconsd's netconsblaster: it simulates N hosts, each with
// its own UDP source port, sending extended netconsole
// (Documentation/networking/netconsole.rst) to one address at a chosen
// total rate. Every host first sends the agent's announcement line, then
// messages in sequence; every -frag-every'th message is longer than
// netconsole's 1000-byte payload and goes out in ncfrag fragments, and every
// -gap-every'th sequence number is skipped on purpose (a deliberate gap the
// collector must report). It prints what it sent:
//
//	sent: hosts=256 messages=200000 datagrams=208000 fragmented=4000 gaps=200 skipped=200 errors=0 seconds=2.00 rate=100000
//
// messages counts the announcement lines too: a collector that lost nothing
// stores exactly that many message lines and reports gaps covering exactly
// skipped sequence numbers.
//
//	lastgasp-load -addr 127.0.0.1:6666 -hosts 256 -rate 50000 -count 200000
package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		log.Fatalf("lastgasp-load: %v", err)
	}
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	cfg, err := parseFlags(args)
	if err != nil {
		return err
	}
	res, err := Run(ctx, cfg)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, res)
	return nil
}
