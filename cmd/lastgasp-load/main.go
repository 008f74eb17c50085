// Command lastgasp-load is a load generator for the lastgasp collector, in
// the spirit of netconsd's netconsblaster: it simulates N hosts sending
// extended netconsole (Documentation/networking/netconsole.rst) to one
// address at a chosen total rate. Every host first sends the agent's
// announcement line (package netconsole/announce), then messages in
// sequence, each starting with the host's name; every -frag-every'th
// message is longer than netconsole's 1000-byte payload and goes out in
// ncfrag fragments, and every -gap-every'th sequence number is skipped on
// purpose (a deliberate gap the collector must report). After the load and
// a -trailer pause every host sends one last message (naming it too), so
// that a collector sees each loss as a gap. It prints what it sent:
//
//	sent: hosts=256 messages=200000 datagrams=208000 fragmented=4000 gaps=200 skipped=200 errors=0 seconds=2.00 rate=100000
//
// messages counts the announcement lines and trailers too: a collector
// that lost nothing stores exactly that many message lines and reports gaps
// covering exactly skipped sequence numbers. rate leaves out the trailers
// and the flood.
//
// With -sent FILE it also writes what each host sent, one line a host
// (first and last sequence number, the skipped ones, the fragmented
// messages; see WriteSent), so that a store can be compared with it:
// the messages after a host's last stored one were lost with no later
// message to show the gap.
//
// Hosts get distinct source addresses in one of two ways (-sources):
//
//   - sockets: one UDP socket per host on 127.0.0.1, so distinct
//     ephemeral ports; one descriptor per host.
//   - raw: host i's datagrams are built whole (IPv4 and UDP headers,
//     checksums) with source address -source-base + i (default
//     127.1.0.0 + i) and port 6665, netconsole's own, and sent on one raw
//     socket per sending goroutine (sendmmsg batches). Any number of
//     hosts up to the end of 127.0.0.0/8; the collector address must be
//     in 127.0.0.0/8 too. Needs CAP_NET_RAW.
//
// With -flood-host I, host I leaves the round robin and sends on its own
// as fast as it can (or at -flood-rate) while the others keep to -rate;
// the summary adds flood=N flood_rate=R.
//
//	lastgasp-load -addr 127.0.0.1:6666 -hosts 256 -rate 50000 -count 200000
//	lastgasp-load -addr 127.0.0.1:6666 -sources raw -hosts 65536 -rate 150000 -count 1500000
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
	cfg, sentFile, err := parseFlags(args)
	if err != nil {
		return err
	}
	cfg.Record = sentFile != ""
	res, err := Run(ctx, cfg)
	if err != nil {
		return err
	}
	if sentFile != "" {
		if err := writeSentFile(sentFile, res.Sent); err != nil {
			return err
		}
	}
	fmt.Fprintln(stdout, res)
	return nil
}

func writeSentFile(name string, sent []HostSent) error {
	f, err := os.Create(name)
	if err != nil {
		return fmt.Errorf("-sent: %w", err)
	}
	if err := WriteSent(f, sent); err != nil {
		f.Close()
		return fmt.Errorf("-sent %s: %w", name, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("-sent %s: %w", name, err)
	}
	return nil
}
