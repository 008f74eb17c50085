package sigindex

import (
	"bufio"
	"cmp"
	"container/heap"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// JournalName is the File's journal under the store's state directory
// (store.StateDir).
const JournalName = "signatures.jsonl"

// maxJournalLine bounds one journal line when it is read back: a sighting
// with a MaxReport report, JSON-escaped, is well under it.
const maxJournalLine = 8 * MaxReport

// Default bounds on a File's sightings (FileOptions). A host keeps its
// newest DefaultMaxHostSightings sightings whatever the fleet does, and
// the whole index DefaultMaxSightings; README gives the memory they take.
const (
	DefaultMaxSightings     = 100_000
	DefaultMaxHostSightings = 100
)

// compactSlack is how many journal lines beyond twice the live sightings
// trigger a rewrite of the journal on Add or Remove: the lines of evicted
// and removed sightings are dropped at most every so many lines.
const compactSlack = 4096

// FileOptions are a File's bounds and clock.
type FileOptions struct {
	// MaxSightings bounds the sightings kept in total; MaxHostSightings
	// those of one host. Beyond either, the oldest (by Sighting.Time)
	// sightings of that scope are evicted, and a sighting older than all
	// of them is not kept (Added.Evicted). Zero means the default (see
	// DefaultMaxSightings); negative means no bound.
	MaxSightings, MaxHostSightings int
	// Now returns the time Add stamps sightings with (Sighting.Added);
	// nil means time.Now.
	Now func() time.Time
}

// File is the embedded Index: in memory, persisted as an append-only
// journal (one JSON object a line) of sightings and removals, replayed by
// OpenFile. A line torn by a crash of the collector is skipped. A report's
// text is journaled only when it becomes its signature's sample, so the
// journal grows by about a line per sighting; Expire, and Add or Remove
// once the journal holds more than twice the lines it needs, rewrite it
// with the live sightings only (a temporary file renamed over it).
type File struct {
	path     string
	now      func() time.Time
	maxTotal int // < 0: no bound
	maxHost  int

	mu      sync.Mutex
	f       *os.File
	w       *bufio.Writer
	sigs    map[string]*sigState
	hosts   map[string][]*crashState // by host, in insertion order
	hostN   map[string]int           // sightings by host
	refs    map[refKey]*node
	byTime  nodeHeap // every sighting, oldest Time first
	seq     uint64   // of the last sighting added
	lines   int      // in the journal
	skipped int      // journal lines that did not parse

	evicted, expired, removed atomic.Uint64
}

// refKey identifies a sighting.
type refKey struct {
	src Source
	ref string
}

// node is one sighting as the File keeps it.
type node struct {
	s     Sighting // without its Report
	crash *crashState
	seq   uint64 // order of addition: journal order
	hi    int    // index in File.byTime
}

// crashState is one crash: Crash without its Sightings, and its sightings
// in order of addition.
type crashState struct {
	c     Crash
	nodes []*node
}

// sigState is one signature's crashes and sample.
type sigState struct {
	sig     Signature // Count, FirstSeen etc. computed by summary
	crashes []*crashState
}

// journalLine is one line of the journal: a sighting, or a removal.
type journalLine struct {
	Sighting
	// Sample: the sighting became its signature's sample (journals
	// written before the field: a line with a Report did).
	Sample bool `json:"sample_of_signature,omitempty"`
	// Remove, if set, is a sighting removed (Remove): the line has
	// nothing else.
	Remove *removedRef `json:"remove,omitempty"`
}

type removedRef struct {
	Source Source `json:"source"`
	Ref    string `json:"ref"`
}

// OpenFile opens (creating it if needed) the journal at path, typically
// <store>/.lastgaspd/signatures.jsonl, with the default bounds, and
// replays it.
func OpenFile(path string) (*File, error) { return OpenFileWith(path, FileOptions{}) }

// OpenFileWith opens the journal at path with opts and replays it. A
// journal with unreadable lines, or more than twice the lines its live
// sightings need, is rewritten at once.
func OpenFileWith(path string, opts FileOptions) (*File, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("sigindex: %w", err)
	}
	x := &File{path: path, now: opts.Now, maxTotal: bound(opts.MaxSightings, DefaultMaxSightings),
		maxHost: bound(opts.MaxHostSightings, DefaultMaxHostSightings),
		sigs:    map[string]*sigState{}, hosts: map[string][]*crashState{}, hostN: map[string]int{}, refs: map[refKey]*node{}}
	if x.now == nil {
		x.now = time.Now
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("sigindex: open journal: %w", err)
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), maxJournalLine)
	for sc.Scan() {
		x.lines++
		var l journalLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			x.skipped++
			continue
		}
		if l.Remove != nil {
			if n := x.refs[refKey{l.Remove.Source, l.Remove.Ref}]; n != nil {
				x.drop(n)
			}
			continue
		}
		if l.Signature.ID == "" || l.Host == "" {
			x.skipped++
			continue
		}
		if l.Added.IsZero() {
			l.Added = l.Time // journaled before sightings had it
		}
		x.add(l.Sighting, true, l.Sample || l.Report != "")
	}
	if err := sc.Err(); err != nil {
		f.Close()
		return nil, fmt.Errorf("sigindex: read journal %s: %w", path, err)
	}
	x.f, x.w = f, bufio.NewWriter(f)
	if x.skipped > 0 || x.lines > 2*len(x.refs)+compactSlack {
		// Also so that the next line is not appended to a torn one.
		if err := x.compact(); err != nil {
			x.f.Close()
			return nil, err
		}
	}
	return x, nil
}

func bound(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

// Skipped returns how many journal lines OpenFile could not read.
func (x *File) Skipped() int {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.skipped
}

// FileStats counts what a File dropped since it was opened.
type FileStats struct {
	Sightings uint64 // kept now
	Evicted   uint64 // evicted, or not kept, at MaxSightings or MaxHostSightings
	Expired   uint64 // dropped by Expire
	Removed   uint64 // dropped by Remove
}

// Stats returns the File's counts.
func (x *File) Stats() FileStats {
	x.mu.Lock()
	n := len(x.refs)
	x.mu.Unlock()
	return FileStats{Sightings: uint64(n), Evicted: x.evicted.Load(), Expired: x.expired.Load(), Removed: x.removed.Load()}
}

// Add implements Index.
func (x *File) Add(ctx context.Context, s Sighting) (Added, error) {
	if s.Signature.ID == "" || s.Host == "" {
		return Added{}, fmt.Errorf("sigindex: sighting without host or signature")
	}
	if len(s.Report) > MaxReport {
		s.Report = s.Report[len(s.Report)-MaxReport:]
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.f == nil {
		return Added{}, fmt.Errorf("sigindex: closed")
	}
	s.Added = x.now().UTC()
	a, sample, evicted := x.add(s, false, false)
	x.evicted.Add(uint64(evicted))
	if a.Duplicate || a.Evicted {
		return a, nil
	}
	if !sample {
		s.Report = "" // only the sample's text is kept
	}
	if err := x.append(journalLine{Sighting: s, Sample: sample}); err != nil {
		return a, err
	}
	if s.Source == SourceRecord {
		if err := x.f.Sync(); err != nil {
			return a, fmt.Errorf("sigindex: sync journal: %w", err)
		}
	}
	return a, x.maybeCompact()
}

// append writes one journal line. x.mu must be held.
func (x *File) append(l any) error {
	b, err := json.Marshal(l)
	if err != nil {
		return fmt.Errorf("sigindex: encode sighting: %w", err)
	}
	x.w.Write(append(b, '\n'))
	if err := x.w.Flush(); err != nil {
		return fmt.Errorf("sigindex: write journal: %w", err)
	}
	x.lines++
	return nil
}

// maybeCompact rewrites the journal if it holds more than twice the lines
// of the live sightings (plus compactSlack). x.mu must be held.
func (x *File) maybeCompact() error {
	if x.lines > 2*len(x.refs)+compactSlack {
		return x.compact()
	}
	return nil
}

// add indexes s in memory and applies the bounds; replay says s is read
// back from the journal, where journalSample says it became its
// signature's sample (Add: the first sighting, or the first record one). It returns what Add did, whether s became the sample, and how
// many sightings it evicted (or 1 if s itself was not kept). x.mu must be
// held (or x not yet shared).
func (x *File) add(s Sighting, replay, journalSample bool) (a Added, sample bool, evicted int) {
	key := refKey{s.Source, s.Ref}
	if n := x.refs[key]; n != nil {
		st := x.sigs[n.crash.c.SignatureID]
		return Added{Crash: n.crash.clone(), Duplicate: true, Signature: st.summary("", time.Time{})}, false, 0
	}
	if x.full(s) {
		return Added{Evicted: true}, false, 1
	}
	st := x.sigs[s.Signature.ID]
	if st == nil {
		st = &sigState{sig: Signature{Signature: s.Signature}}
		st.sig.TitleUsec = -1 // per crash, not per signature
		st.sig.Frames = slices.Clip(st.sig.Frames)
		x.sigs[s.Signature.ID] = st
		a.NewSignature = true
	}
	var crash *crashState
	for _, c := range x.hosts[s.Host] {
		if c.c.SignatureID == s.Signature.ID && sameCrash(&c.c, s) {
			crash = c
			break
		}
	}
	if crash == nil {
		crash = &crashState{c: Crash{SignatureID: s.Signature.ID, Host: s.Host, Boot: s.Boot, Release: s.Release, Time: s.Time, TitleUsec: s.Signature.TitleUsec}}
		crash.c.ID = crashID(s)
		x.hosts[s.Host] = append(x.hosts[s.Host], crash)
		st.crashes = append(st.crashes, crash)
		a.NewCrash = true
	} else {
		// A second copy fills in what the first did not know.
		c := &crash.c
		c.Boot = cmp.Or(c.Boot, s.Boot)
		c.Release = cmp.Or(c.Release, s.Release)
		if c.TitleUsec < 0 {
			c.TitleUsec = s.Signature.TitleUsec
		}
		if s.Time.Before(c.Time) {
			c.Time = s.Time
		}
	}
	ref := s
	ref.Report = ""
	// The signature's ID is the hash of its title and frames: one copy
	// of them serves every sighting.
	ref.Signature.Title, ref.Signature.Frames = st.sig.Title, st.sig.Frames
	ref.Host = crash.c.Host
	x.seq++
	n := &node{s: ref, crash: crash, seq: x.seq}
	crash.nodes = append(crash.nodes, n)
	x.refs[key] = n
	heap.Push(&x.byTime, n)
	x.hostN[s.Host]++
	take := st.sig.Sample.Ref == "" || s.Source == SourceRecord && st.sig.Sample.Source != SourceRecord
	if replay {
		take = st.sig.Sample.Ref == "" || journalSample
	}
	if take {
		st.sig.Sample = s
		st.sig.Sample.Signature.Title, st.sig.Sample.Signature.Frames = st.sig.Title, st.sig.Frames
		sample = true
	}
	evicted = x.evict(s.Host)
	a.Crash = crash.clone()
	a.Signature = st.summary("", time.Time{})
	return a, sample, evicted
}

// full reports whether s would be evicted at once: its host (else the
// index) is at its bound and s is older than every sighting kept there.
// x.mu must be held.
func (x *File) full(s Sighting) bool {
	if x.maxHost >= 0 && x.hostN[s.Host] >= x.maxHost {
		o := x.hostOldest(s.Host)
		return o == nil || s.Time.Before(o.s.Time)
	}
	if x.maxTotal >= 0 && len(x.refs) >= x.maxTotal {
		return len(x.byTime) == 0 || s.Time.Before(x.byTime[0].s.Time)
	}
	return false
}

// evict drops the oldest sightings of host, then of the index, beyond the
// bounds, and returns how many. x.mu must be held.
func (x *File) evict(host string) int {
	n := 0
	for x.maxHost >= 0 && x.hostN[host] > x.maxHost {
		x.drop(x.hostOldest(host))
		n++
	}
	for x.maxTotal >= 0 && len(x.refs) > x.maxTotal {
		x.drop(x.byTime[0])
		n++
	}
	return n
}

// hostOldest returns the sighting of host with the earliest Time (the
// first added of equals), nil if it has none. x.mu must be held.
func (x *File) hostOldest(host string) *node {
	var o *node
	for _, c := range x.hosts[host] {
		for _, n := range c.nodes {
			if o == nil || n.before(o) {
				o = n
			}
		}
	}
	return o
}

func (n *node) before(m *node) bool {
	if !n.s.Time.Equal(m.s.Time) {
		return n.s.Time.Before(m.s.Time)
	}
	return n.seq < m.seq
}

// drop removes sighting n from memory: its crash goes with its last
// sighting, its signature with its last crash; a signature whose sample
// it was takes another (sigState.repick). x.mu must be held.
func (x *File) drop(n *node) {
	heap.Remove(&x.byTime, n.hi)
	delete(x.refs, refKey{n.s.Source, n.s.Ref})
	c := n.crash
	c.nodes = slices.DeleteFunc(c.nodes, func(m *node) bool { return m == n })
	host := c.c.Host
	if x.hostN[host]--; x.hostN[host] <= 0 {
		delete(x.hostN, host)
	}
	st := x.sigs[c.c.SignatureID]
	if len(c.nodes) == 0 {
		isC := func(d *crashState) bool { return d == c }
		if x.hosts[host] = slices.DeleteFunc(x.hosts[host], isC); len(x.hosts[host]) == 0 {
			delete(x.hosts, host)
		}
		if st.crashes = slices.DeleteFunc(st.crashes, isC); len(st.crashes) == 0 {
			delete(x.sigs, c.c.SignatureID)
			return
		}
	} else {
		c.c.Time = c.nodes[0].s.Time
		for _, m := range c.nodes[1:] {
			if m.s.Time.Before(c.c.Time) {
				c.c.Time = m.s.Time
			}
		}
	}
	if st.sig.Sample.Source == n.s.Source && st.sig.Sample.Ref == n.s.Ref {
		st.repick()
	}
}

// repick makes the first record sighting (in the order of the crashes,
// then of their sightings), else the first sighting, the sample, without
// a Report: only the sample's text was kept.
func (st *sigState) repick() {
	var first *node
	for _, c := range st.crashes {
		for _, n := range c.nodes {
			if n.s.Source == SourceRecord {
				st.sig.Sample = n.s
				return
			}
			if first == nil {
				first = n
			}
		}
	}
	st.sig.Sample = Sighting{}
	if first != nil {
		st.sig.Sample = first.s
	}
}

// Expire implements Index: the sightings added before cutoff are dropped
// and the journal is rewritten without them.
func (x *File) Expire(ctx context.Context, cutoff time.Time) (int, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.f == nil {
		return 0, fmt.Errorf("sigindex: closed")
	}
	var old []*node
	for _, n := range x.refs {
		if n.s.Added.Before(cutoff) {
			old = append(old, n)
		}
	}
	if len(old) == 0 {
		return 0, nil
	}
	for _, n := range old {
		x.drop(n)
	}
	x.expired.Add(uint64(len(old)))
	return len(old), x.compact()
}

// Remove implements Index. The removal is journaled (not fsynced: a
// removal lost in a crash of the collector leaves the sighting until it
// expires).
func (x *File) Remove(ctx context.Context, source Source, ref string) (bool, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.f == nil {
		return false, fmt.Errorf("sigindex: closed")
	}
	n := x.refs[refKey{source, ref}]
	if n == nil {
		return false, nil
	}
	x.drop(n)
	x.removed.Add(1)
	if err := x.append(struct {
		Remove removedRef `json:"remove"`
	}{removedRef{source, ref}}); err != nil {
		return true, err
	}
	return true, x.maybeCompact()
}

// compact rewrites the journal with the live sightings, in the order they
// were added, each sample with its text: a temporary file in the same
// directory, fsynced, renamed over the journal, the directory fsynced;
// the temporary file is the journal appended to from then on. x.mu must
// be held.
func (x *File) compact() error {
	if err := x.w.Flush(); err != nil {
		return fmt.Errorf("sigindex: write journal: %w", err)
	}
	nodes := make([]*node, 0, len(x.refs))
	for _, n := range x.refs {
		nodes = append(nodes, n)
	}
	slices.SortFunc(nodes, func(a, b *node) int { return cmp.Compare(a.seq, b.seq) })
	dir := filepath.Dir(x.path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(x.path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("sigindex: compact journal: %w", err)
	}
	fail := func(err error) error {
		tmp.Close()
		os.Remove(tmp.Name())
		return fmt.Errorf("sigindex: compact journal: %w", err)
	}
	bw := bufio.NewWriterSize(tmp, 1<<20)
	for _, n := range nodes {
		l := journalLine{Sighting: n.s}
		if sm := x.sigs[n.crash.c.SignatureID].sig.Sample; sm.Source == n.s.Source && sm.Ref == n.s.Ref {
			l.Report, l.Sample = sm.Report, true
		}
		b, err := json.Marshal(l)
		if err != nil {
			return fail(err)
		}
		bw.Write(append(b, '\n'))
	}
	if err := bw.Flush(); err != nil {
		return fail(err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		return fail(err)
	}
	if err := tmp.Sync(); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp.Name(), x.path); err != nil {
		return fail(err)
	}
	x.f.Close()
	x.f = tmp
	x.w.Reset(tmp)
	x.lines = len(nodes)
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("sigindex: compact journal: %w", err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if e := d.Close(); err == nil {
		err = e
	}
	return err
}

// nodeHeap orders sightings by Time, then by addition.
type nodeHeap []*node

func (h nodeHeap) Len() int           { return len(h) }
func (h nodeHeap) Less(i, j int) bool { return h[i].before(h[j]) }
func (h nodeHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].hi, h[j].hi = i, j
}
func (h *nodeHeap) Push(v any) {
	n := v.(*node)
	n.hi = len(*h)
	*h = append(*h, n)
}
func (h *nodeHeap) Pop() any {
	old := *h
	n := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return n
}

// sameCrash reports whether s is a copy of crash c (see Index).
func sameCrash(c *Crash, s Sighting) bool {
	if c.Boot != "" && s.Boot != "" {
		return c.Boot == s.Boot
	}
	return c.TitleUsec >= 0 && c.TitleUsec == s.Signature.TitleUsec
}

func crashID(s Sighting) string {
	mid := s.Boot
	if mid == "" {
		mid = "t" + strconv.FormatInt(s.Signature.TitleUsec, 10)
	}
	return s.Host + "/" + mid + "/" + s.Signature.ID
}

// clone returns the crash with its sightings.
func (c *crashState) clone() Crash {
	cc := c.c
	cc.Sightings = make([]Sighting, len(c.nodes))
	for i, n := range c.nodes {
		cc.Sightings[i] = n.s
		cc.Sightings[i].Signature.Frames = slices.Clone(n.s.Signature.Frames)
	}
	return cc
}

// summary returns the signature restricted to host ("" for all), with
// Recent counted from since. x.mu must be held.
func (st *sigState) summary(host string, since time.Time) Signature {
	s := st.sig
	s.Count, s.Recent = 0, 0
	s.Frames = slices.Clone(st.sig.Frames)
	s.Sample.Signature.Frames = slices.Clone(s.Sample.Signature.Frames)
	hosts, rels := map[string]bool{}, map[string]bool{}
	var first, last time.Time
	for _, c := range st.crashes {
		if host != "" && c.c.Host != host {
			continue
		}
		s.Count++
		if !since.IsZero() && !c.c.Time.Before(since) {
			s.Recent++
		}
		hosts[c.c.Host] = true
		if c.c.Release != "" {
			rels[c.c.Release] = true
		}
		if first.IsZero() || c.c.Time.Before(first) {
			first = c.c.Time
		}
		for _, n := range c.nodes {
			if n.s.Time.After(last) {
				last = n.s.Time
			}
		}
	}
	s.FirstSeen, s.LastSeen = first, last
	if host != "" && s.Sample.Host != host {
		s.Sample = Sighting{}
		for _, c := range st.crashes {
			if c.c.Host == host {
				s.Sample = c.clone().Sightings[0] // without its text: another host's sample is not shown
				break
			}
		}
	}
	s.Hosts = sortedKeys(hosts)
	s.Releases = sortedKeys(rels)
	return s
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// Signatures implements Index.
func (x *File) Signatures(ctx context.Context, q Query) ([]Signature, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	var out []Signature
	if q.Host != "" {
		seen := map[string]bool{}
		for _, c := range x.hosts[q.Host] {
			if !seen[c.c.SignatureID] {
				seen[c.c.SignatureID] = true
				out = append(out, x.sigs[c.c.SignatureID].summary(q.Host, q.Since))
			}
		}
	} else {
		out = make([]Signature, 0, len(x.sigs))
		for _, st := range x.sigs {
			out = append(out, st.summary("", q.Since))
		}
	}
	slices.SortFunc(out, func(a, b Signature) int {
		return cmp.Or(cmp.Compare(b.Recent, a.Recent), cmp.Compare(b.Count, a.Count), cmp.Compare(a.ID, b.ID))
	})
	if q.Limit > 0 && len(out) > q.Limit {
		out = out[:q.Limit]
	}
	return out, nil
}

// Signature implements Index.
func (x *File) Signature(ctx context.Context, id, host string) (Signature, []Crash, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	st := x.sigs[id]
	if st == nil {
		return Signature{}, nil, fmt.Errorf("sigindex: %q: %w", id, ErrNotFound)
	}
	s := st.summary(host, time.Time{})
	if s.Count == 0 {
		return Signature{}, nil, fmt.Errorf("sigindex: %q: %w", id, ErrNotFound)
	}
	var crashes []Crash
	for _, c := range st.crashes {
		if host == "" || c.c.Host == host {
			crashes = append(crashes, c.clone())
		}
	}
	sortCrashes(crashes)
	return s, crashes, nil
}

// HostCrashes implements Index.
func (x *File) HostCrashes(ctx context.Context, host string) ([]Crash, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	var out []Crash
	for _, c := range x.hosts[host] {
		out = append(out, c.clone())
	}
	sortCrashes(out)
	return out, nil
}

func sortCrashes(cs []Crash) {
	slices.SortFunc(cs, func(a, b Crash) int { return cmp.Or(b.Time.Compare(a.Time), cmp.Compare(a.ID, b.ID)) })
}

// Close implements Index.
func (x *File) Close() error {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.f == nil {
		return nil
	}
	err := x.w.Flush()
	if e := x.f.Close(); err == nil {
		err = e
	}
	x.f = nil
	return err
}

var _ Index = (*File)(nil)
