package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/lastgasp/lastgasp/pstore/records"
	"github.com/lastgasp/lastgasp/pstore/ship"
	"github.com/lastgasp/lastgasp/store"
)

// Bounds on what the crashes listing reads, so that it stays quick on a
// large store: the tail of each kernel.log (panics end a boot's log) and the
// head of each crash record.
const (
	maxLogTail    = 1 << 20
	maxRecordRead = 4 << 20
)

// Crash is the last panic seen for one host.
type Crash struct {
	// Host is the host's directory in the store.
	Host string
	// Time is when it happened: the record time of a crash record (else
	// when it was received), or when the kernel.log line arrived.
	Time time.Time
	// Line is the panic line.
	Line string
	// Source says where Line was found, relative to the host directory:
	// "crash/<record>", "<boot>/crash/<record>" for a record linked next
	// to the logs of the boot that produced it, or
	// "<boot>/kernel.log seq=<n>" (or kernel.log.1, just rotated).
	Source string
}

// listCrashes returns, for each host under root that has one, its latest
// panic line from crash records (<host>/crash/*.json and the record beside
// it) and netconsole logs (<host>/<boot>/kernel.log), sorted by host.
func listCrashes(root string) ([]Crash, error) {
	hosts, err := os.ReadDir(root)
	if err != nil {
		return nil, fmt.Errorf("crashes: %w", err)
	}
	var out []Crash
	for _, h := range hosts {
		if !h.IsDir() || strings.HasPrefix(h.Name(), ".") {
			continue
		}
		var best Crash
		consider := func(c Crash) {
			if c.Line != "" && (best.Line == "" || c.Time.After(best.Time)) {
				best = c
			}
		}
		hostDir := filepath.Join(root, h.Name())
		dirs, err := os.ReadDir(hostDir)
		if err != nil {
			continue
		}
		for _, d := range dirs {
			if !d.IsDir() {
				continue
			}
			if d.Name() == store.CrashDir {
				for _, c := range recordCrashes(filepath.Join(hostDir, store.CrashDir)) {
					if boot := linkedBoot(hostDir, dirs, c.Source); boot != "" {
						c.Source = boot + "/" + c.Source
					}
					consider(c)
				}
				continue
			}
			if c, ok := logCrash(filepath.Join(hostDir, d.Name(), store.LogName)); ok {
				c.Source = d.Name() + "/" + c.Source
				consider(c)
			}
		}
		if best.Line != "" {
			best.Host = h.Name()
			out = append(out, best)
		}
	}
	slices.SortFunc(out, func(a, b Crash) int { return strings.Compare(a.Host, b.Host) })
	return out, nil
}

// linkedBoot returns the boot directory among dirs of hostDir whose crash
// directory holds a hard link to the record at hostDir/rel, or "".
func linkedBoot(hostDir string, dirs []os.DirEntry, rel string) string {
	fi, err := os.Stat(filepath.Join(hostDir, rel))
	if err != nil {
		return ""
	}
	for _, d := range dirs {
		if !d.IsDir() || d.Name() == store.CrashDir {
			continue
		}
		if li, err := os.Stat(filepath.Join(hostDir, d.Name(), rel)); err == nil && os.SameFile(fi, li) {
			return d.Name()
		}
	}
	return ""
}

// recordCrashes returns the panic lines of the crash records in dir.
func recordCrashes(dir string) []Crash {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var out []Crash
	for _, e := range ents {
		name := e.Name()
		if !strings.HasSuffix(name, ".json") || strings.HasPrefix(name, ".") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			continue
		}
		var m ship.Metadata
		if json.Unmarshal(b, &m) != nil {
			continue
		}
		data, err := readHead(filepath.Join(dir, strings.TrimSuffix(name, ".json")), maxRecordRead)
		if err != nil {
			continue // orphaned metadata: not a stored record
		}
		t := m.RecordTime
		if t.IsZero() {
			t = m.Received
		}
		out = append(out, Crash{Time: t, Line: records.PanicLine(data), Source: "crash/" + strings.TrimSuffix(name, ".json")})
	}
	return out
}

func readHead(path string, n int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, n))
}

// logCrash returns the last panic line in the tail of the kernel.log at
// path or, if it has none (it was rotated just after the panic), of
// kernel.log.1.
func logCrash(path string) (Crash, bool) {
	if c, ok := logFileCrash(path); ok {
		return c, true
	}
	c, ok := logFileCrash(store.RotatedName(path, 1))
	return c, ok
}

// logFileCrash returns the last panic line in the tail of the log file at
// path.
func logFileCrash(path string) (Crash, bool) {
	f, err := os.Open(path)
	if err != nil {
		return Crash{}, false
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > maxLogTail {
		f.Seek(fi.Size()-maxLogTail, io.SeekStart)
	}
	var best Crash
	found := false
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		t, seq, text, ok := parseLogLine(sc.Text())
		if !ok {
			continue
		}
		if line := records.PanicLine([]byte(text)); line != "" {
			best, found = Crash{Time: t, Line: line, Source: filepath.Base(path)}, true
			if seq != "" {
				best.Source += " seq=" + seq
			}
		}
	}
	return best, found
}

// parseLogLine splits a kernel.log line as receiver writes it,
//
//	<RFC 3339 time> <level> seq=<seq> ts=<sec.usec> <text>
//	<RFC 3339 time> - - - <text>
//
// and reports false for other lines (lastgaspd's own notes).
func parseLogLine(line string) (t time.Time, seq, text string, ok bool) {
	stamp, rest, ok := strings.Cut(line, " ")
	if !ok {
		return time.Time{}, "", "", false
	}
	t, err := time.Parse(time.RFC3339Nano, stamp)
	if err != nil {
		return time.Time{}, "", "", false
	}
	if text, ok := strings.CutPrefix(rest, "- - - "); ok {
		return t, "", text, true
	}
	f := strings.SplitN(rest, " ", 4)
	if len(f) < 4 || len(f[0]) != 1 || f[0][0] < '0' || f[0][0] > '7' ||
		!strings.HasPrefix(f[1], "seq=") || !strings.HasPrefix(f[2], "ts=") {
		return time.Time{}, "", "", false
	}
	return t, strings.TrimPrefix(f[1], "seq="), f[3], true
}

// writeCrashes writes the listing as aligned text: host, time, panic line,
// source.
func writeCrashes(w io.Writer, cs []Crash) error {
	if len(cs) == 0 {
		_, err := fmt.Fprintln(w, "no crashes")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "HOST\tWHEN\tPANIC\tSOURCE")
	for _, c := range cs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", c.Host, c.Time.UTC().Format(time.RFC3339), tabless(c.Line), tabless(c.Source))
	}
	return tw.Flush()
}

func tabless(s string) string { return strings.ReplaceAll(s, "\t", " ") }

// runCrashes is the "crashes" subcommand.
func runCrashes(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("lastgaspd crashes", flag.ContinueOnError)
	store := fs.String("store", "/var/lib/lastgasp", "store directory")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cs, err := listCrashes(*store)
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
