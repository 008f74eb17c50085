package sigindex

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"
)

// JournalName is the File's journal under the store's state directory
// (store.StateDir).
const JournalName = "signatures.jsonl"

// maxJournalLine bounds one journal line when it is read back: a sighting
// with a MaxReport report, JSON-escaped, is well under it.
const maxJournalLine = 8 * MaxReport

// File is the embedded Index: in memory, persisted as an append-only
// journal of sightings (one JSON object a line), replayed by OpenFile. A
// line torn by a crash of the collector is skipped. A report's text is
// journaled only when it becomes its signature's sample, so the journal
// grows by about a line per sighting.
type File struct {
	path string

	mu      sync.Mutex
	f       *os.File
	w       *bufio.Writer
	sigs    map[string]*sigState
	hosts   map[string][]*Crash // by host, in insertion order
	refs    map[string]*Crash   // by source + "\x00" + ref
	skipped int                 // journal lines that did not parse
}

// sigState is one signature's crashes and sample.
type sigState struct {
	sig     Signature // Count etc. unscoped; Hosts/Releases recomputed
	crashes []*Crash
}

// OpenFile opens (creating it if needed) the journal at path, typically
// <store>/.lastgaspd/signatures.jsonl, and replays it.
func OpenFile(path string) (*File, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("sigindex: %w", err)
	}
	x := &File{path: path, sigs: map[string]*sigState{}, hosts: map[string][]*Crash{}, refs: map[string]*Crash{}}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("sigindex: open journal: %w", err)
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), maxJournalLine)
	for sc.Scan() {
		var s Sighting
		if err := json.Unmarshal(sc.Bytes(), &s); err != nil || s.Signature.ID == "" {
			x.skipped++
			continue
		}
		x.add(s)
	}
	if err := sc.Err(); err != nil {
		f.Close()
		return nil, fmt.Errorf("sigindex: read journal %s: %w", path, err)
	}
	x.f, x.w = f, bufio.NewWriter(f)
	return x, nil
}

// Skipped returns how many journal lines OpenFile could not read.
func (x *File) Skipped() int {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.skipped
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
	a, sample := x.add(s)
	if a.Duplicate {
		return a, nil
	}
	if !sample {
		s.Report = "" // only the sample's text is kept
	}
	b, err := json.Marshal(s)
	if err != nil {
		return Added{}, fmt.Errorf("sigindex: encode sighting: %w", err)
	}
	x.w.Write(append(b, '\n'))
	if err := x.w.Flush(); err != nil {
		return a, fmt.Errorf("sigindex: write journal: %w", err)
	}
	if s.Source == SourceRecord {
		if err := x.f.Sync(); err != nil {
			return a, fmt.Errorf("sigindex: sync journal: %w", err)
		}
	}
	return a, nil
}

// add indexes s in memory; sample says s became its signature's sample.
// x.mu must be held (or x not yet shared).
func (x *File) add(s Sighting) (Added, bool) {
	key := string(s.Source) + "\x00" + s.Ref
	if c := x.refs[key]; c != nil {
		st := x.sigs[c.SignatureID]
		return Added{Crash: cloneCrash(c), Duplicate: true, Signature: st.summary("", time.Time{})}, false
	}
	st := x.sigs[s.Signature.ID]
	a := Added{}
	if st == nil {
		st = &sigState{sig: Signature{Signature: s.Signature, FirstSeen: s.Time, LastSeen: s.Time}}
		st.sig.TitleUsec = -1 // per crash, not per signature
		x.sigs[s.Signature.ID] = st
		a.NewSignature = true
	}
	var crash *Crash
	for _, c := range x.hosts[s.Host] {
		if c.SignatureID == s.Signature.ID && sameCrash(c, s) {
			crash = c
			break
		}
	}
	if crash == nil {
		crash = &Crash{SignatureID: s.Signature.ID, Host: s.Host, Boot: s.Boot, Release: s.Release, Time: s.Time, TitleUsec: s.Signature.TitleUsec}
		crash.ID = crashID(s)
		x.hosts[s.Host] = append(x.hosts[s.Host], crash)
		st.crashes = append(st.crashes, crash)
		st.sig.Count++
		a.NewCrash = true
	} else {
		// A second copy fills in what the first did not know.
		crash.Boot = cmp.Or(crash.Boot, s.Boot)
		crash.Release = cmp.Or(crash.Release, s.Release)
		if crash.TitleUsec < 0 {
			crash.TitleUsec = s.Signature.TitleUsec
		}
		if s.Time.Before(crash.Time) {
			crash.Time = s.Time
		}
	}
	ref := s
	ref.Report = ""
	crash.Sightings = append(crash.Sightings, ref)
	x.refs[key] = crash
	if s.Time.Before(st.sig.FirstSeen) {
		st.sig.FirstSeen = s.Time
	}
	if s.Time.After(st.sig.LastSeen) {
		st.sig.LastSeen = s.Time
	}
	sample := false
	if st.sig.Sample.Ref == "" || s.Source == SourceRecord && st.sig.Sample.Source != SourceRecord {
		st.sig.Sample = s
		sample = true
	}
	a.Crash = cloneCrash(crash)
	a.Signature = st.summary("", time.Time{})
	return a, sample
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

func cloneCrash(c *Crash) Crash {
	cc := *c
	cc.Sightings = slices.Clone(c.Sightings)
	return cc
}

// summary returns the signature restricted to host ("" for all), with
// Recent counted from since. x.mu must be held.
func (st *sigState) summary(host string, since time.Time) Signature {
	s := st.sig
	s.Count, s.Recent = 0, 0
	s.Frames = slices.Clone(st.sig.Frames)
	hosts, rels := map[string]bool{}, map[string]bool{}
	var first, last time.Time
	for _, c := range st.crashes {
		if host != "" && c.Host != host {
			continue
		}
		s.Count++
		if !since.IsZero() && !c.Time.Before(since) {
			s.Recent++
		}
		hosts[c.Host] = true
		if c.Release != "" {
			rels[c.Release] = true
		}
		if first.IsZero() || c.Time.Before(first) {
			first = c.Time
		}
		if c.Time.After(last) {
			last = c.Time
		}
	}
	if host != "" {
		s.FirstSeen, s.LastSeen = first, last
		if s.Sample.Host != host {
			s.Sample = Sighting{}
			for _, c := range st.crashes {
				if c.Host == host {
					s.Sample = c.Sightings[0] // without its text: another host's sample is not shown
					break
				}
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
			if !seen[c.SignatureID] {
				seen[c.SignatureID] = true
				out = append(out, x.sigs[c.SignatureID].summary(q.Host, q.Since))
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
		if host == "" || c.Host == host {
			crashes = append(crashes, cloneCrash(c))
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
		out = append(out, cloneCrash(c))
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
