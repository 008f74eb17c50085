// Package collect feeds the collector's crash reports to the signature
// index (store/sigindex): crash records as the upload server stores them
// (Records), and the netconsole lines of a live report (Live, a sink of the
// receiver's fan-out). A live report and the record of the same crash
// become one crash in the index (see sigindex.Index).
package collect

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lastgasp/lastgasp/crash/signature"
	"github.com/lastgasp/lastgasp/netconsole/sink"
	"github.com/lastgasp/lastgasp/pstore/ship"
	"github.com/lastgasp/lastgasp/store"
	"github.com/lastgasp/lastgasp/store/sigindex"
)

// Stats counts what an Indexer did.
type Stats struct {
	Records     uint64 // records indexed (not duplicates)
	LiveReports uint64 // live reports indexed
	NoReport    uint64 // records without a report
	Cut         uint64 // records whose text ends inside their report (not indexed)
	LiveDropped uint64 // live reports not followed: too many at once, or the queue full
	Errors      uint64 // failed Adds
}

// Indexer adds sightings to Index and passes each result to Notify.
type Indexer struct {
	// Index is the signature index.
	Index sigindex.Index
	// Root is the store root (records are read from it).
	Root string
	// ReadTail, if set, reads the last limit bytes of the record at rel
	// instead of Root (the shared crash store, store/pgstore).
	ReadTail func(rel string, limit int64) ([]byte, error)
	// Backlog, if set, is what Backfill indexes instead of Root's crash
	// directories (the shared crash store: pgstore.DB.Unindexed): it
	// calls each for every record the index may lack (rel and linked as
	// RecordStored takes them) and every assembled text (rel ending in
	// store.AssembledSuffix, with its crash's Part1's metadata), and
	// returns ctx's error or its own.
	Backlog func(ctx context.Context, each func(meta store.RecordMeta, rel, linked string)) error
	// Notify, if set, gets every Add's result that was not a duplicate
	// (the alerts).
	Notify func(sigindex.Added)
	// Logf receives problems.
	Logf func(format string, args ...any)

	records, live, noReport, cut, liveDropped, errs atomic.Uint64
}

// Stats returns the counters.
func (x *Indexer) Stats() Stats {
	return Stats{Records: x.records.Load(), LiveReports: x.live.Load(), NoReport: x.noReport.Load(), Cut: x.cut.Load(),
		LiveDropped: x.liveDropped.Load(), Errors: x.errs.Load()}
}

func (x *Indexer) logf(format string, args ...any) {
	if x.Logf != nil {
		x.Logf(format, args...)
	}
}

// maxRecordRead bounds what is read of a record: its tail, where a dmesg
// record's panic is.
const maxRecordRead = 4 << 20

// RecordStored indexes the record stored at rel (relative to Root, as
// store.Stored.Path) with metadata meta; linked is the crashed boot's
// directory relative to Root (store.Stored.Linked), "" if not known.
//
// One part of a multi-part crash (meta.Parts > 1) is not indexed alone: a
// part holds a slice of the report (in an EFI crash of 14 parts the title
// and call trace are in Part2, Part1 ends with the register dump), so its
// signature is not the crash's. The crash is indexed once, from its
// assembled text (CrashAssembled).
func (x *Indexer) RecordStored(ctx context.Context, meta store.RecordMeta, rel, linked string) {
	if meta.CrashID != "" && meta.Parts > 1 {
		return
	}
	x.index(ctx, meta, rel, linked)
}

// CrashAssembled indexes the assembled text of a multi-part crash stored
// at rel (store.Stored.Assembled), with the metadata of the part that
// completed it and the boot it was linked into: the crash's one sighting
// as a record, its signature computed on the whole report.
func (x *Indexer) CrashAssembled(ctx context.Context, meta store.RecordMeta, rel, linked string) {
	x.index(ctx, meta, rel, linked)
}

func (x *Indexer) index(ctx context.Context, meta store.RecordMeta, rel, linked string) {
	if meta.Corrupt || meta.Compressed {
		return // no text to read
	}
	var data []byte
	var err error
	if x.ReadTail != nil {
		data, err = x.ReadTail(rel, maxRecordRead)
	} else {
		data, err = readTail(filepath.Join(x.Root, filepath.FromSlash(rel)), maxRecordRead)
	}
	if err != nil {
		x.errs.Add(1)
		x.logf("signatures: record %s: %v", rel, err)
		return
	}
	sig, ok := signature.Extract(data)
	if !ok {
		x.noReport.Add(1)
		return
	}
	if sig.Cut {
		// A console tail copied while the panic was still being printed
		// (the copier on another CPU until the panic stopped it): its
		// few frames would make a signature of their own for a crash
		// the boot's dmesg record or live report holds whole.
		x.cut.Add(1)
		x.logf("signatures: record %s: the text ends inside its report (%q, %d frames): not indexed", rel, sig.Title, len(sig.Frames))
		return
	}
	// The crashed boot: the one the agent names for the record (ring
	// records), else the boot directory the store linked it into.
	boot := meta.RecordBootID
	if boot == "" && linked != "" {
		boot = path.Base(linked)
	}
	at := meta.RecordTime
	if at.IsZero() {
		at = meta.Received
	}
	s := sigindex.Sighting{Host: meta.Host, Boot: boot, Release: meta.KernelRelease, Time: at,
		Source: sigindex.SourceRecord, Ref: rel, Verified: meta.Verified, Signature: sig, Report: tail(data, sigindex.MaxReport)}
	if x.add(ctx, s) {
		x.records.Add(1)
	}
}

func (x *Indexer) add(ctx context.Context, s sigindex.Sighting) bool {
	a, err := x.Index.Add(ctx, s)
	if err != nil {
		x.errs.Add(1)
		x.logf("signatures: host %s: %s: %v", s.Host, s.Ref, err)
		return false
	}
	if a.Duplicate || a.Evicted {
		// Evicted: older than all the index keeps at its bound; counted
		// there (sigindex.FileStats.Evicted), and no alert for it.
		return false
	}
	if a.NewSignature {
		x.logf("signatures: new signature %s %q (host %s, %s)", a.Signature.ID, a.Signature.Title, s.Host, s.Source)
	}
	if x.Notify != nil {
		x.Notify(a)
	}
	return true
}

// Backfill indexes the records already in the store (stored before the
// index existed, or whose Add failed; from Backlog if it is set); the
// index ignores those it has. A multi-part crash is indexed from its
// assembled text, once.
func (x *Indexer) Backfill(ctx context.Context) error {
	if x.Backlog != nil {
		err := x.Backlog(ctx, func(meta store.RecordMeta, rel, linked string) {
			if strings.HasSuffix(rel, store.AssembledSuffix) {
				x.CrashAssembled(ctx, meta, rel, linked)
				return
			}
			x.RecordStored(ctx, meta, rel, linked)
		})
		if err != nil {
			return fmt.Errorf("signatures: backfill: %w", err)
		}
		return nil
	}
	metas, err := filepath.Glob(filepath.Join(x.Root, "*", store.CrashDir, "*"+store.MetaSuffix))
	if err != nil {
		return fmt.Errorf("signatures: backfill: %w", err)
	}
	for _, m := range metas {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		b, err := os.ReadFile(m)
		if err != nil {
			continue
		}
		var meta store.RecordMeta
		if json.Unmarshal(b, &meta) != nil || meta.Host == "" {
			continue
		}
		rel, _ := filepath.Rel(x.Root, strings.TrimSuffix(m, store.MetaSuffix))
		linked := linkedBoot(x.Root, meta, filepath.Base(rel))
		if meta.CrashID != "" && meta.Parts > 1 {
			// The crash, once, from its Part1: its assembled text.
			text := path.Join(path.Dir(filepath.ToSlash(rel)), meta.CrashID+store.AssembledSuffix)
			if _, err := os.Stat(filepath.Join(x.Root, filepath.FromSlash(text))); meta.Part == 1 && err == nil && ship.CheckRecordName(meta.CrashID) == nil {
				x.CrashAssembled(ctx, meta, text, linked)
			}
			continue
		}
		x.RecordStored(ctx, meta, filepath.ToSlash(rel), linked)
	}
	return nil
}

// linkedBoot finds the boot directory a record was hard-linked into.
func linkedBoot(root string, meta store.RecordMeta, base string) string {
	hd := store.HostDir(meta.Host)
	links, _ := filepath.Glob(filepath.Join(root, hd, "*", store.CrashDir, base))
	if len(links) == 1 {
		return hd + "/" + filepath.Base(filepath.Dir(filepath.Dir(links[0])))
	}
	return ""
}

func readTail(p string, limit int64) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if fi.Size() > limit {
		if _, err := f.Seek(fi.Size()-limit, io.SeekStart); err != nil {
			return nil, err
		}
	}
	return io.ReadAll(io.LimitReader(f, limit))
}

// tail returns the last n bytes of b, from a line start when it cuts.
func tail(b []byte, n int) string {
	if len(b) <= n {
		return string(b)
	}
	b = b[len(b)-n:]
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		b = b[i+1:]
	}
	return string(b)
}

// Bounds of Live.
const (
	// MaxLiveReports is how many hosts may be in the middle of a report
	// at once; a report beyond it is not followed (counted).
	MaxLiveReports = 1024
	// maxLiveLines and maxLiveBytes bound one live report: all of them
	// together hold at most MaxLiveReports x maxLiveBytes (32 MiB), even
	// when forged senders open reports for made-up hosts.
	maxLiveLines = 256
	maxLiveBytes = 32 << 10
	// liveQuiet ends a report that sent no line for that long (a panic
	// that stopped the machine has no end marker).
	liveQuiet = 2 * time.Second
	liveQueue = 256
)

// Live is a sink.Sink that follows the live reports of netconsole hosts:
// only a line that starts a report (signature.StartKind) opens one; the
// lines after it, bounded, are kept until an end marker ("---[ end"), a
// bound, or liveQuiet without a line; then the report is indexed. A host
// that is not in a report costs nothing.
type Live struct {
	x       *Indexer
	mu      sync.Mutex
	open    map[string]*liveReport // by host + "\x00" + boot
	q       chan sigindex.Sighting
	stop    chan struct{}
	stopped sync.WaitGroup
	now     func() time.Time
}

type liveReport struct {
	host, boot, release string
	ref                 string
	at                  time.Time
	last                time.Time
	buf                 bytes.Buffer
	lines               int
}

// NewLive returns a Live feeding x, and starts its indexing goroutine
// until Close.
func NewLive(x *Indexer) *Live {
	l := &Live{x: x, open: map[string]*liveReport{}, q: make(chan sigindex.Sighting, liveQueue), stop: make(chan struct{}), now: time.Now}
	l.stopped.Add(1)
	go l.run()
	return l
}

// Send implements sink.Sink.
func (l *Live) Send(m sink.Message) {
	key := m.Host + "\x00" + m.Boot
	l.mu.Lock()
	defer l.mu.Unlock()
	r := l.open[key]
	if r == nil {
		if _, ok := signature.StartKind(m.Text); !ok {
			return
		}
		if len(l.open) >= MaxLiveReports {
			l.x.liveDropped.Add(1)
			return
		}
		bootDir := m.Boot
		if bootDir == "" {
			bootDir = store.UnknownBoot
		}
		r = &liveReport{host: m.Host, boot: m.Boot, release: m.Release, at: m.Received,
			ref: fmt.Sprintf("%s/%s/%s seq=%d", store.HostDir(m.Host), bootDir, store.LogName, m.Seq)}
		l.open[key] = r
	}
	r.last = m.Received
	if m.Extended {
		fmt.Fprintf(&r.buf, "[%5d.%06d] ", m.TimestampUsec/1e6, m.TimestampUsec%1e6)
	}
	r.buf.WriteString(strings.ReplaceAll(m.Text, "\n", " "))
	r.buf.WriteByte('\n')
	r.lines++
	if strings.Contains(m.Text, "---[ end ") || r.lines >= maxLiveLines || r.buf.Len() >= maxLiveBytes {
		l.finish(key, r)
	}
}

// finish hands r to the indexing goroutine. l.mu must be held.
func (l *Live) finish(key string, r *liveReport) {
	delete(l.open, key)
	sig, ok := signature.Extract(r.buf.Bytes())
	if !ok {
		return
	}
	boot := r.boot
	s := sigindex.Sighting{Host: r.host, Boot: boot, Release: r.release, Time: r.at, Source: sigindex.SourceNetconsole,
		Ref: r.ref, Signature: sig, Report: r.buf.String()}
	select {
	case l.q <- s:
	default:
		l.x.liveDropped.Add(1)
	}
}

func (l *Live) run() {
	defer l.stopped.Done()
	tick := time.NewTicker(liveQuiet / 4)
	defer tick.Stop()
	for {
		select {
		case s := <-l.q:
			if l.x.add(context.Background(), s) {
				l.x.live.Add(1)
			}
		case <-tick.C:
			l.Flush(false)
		case <-l.stop:
			l.Flush(true)
			for {
				select {
				case s := <-l.q:
					if l.x.add(context.Background(), s) {
						l.x.live.Add(1)
					}
				default:
					return
				}
			}
		}
	}
}

// Flush ends the reports quiet for liveQuiet (all of them with all).
func (l *Live) Flush(all bool) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	for k, r := range l.open {
		if all || now.Sub(r.last) >= liveQuiet {
			l.finish(k, r)
		}
	}
}

// Close ends the open reports, indexes what is queued and stops.
func (l *Live) Close() {
	close(l.stop)
	l.stopped.Wait()
}
