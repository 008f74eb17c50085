// Package indextest is the behaviour every sigindex.Index must have, as a
// test any implementation runs against itself (the file journal, the
// PostgreSQL store).
package indextest

import (
	"context"
	"testing"
	"time"

	"github.com/lastgasp/lastgasp/crash/signature"
	"github.com/lastgasp/lastgasp/store/sigindex"
)

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
