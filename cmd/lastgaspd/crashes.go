package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/lastgasp/lastgasp/store"
)

// recordsConfig is the crash records' part of the configuration.
type recordsConfig struct {
	maxAssembled int64
	hostQuota    int64
	minFree      int64
}

// addRecordFlags defines the flags of the crash records' store.
func addRecordFlags(fs *flag.FlagSet, r *recordsConfig) {
	fs.Int64Var(&r.maxAssembled, "max-assembled", store.DefaultMaxAssembled, "largest assembled text of a multi-part crash (<crash>.dmesg.txt), bytes; the oldest text beyond it is left out, with a note")
	fs.Int64Var(&r.hostQuota, "crash-quota", store.DefaultHostQuota, "bytes of crash records stored per host at most; uploads past it are answered 507 (0: no quota)")
	fs.Int64Var(&r.minFree, "min-free", store.DefaultMinFree, "bytes left free on the store's file system: uploads that would go below are answered 507 (0: no floor)")
}

func (r recordsConfig) check() error {
	if r.maxAssembled < 1 || r.hostQuota < 0 || r.minFree < 0 {
		return fmt.Errorf("-max-assembled must be positive, -crash-quota and -min-free not negative")
	}
	return nil
}

// newRecords returns the store's crash records of configuration c, every
// host indexed and the temporary files of uploads a killed collector left
// removed.
func newRecords(c config, logger *log.Logger) (*store.Records, error) {
	recs := &store.Records{Root: c.store, MaxAssembled: c.records.maxAssembled, HostQuota: orNone(c.records.hostQuota),
		MinFree: orNone(c.records.minFree), Logf: logger.Printf}
	n, err := recs.CleanTemps()
	if n > 0 {
		logger.Printf("removed %d temporary files of uploads interrupted before the last start", n)
	}
	if err != nil {
		logger.Printf("%v", err)
	}
	if err := recs.Load(); err != nil {
		return nil, err
	}
	return recs, nil
}

// crashesHandler serves /crashes from idx.
func crashesHandler(idx *store.CrashIndex) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		cs, err := idx.List()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		writeCrashes(w, cs)
	})
}

// writeCrashes writes the listing as aligned text, one line per host and
// source: host, where it came from, time, panic line, file. A host's crash
// record (uploaded) and its netconsole lines (unauthenticated UDP) are
// shown apart, so that a forged netconsole line never replaces the
// record's.
func writeCrashes(w io.Writer, cs []store.HostCrashes) error {
	if len(cs) == 0 {
		_, err := fmt.Fprintln(w, "no crashes")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "HOST\tFROM\tWHEN\tPANIC\tSOURCE")
	row := func(host, from string, c *store.Crash) {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", host, from, c.Time.UTC().Format(time.RFC3339), tabless(c.Line), tabless(c.Source))
	}
	for _, c := range cs {
		if c.Record != nil {
			from := "record"
			if c.Verified {
				from = "record (verified)"
			}
			row(c.Host, from, c.Record)
		}
		if c.Netconsole != nil {
			row(c.Host, "netconsole (unverified)", c.Netconsole)
		}
	}
	return tw.Flush()
}

func tabless(s string) string { return strings.ReplaceAll(s, "\t", " ") }

// runCrashes is the "crashes" subcommand.
func runCrashes(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("lastgaspd crashes", flag.ContinueOnError)
	root := fs.String("store", "/var/lib/lastgasp", "store directory")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cs, err := (&store.CrashIndex{Root: *root}).List()
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := writeCrashes(&buf, cs); err != nil {
		return err
	}
	_, err = stdout.Write(buf.Bytes())
	return err
}
