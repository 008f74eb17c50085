// Package indextest is the behaviour every sigindex.Index must have, as a
// test any implementation runs against itself (the file journal, the
// PostgreSQL store).
package indextest

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/lastgasp/lastgasp/crash/signature"
	"github.com/lastgasp/lastgasp/store/sigindex"
)

// Refs returns the Ref of every sighting of the crashes of hosts in x,
// sorted.
func Refs(t *testing.T, x sigindex.Index, hosts ...string) []string {
	t.Helper()
	var out []string
	for _, h := range hosts {
		cs, err := x.HostCrashes(context.Background(), h)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cs {
			for _, s := range c.Sightings {
				out = append(out, s.Ref)
			}
		}
	}
	slices.Sort(out)
	return out
}

func sighting(host, boot string, src sigindex.Source, ref string, sig string, usec int64, at time.Time) sigindex.Sighting {
	return sigindex.Sighting{Host: host, Boot: boot, Release: "6.1.0-57-amd64", Time: at, Source: src, Ref: ref,
		Signature: signature.Signature{ID: sig, Kind: signature.KindPanic, Title: "Kernel panic - not syncing: " + sig, TitleUsec: usec},
		Report:    "report of " + ref}
}

// Identity checks the identity rules of Index: the live and the
// record copy of one crash are one crash (by boot, or by title timestamp
// when the record's boot is not known), a re-added sighting changes
// nothing, and another boot is another crash. open returns an empty
// index; reopen, if not nil, closes x and opens it again (durability).
func Identity(t *testing.T, open func(t *testing.T) sigindex.Index, reopen func(t *testing.T, x sigindex.Index) sigindex.Index) {
	ctx := context.Background()
	x := open(t)
	t0 := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)
	steps := []struct {
		name                  string
		s                     sigindex.Sighting
		newCrash, newSig, dup bool
		count                 int
	}{
		{"live a1", sighting("a", "b1", sigindex.SourceNetconsole, "a/b1/kernel.log seq=10", "s1", 3217581, t0), true, true, false, 1},
		{"record a1 same boot", sighting("a", "b1", sigindex.SourceRecord, "a/crash/r1", "s1", 3217581, t0.Add(time.Second)), false, false, false, 1},
		{"record a1 again", sighting("a", "b1", sigindex.SourceRecord, "a/crash/r1", "s1", 3217581, t0.Add(time.Second)), false, false, true, 1},
		{"live a2", sighting("a", "b2", sigindex.SourceNetconsole, "a/b2/kernel.log seq=10", "s1", 3300000, t0.Add(time.Minute)), true, false, false, 2},
		{"record a2 boot unknown, same usec", sighting("a", "", sigindex.SourceRecord, "a/crash/r2", "s1", 3300000, t0.Add(2*time.Minute)), false, false, false, 2},
		{"host b same signature", sighting("b", "c1", sigindex.SourceRecord, "b/crash/r1", "s1", 4000000, t0.Add(3*time.Minute)), true, false, false, 3},
		{"host b other signature", sighting("b", "c2", sigindex.SourceRecord, "b/crash/r2", "s2", 4000000, t0.Add(4*time.Minute)), true, true, false, 1},
	}
	for _, st := range steps {
		a, err := x.Add(ctx, st.s)
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if a.NewCrash != st.newCrash || a.NewSignature != st.newSig || a.Duplicate != st.dup || a.Signature.Count != st.count {
			t.Errorf("%s: Add = new crash %v, new signature %v, duplicate %v, count %d; want %v, %v, %v, %d",
				st.name, a.NewCrash, a.NewSignature, a.Duplicate, a.Signature.Count, st.newCrash, st.newSig, st.dup, st.count)
		}
	}
	check := func(x sigindex.Index) {
		t.Helper()
		sigs, err := x.Signatures(ctx, sigindex.Query{Since: t0.Add(30 * time.Second)})
		if err != nil {
			t.Fatal(err)
		}
		if len(sigs) != 2 || sigs[0].ID != "s1" || sigs[0].Count != 3 || sigs[0].Recent != 2 || sigs[1].Count != 1 {
			t.Fatalf("Signatures = %+v, want s1 (3 crashes, 2 recent), s2 (1)", sigs)
		}
		if got := sigs[0].Hosts; len(got) != 2 || got[0] != "a" || got[1] != "b" {
			t.Errorf("s1 hosts = %v, want [a b]", got)
		}
		if sigs[0].Sample.Ref != "a/crash/r1" || sigs[0].Sample.Report != "report of a/crash/r1" {
			t.Errorf("s1 sample = %q %q, want the first record's", sigs[0].Sample.Ref, sigs[0].Sample.Report)
		}
		hb, err := x.Signatures(ctx, sigindex.Query{Host: "b"})
		if err != nil || len(hb) != 2 || hb[0].Count != 1 || len(hb[0].Hosts) != 1 || hb[0].Hosts[0] != "b" {
			t.Errorf("Signatures(host b) = %+v, %v; want 2 signatures of 1 crash each, on b only", hb, err)
		}
		for _, s := range hb {
			if s.Sample.Host != "b" {
				t.Errorf("host b sees sample of host %q", s.Sample.Host)
			}
		}
		cs, err := x.HostCrashes(ctx, "a")
		if err != nil || len(cs) != 2 || len(cs[0].Sightings) != 2 || len(cs[1].Sightings) != 2 {
			t.Errorf("HostCrashes(a) = %+v, %v; want 2 crashes of 2 sightings", cs, err)
		}
		if _, _, err := x.Signature(ctx, "s2", "a"); err == nil {
			t.Errorf("Signature(s2, host a) found, want ErrNotFound")
		}
	}
	check(x)
	if reopen != nil {
		y := reopen(t, x)
		defer y.Close()
		check(y)
	} else {
		x.Close()
	}
}

// Retention checks Expire and Remove: a removed record's sighting goes
// and the crash keeps its live copy; the signature's sample, if it was
// the one removed, becomes the first record sighting left, without its
// text; a crash without sightings goes, and a signature without crashes
// leaves the overview (and is new again when it comes back); Expire
// drops by when the index took a sighting (now), not by the crash's
// time; FirstSeen is that of the crashes left. open returns an empty
// index whose Add takes the time from now; reopen, if not nil, closes x
// and opens it again with the same clock.
func Retention(t *testing.T, open func(t *testing.T, now func() time.Time) sigindex.Index, reopen func(t *testing.T, x sigindex.Index) sigindex.Index) {
	ctx := context.Background()
	t0 := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)
	clock := t0
	x := open(t, func() time.Time { return clock })
	defer func() { x.Close() }()
	adds := []struct {
		at time.Duration // clock at Add
		s  sigindex.Sighting
	}{
		// The crash's time is a day before it reached the index: expiry
		// counts from the index's clock.
		{0, sighting("a", "b1", sigindex.SourceNetconsole, "a/b1/kernel.log seq=10", "s1", 100, t0.Add(-24*time.Hour))},
		{time.Hour, sighting("a", "b1", sigindex.SourceRecord, "a/crash/r1", "s1", 100, t0.Add(-24*time.Hour+time.Second))},
		{2 * time.Hour, sighting("b", "c1", sigindex.SourceRecord, "b/crash/r1", "s1", 200, t0.Add(2*time.Hour))},
		{3 * time.Hour, sighting("b", "c2", sigindex.SourceRecord, "b/crash/r2", "s2", 300, t0.Add(3*time.Hour))},
		{4 * time.Hour, sighting("a", "b2", sigindex.SourceRecord, "a/crash/r2", "s3", 400, t0.Add(4*time.Hour))},
		// Crashed two days before, uploaded last: kept as long as the
		// others.
		{4*time.Hour + 30*time.Minute, sighting("c", "d1", sigindex.SourceRecord, "c/crash/r1", "s4", 500, t0.Add(-48*time.Hour))},
	}
	for _, ad := range adds {
		clock = t0.Add(ad.at)
		a, err := x.Add(ctx, ad.s)
		if err != nil {
			t.Fatalf("Add %s: %v", ad.s.Ref, err)
		}
		var added time.Time
		for _, s := range a.Crash.Sightings {
			if s.Ref == ad.s.Ref {
				added = s.Added
			}
		}
		if !added.Equal(clock) {
			t.Errorf("Add %s: Added = %v, want the clock's %v", ad.s.Ref, added, clock)
		}
	}
	sigs := func(x sigindex.Index, host string) map[string]sigindex.Signature {
		t.Helper()
		ss, err := x.Signatures(ctx, sigindex.Query{Host: host})
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]sigindex.Signature{}
		for _, s := range ss {
			m[s.ID] = s
		}
		return m
	}

	// A record removed: its sighting goes, the live copy stays.
	for _, rm := range []struct {
		ref  string
		want bool
	}{{"a/crash/r1", true}, {"a/crash/r1", false}, {"a/crash/r2", true}, {"a/crash/none", false}} {
		if ok, err := x.Remove(ctx, sigindex.SourceRecord, rm.ref); err != nil || ok != rm.want {
			t.Errorf("Remove(%s) = %v, %v; want %v", rm.ref, ok, err, rm.want)
		}
	}
	if ok, err := x.Remove(ctx, sigindex.SourceRecord, "a/b1/kernel.log seq=10"); err != nil || ok {
		t.Errorf("Remove(record, a live ref) = %v, %v; want false (the source is part of the identity)", ok, err)
	}
	cs, err := x.HostCrashes(ctx, "a")
	if err != nil || len(cs) != 1 || len(cs[0].Sightings) != 1 || cs[0].Sightings[0].Source != sigindex.SourceNetconsole {
		t.Fatalf("HostCrashes(a) after removals = %+v, %v; want the one crash with its live copy only", cs, err)
	}
	if !cs[0].Time.Equal(t0.Add(-24 * time.Hour)) {
		t.Errorf("crash a/b1 time = %v, want its live copy's %v", cs[0].Time, t0.Add(-24*time.Hour))
	}
	m := sigs(x, "")
	if _, ok := m["s3"]; ok || len(m) != 3 {
		t.Errorf("Signatures after removals = %v; want s1, s2 and s4 (s3's only crash removed)", m)
	}
	if _, _, err := x.Signature(ctx, "s3", ""); !errors.Is(err, sigindex.ErrNotFound) {
		t.Errorf("Signature(s3) after its record's removal: %v, want ErrNotFound", err)
	}
	if s1 := m["s1"]; s1.Count != 2 || s1.Sample.Ref != "b/crash/r1" || s1.Sample.Report != "" {
		t.Errorf("s1 after removals: count %d, sample %q with %d bytes; want 2, b/crash/r1 (first record left) without text",
			s1.Count, s1.Sample.Ref, len(s1.Sample.Report))
	}

	// Expire by the index's clock: at 00:30 only the live copy added at
	// 00:00 is older.
	if n, err := x.Expire(ctx, t0.Add(30*time.Minute)); err != nil || n != 1 {
		t.Errorf("Expire(00:30) = %d, %v; want 1", n, err)
	}
	if n, err := x.Expire(ctx, t0.Add(30*time.Minute)); err != nil || n != 0 {
		t.Errorf("Expire(00:30) again = %d, %v; want 0", n, err)
	}
	check := func(x sigindex.Index) {
		t.Helper()
		if cs, err := x.HostCrashes(ctx, "a"); err != nil || len(cs) != 0 {
			t.Errorf("HostCrashes(a) after expiry = %+v, %v; want none", cs, err)
		}
		if m := sigs(x, "a"); len(m) != 0 {
			t.Errorf("Signatures(host a) after expiry = %v, want none", m)
		}
		m := sigs(x, "")
		s1 := m["s1"]
		if len(m) != 3 || s1.Count != 1 || len(s1.Hosts) != 1 || s1.Hosts[0] != "b" || m["s4"].Count != 1 {
			t.Errorf("Signatures after expiry = %+v; want s1 (1 crash, on b), s2 and s4 (added last, crashed first)", m)
		}
		if !s1.FirstSeen.Equal(t0.Add(2*time.Hour)) || !s1.LastSeen.Equal(t0.Add(2*time.Hour)) {
			t.Errorf("s1 first/last seen = %v/%v, want both %v (the crash left)", s1.FirstSeen, s1.LastSeen, t0.Add(2*time.Hour))
		}
		if s1.Sample.Ref != "b/crash/r1" {
			t.Errorf("s1 sample = %q, want b/crash/r1", s1.Sample.Ref)
		}
		if s2 := m["s2"]; s2.Sample.Report != "report of b/crash/r2" {
			t.Errorf("s2 sample text = %q, want its report (kept)", s2.Sample.Report)
		}
	}
	check(x)
	if reopen != nil {
		x = reopen(t, x)
		check(x)
	}
	if n, err := x.Expire(ctx, t0.Add(3*time.Hour+30*time.Minute)); err != nil || n != 2 {
		t.Errorf("Expire(03:30) = %d, %v; want 2", n, err)
	}
	if m := sigs(x, ""); len(m) != 1 || m["s4"].Count != 1 {
		t.Errorf("Signatures after Expire(03:30) = %v, want s4 only", m)
	}
	if n, err := x.Expire(ctx, t0.Add(5*time.Hour)); err != nil || n != 1 {
		t.Errorf("Expire(05:00) = %d, %v; want 1", n, err)
	}
	if m := sigs(x, ""); len(m) != 0 {
		t.Errorf("Signatures after all expired = %v, want none", m)
	}
	// Forgotten: the same record indexed again is a new crash of a new
	// signature, not a duplicate.
	clock = t0.Add(5 * time.Hour)
	a, err := x.Add(ctx, adds[2].s)
	if err != nil || a.Duplicate || !a.NewCrash || !a.NewSignature || a.Signature.Count != 1 {
		t.Errorf("Add after expiry = dup %v, new crash %v, new signature %v, count %d, %v; want a new signature of 1",
			a.Duplicate, a.NewCrash, a.NewSignature, a.Signature.Count, err)
	}
}
