package store

import (
	"bufio"
	"cmp"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/lastgasp/lastgasp/pstore/records"
	"github.com/lastgasp/lastgasp/store/logline"
)

// Crash is one panic line the store holds for a host.
type Crash struct {
	// Time is when it happened: the record time of a crash record (else
	// when it was received), or when the netconsole line arrived.
	Time time.Time
	// Line is the panic line (records.PanicLine).
	Line string
	// Source says where Line was found, relative to the host directory:
	// "crash/<record>", "<boot>/crash/<record>" for a record linked next
	// to the logs of the boot that produced it, or
	// "<boot>/kernel.log seq=<n>" (or kernel.log.1, just rotated).
	Source string
}

// HostCrashes is what the crash listing shows for one host. The two
// sources are kept apart because they are not trusted alike: a crash
// record was uploaded over HTTP(S), by the host's own credential when the
// collector requires client certificates, while netconsole lines are
// unauthenticated UDP that any sender can forge for any host name.
type HostCrashes struct {
	// Host is the host's directory in the store (HostDir).
	Host string
	// Record is the latest panic found in the host's crash records, nil
	// if none; Verified says it was uploaded with a verified client
	// certificate naming the host.
	Record   *Crash
	Verified bool
	// Netconsole is the latest panic line in the host's netconsole logs,
	// nil if none.
	Netconsole *Crash
}

// Bounds on what the listing reads of a log: its tail (panics end a
// boot's log), at most maxLogTail bytes, and lines up to maxLogLine.
const (
	maxLogTail = 1 << 20
	maxLogLine = 1 << 20
)

// CrashIndex lists the last panic of each host (see HostCrashes). Records
// answers for crash records from memory; the netconsole logs are scanned
// only as far as they grew since the last listing.
type CrashIndex struct {
	// Root is the store root.
	Root string
	// Records holds the crash records; nil means one on Root.
	Records *Records

	once sync.Once
	mu   sync.Mutex
	logs map[string]*logScan // by log path
}

// logScan is what a CrashIndex knows of one log file.
type logScan struct {
	ino, size int64
	mtime     time.Time
	scanned   int64 // offset after the last complete line read
	crash     *Crash
	seen      bool // in the current listing
}

func (x *CrashIndex) init() {
	x.once.Do(func() {
		if x.Records == nil {
			x.Records = &Records{Root: x.Root}
		}
		x.logs = map[string]*logScan{}
	})
}

// List returns the hosts that have a panic, sorted by host directory.
func (x *CrashIndex) List() ([]HostCrashes, error) {
	x.init()
	if err := x.Records.Load(); err != nil {
		return nil, err
	}
	byHost := map[string]*HostCrashes{}
	for dir, rc := range x.Records.latest() {
		c := rc.crash
		byHost[dir] = &HostCrashes{Host: dir, Record: &c, Verified: rc.verified}
	}
	hosts, err := os.ReadDir(x.Root)
	if err != nil {
		return nil, fmt.Errorf("store: crashes: %w", err)
	}
	x.mu.Lock()
	for _, s := range x.logs {
		s.seen = false
	}
	for _, h := range hosts {
		if !h.IsDir() || strings.HasPrefix(h.Name(), ".") {
			continue
		}
		if c := x.netconsoleCrash(h.Name()); c != nil {
			hc := byHost[h.Name()]
			if hc == nil {
				hc = &HostCrashes{Host: h.Name()}
				byHost[h.Name()] = hc
			}
			hc.Netconsole = c
		}
	}
	for p, s := range x.logs {
		if !s.seen {
			delete(x.logs, p) // removed by retention
		}
	}
	x.mu.Unlock()
	out := make([]HostCrashes, 0, len(byHost))
	for _, hc := range byHost {
		out = append(out, *hc)
	}
	slices.SortFunc(out, func(a, b HostCrashes) int { return strings.Compare(a.Host, b.Host) })
	return out, nil
}

// netconsoleCrash returns the latest panic line in the logs of the host
// directory hostDir. x.mu must be held.
func (x *CrashIndex) netconsoleCrash(hostDir string) *Crash {
	boots, err := os.ReadDir(filepath.Join(x.Root, hostDir))
	if err != nil {
		return nil
	}
	var best *Crash
	for _, b := range boots {
		if !b.IsDir() || b.Name() == CrashDir || strings.HasPrefix(b.Name(), ".") {
			continue
		}
		p := filepath.Join(x.Root, hostDir, b.Name(), LogName)
		c := x.logCrash(p)
		if c == nil {
			// Rotated just after the panic: the panic is in kernel.log.1.
			c = x.logCrash(RotatedName(p, 1))
		}
		if c != nil && (best == nil || c.Time.After(best.Time)) {
			cc := *c
			cc.Source = b.Name() + "/" + cc.Source
			best = &cc
		}
	}
	return best
}

// logCrash returns the last panic line of the log at p, reading only what
// was added since the last call when the file only grew. x.mu must be
// held.
func (x *CrashIndex) logCrash(p string) *Crash {
	fi, err := os.Stat(p)
	if err != nil {
		return nil
	}
	var ino int64
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		ino = int64(st.Ino)
	}
	s := x.logs[p]
	if s != nil && s.ino == ino && s.size == fi.Size() && s.mtime.Equal(fi.ModTime()) {
		s.seen = true
		return s.crash
	}
	if s == nil || s.ino != ino || fi.Size() < s.scanned {
		s = &logScan{} // new, rotated or rewritten: from its tail
		x.logs[p] = s
	}
	s.ino, s.size, s.mtime, s.seen = ino, fi.Size(), fi.ModTime(), true
	f, err := os.Open(p)
	if err != nil {
		return s.crash
	}
	defer f.Close()
	from := max(s.scanned, fi.Size()-maxLogTail)
	if _, err := f.Seek(from, io.SeekStart); err != nil {
		return s.crash
	}
	br := bufio.NewReaderSize(f, 64<<10)
	off := from
	if from > s.scanned && from > 0 {
		// Started inside the tail: skip to the next whole line.
		skipped, err := br.ReadSlice('\n')
		for err == bufio.ErrBufferFull {
			off += int64(len(skipped))
			skipped, err = br.ReadSlice('\n')
		}
		if err != nil {
			return s.crash
		}
		off += int64(len(skipped))
	}
	for {
		line, n, err := readLine(br)
		if err != nil {
			break // EOF: a partial last line is read next time
		}
		off += n
		l, err := logline.Parse(strings.TrimSuffix(string(line), "\n"))
		if err != nil || l.Kind == logline.Note {
			continue // lastgaspd's own notes are not the kernel's
		}
		if pl := records.PanicLine([]byte(l.Text)); pl != "" {
			c := &Crash{Time: l.Time, Line: pl, Source: filepath.Base(p)}
			if l.Kind == logline.Message {
				c.Source += " seq=" + strconv.FormatUint(l.Seq, 10)
			}
			s.crash = c
		}
	}
	s.scanned = off
	return s.crash
}

// readLine returns the next whole line of br, newline included, cut to
// maxLogLine, and its length in the file; io.EOF (or another error) when
// no whole line is left.
func readLine(br *bufio.Reader) ([]byte, int64, error) {
	var line []byte
	var n int64
	for {
		chunk, err := br.ReadSlice('\n')
		n += int64(len(chunk))
		if len(line)+len(chunk) <= maxLogLine {
			line = append(line, chunk...)
		}
		switch err {
		case nil:
			return line, n, nil
		case bufio.ErrBufferFull:
			continue
		}
		return nil, 0, err
	}
}

// recordLatest is a host's latest panic among its crash records.
type recordLatest struct {
	crash    Crash
	verified bool
}

// latest returns, by host directory, the latest panic among the records
// indexed so far.
func (r *Records) latest() map[string]recordLatest {
	r.mu.Lock()
	hosts := make([]*recordHost, 0, len(r.hosts))
	for _, hs := range r.hosts {
		hosts = append(hosts, hs)
	}
	r.mu.Unlock()
	out := map[string]recordLatest{}
	for _, hs := range hosts {
		hs.mu.Lock()
		var best *recordEntry
		for _, e := range hs.recs {
			if e.crash.Line == "" {
				continue
			}
			if best == nil || cmp.Or(e.crash.Time.Compare(best.crash.Time), strings.Compare(e.base, best.base)) > 0 {
				best = e
			}
		}
		if best != nil {
			c := best.crash
			if best.linked != "" {
				c.Source = best.linked + "/" + c.Source
			}
			out[hs.dir] = recordLatest{crash: c, verified: best.verified}
		}
		hs.mu.Unlock()
	}
	return out
}
