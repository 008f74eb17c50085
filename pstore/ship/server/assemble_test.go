package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/lastgasp/lastgasp/pstore/records"
	"github.com/lastgasp/lastgasp/pstore/ship"
	"github.com/lastgasp/lastgasp/store"
)

// efiParts returns the three dmesg-efi records of one panic, shaped like
// efi-pstore's (id ((time*100)+part)*1000+count, "Panic#1 PartN" first).
func efiParts(t *testing.T, dir string) []records.Record {
	t.Helper()
	texts := []string{
		"Panic#1 Part1\n<0>[   12.000003] Kernel panic - not syncing: sysrq triggered crash\n",
		"Panic#1 Part2\n<6>[   11.000001] middle\n",
		"Panic#1 Part3\n<6>[    0.000000] Linux version 6.1.0-28-amd64\n",
	}
	sec := recordTime.Unix()
	var recs []records.Record
	for i, text := range texts {
		name := fmt.Sprintf("dmesg-efi-%d", (sec*100+int64(i+1))*1000+1)
		r := record(t, dir, name, []byte(text))
		r.Type, r.Backend = "dmesg", "efi"
		recs = append(recs, r)
	}
	crashes, _ := records.Crashes(recs)
	if len(crashes) != 1 {
		t.Fatalf("Crashes = %+v, want one", crashes)
	}
	for p, i := range crashes[0].Records {
		recs[i].CrashID, recs[i].Part, recs[i].Parts = crashes[0].ID, p+1, len(crashes[0].Records)
	}
	return recs
}

const wantAssembled = "Panic#1 Part1..3\n<6>[    0.000000] Linux version 6.1.0-28-amd64\n<6>[   11.000001] middle\n" +
	"<0>[   12.000003] Kernel panic - not syncing: sysrq triggered crash\n"

func TestAssembleMultiPart(t *testing.T) {
	s, ts := newServer(t, nil)
	recs := efiParts(t, t.TempDir())
	id := recs[0].CrashID
	assembled := filepath.Join(s.Root, "box-1", "crash", id+".dmesg.txt")
	c := newClient(ts.URL)

	// Parts arrive one by one, out of order; nothing is assembled until
	// the last one is stored.
	for n, i := range []int{2, 0} {
		if _, err := c.Ship(context.Background(), recs[i]); err != nil {
			t.Fatalf("part %d: %v", n, err)
		}
		if _, err := os.Stat(assembled); err == nil {
			t.Fatalf("assembled after %d of 3 parts", n+1)
		}
	}
	// A collector restart in between: it finds the stored parts again.
	s2 := &Server{Root: s.Root, Logf: t.Logf, Now: s.Now}
	ts2 := httptest.NewServer(s2)
	defer ts2.Close()
	ack, err := newClient(ts2.URL).Ship(context.Background(), recs[1])
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(assembled)
	if err != nil {
		t.Fatalf("no assembled text: %v", err)
	}
	if diff := cmp.Diff(wantAssembled, string(got)); diff != "" {
		t.Errorf("assembled (-want +got):\n%s", diff)
	}
	var m ship.Metadata
	b, err := os.ReadFile(filepath.Join(s.Root, filepath.FromSlash(ack.Path)) + ".json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if m.CrashID != id || m.Part != 2 || m.Parts != 3 {
		t.Errorf("metadata crash_id=%q part=%d parts=%d, want %q 2 3", m.CrashID, m.Part, m.Parts, id)
	}
	// The assembled text is not indexed as a record: a fresh index finds
	// the three parts and not the text.
	idx := &store.Records{Root: s.Root}
	for _, r := range recs {
		if _, ok, err := idx.Lookup("box-1", ship.Digest(r.Data)); !ok || err != nil {
			t.Errorf("after restart, part %s not indexed: %v", r.Name, err)
		}
	}
	if _, ok, _ := idx.Lookup("box-1", ship.Digest(got)); ok {
		t.Errorf("after restart, the assembled text is indexed as a record")
	}
}

func TestAssembleRetriedOnDuplicate(t *testing.T) {
	// The seventh temporary file is the assembled text's (two per part
	// before it): fail it, as a full disk would.
	var temps atomic.Int32
	s, ts := newServer(t, func(s *Server) {
		s.CreateTemp = func(dir, pattern string) (File, error) {
			if temps.Add(1) == 7 {
				return nil, syscall.ENOSPC
			}
			return os.CreateTemp(dir, pattern)
		}
	})
	recs := efiParts(t, t.TempDir())
	c := newClient(ts.URL)
	for _, r := range recs {
		if _, err := c.Ship(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	assembled := filepath.Join(s.Root, "box-1", "crash", recs[0].CrashID+".dmesg.txt")
	if _, err := os.Stat(assembled); err == nil {
		t.Fatalf("assembled although its temporary file failed")
	}
	// A resend of any part writes it.
	ack, err := c.Ship(context.Background(), recs[0])
	if err != nil || !ack.Duplicate {
		t.Fatalf("resend = %+v, %v; want a duplicate", ack, err)
	}
	if got, err := os.ReadFile(assembled); err != nil || string(got) != wantAssembled {
		t.Errorf("assembled after resend = %q, %v", got, err)
	}
	if st := s.Stats(); st.Assembled != 1 || st.Truncated != 0 {
		t.Errorf("Stats = %+v, want 1 assembled, none truncated", st)
	}
}

func TestCompressionFlagsInMetadata(t *testing.T) {
	s, ts := newServer(t, nil)
	dir := t.TempDir()
	c := newClient(ts.URL)
	good := record(t, dir, "dmesg-efi-1.enc.z", []byte("Panic#1 Part1\ninflated text\n"))
	good.Decompressed = true
	bad := record(t, dir, "dmesg-efi-2.enc.z", []byte{0x78, 0x9c, 1})
	bad.Compressed, bad.Corrupt = true, true
	for _, tt := range []struct {
		r    records.Record
		want [3]bool // compressed, decompressed, corrupt
	}{{good, [3]bool{false, true, false}}, {bad, [3]bool{true, false, true}}} {
		ack, err := c.Ship(context.Background(), tt.r)
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(s.Root, filepath.FromSlash(ack.Path)) + ".json")
		if err != nil {
			t.Fatal(err)
		}
		var m ship.Metadata
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		if got := [3]bool{m.Compressed, m.Decompressed, m.Corrupt}; got != tt.want || m.RecordName != tt.r.Name {
			t.Errorf("%s: metadata %s, want compressed/decompressed/corrupt %v", tt.r.Name, b, tt.want)
		}
	}
}

func TestBadCrashHeaders(t *testing.T) {
	_, ts := newServer(t, nil)
	digest := ship.Digest([]byte(panicData))
	for _, h := range []map[string]string{
		{ship.HeaderCrashID: "x", ship.HeaderPart: "2", ship.HeaderParts: "1"},
		{ship.HeaderCrashID: "x", ship.HeaderPart: "1"},
		{ship.HeaderCrashID: "../x", ship.HeaderPart: "1", ship.HeaderParts: "1"},
		{ship.HeaderPart: "1", ship.HeaderParts: "1"},
		{ship.HeaderDecompressed: "yes"},
		{ship.HeaderCorrupt: "1"},
	} {
		h[ship.HeaderRecordName] = "dmesg-efi-1"
		resp := put(t, ts.URL+ship.RecordPath("box-1", digest), string(panicData), h)
		if resp.StatusCode != 400 {
			t.Errorf("headers %v: status %d, want 400", h, resp.StatusCode)
		}
	}
}
