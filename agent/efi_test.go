package agent

import (
	"bytes"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/lastgasp/lastgasp/boards"
	"github.com/lastgasp/lastgasp/pstore/efivars"
)

// efiTree is a fake efivarfs listing and pstore mount: efivarfs files are
// <name>-<guid> holding 4 attribute bytes and the data; each pstore
// variable also has its dmesg-efi-<id> file (ids: efi-pstore's generic_id).
type efiTree struct {
	p efiPaths
}

func newEFITree(t *testing.T) *efiTree {
	d := t.TempDir()
	p := efiPaths{Firmware: d, Efivars: filepath.Join(d, "efivars"), Pstore: filepath.Join(d, "pstore"),
		KmsgBytes: filepath.Join(d, "kmsg_bytes")}
	for _, dir := range []string{p.Efivars, p.Pstore} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(p.KmsgBytes, []byte("10240\n"), 0o644)
	return &efiTree{p: p}
}

func (e *efiTree) variable(t *testing.T, name, guid string, size int) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(e.p.Efivars, name+"-"+guid), make([]byte, 4+size), 0o644); err != nil {
		t.Fatal(err)
	}
}

// crash writes one crash as the kernel does: parts 1..n of 900 bytes at
// time sec, each a variable and a pstore file with its id.
func (e *efiTree) crash(t *testing.T, sec uint64, n int) {
	for p := 1; p <= n; p++ {
		d := efivars.Dump{Part: uint32(p), Count: 1, Time: sec, Compressed: true}
		e.variable(t, d.Format(), efivars.CrashGUID, 900)
		if err := os.WriteFile(filepath.Join(e.p.Pstore, d.PstoreNames()[0]), []byte("Panic#1 Part1\n"), 0o444); err != nil {
			t.Fatal(err)
		}
	}
}

func (e *efiTree) pstoreLeft() []string {
	ents, _ := os.ReadDir(e.p.Pstore)
	var out []string
	for _, x := range ents {
		out = append(out, x.Name())
	}
	sort.Strings(out)
	return out
}

func TestEFIHygiene(t *testing.T) {
	const bootOrderGUID = "8be4df61-93ca-11d2-aa0d-00e098032b8c"
	tests := []struct {
		name        string
		share       int
		storeSize   uint64
		setup       func(t *testing.T, e *efiTree)
		wantState   string
		wantDropped int
		wantLeft    []string // pstore files left
		wantLine    string   // in the log
	}{
		{
			name: "within the share: nothing dropped", share: 50, storeSize: 262072,
			setup:     func(t *testing.T, e *efiTree) { e.crash(t, 1796173176, 3) },
			wantState: "ok",
			wantLeft:  []string{"dmesg-efi-179617317601001", "dmesg-efi-179617317602001", "dmesg-efi-179617317603001"},
		},
		{
			// limit 20% of 100000 = 20000, less the next crash (14351):
			// 5649 bytes for old records, 5 parts of 1020 bytes charged.
			name: "over the share: the oldest crash goes, the newest parts stay", share: 20, storeSize: 100000,
			setup: func(t *testing.T, e *efiTree) {
				e.crash(t, 1796170000, 4) // older
				e.crash(t, 1796173176, 6) // newer
			},
			wantState: "ok", wantDropped: 5,
			wantLeft: []string{"dmesg-efi-179617317601001", "dmesg-efi-179617317602001", "dmesg-efi-179617317603001",
				"dmesg-efi-179617317604001", "dmesg-efi-179617317605001"},
			wantLine: "efi: dropped 5 crash record variables",
		},
		{
			// Someone else's variables fill the store: a clear line,
			// their variables and lastgasp's (within the share) stay.
			name: "store already full of other variables", share: 50, storeSize: 40000,
			setup: func(t *testing.T, e *efiTree) {
				e.crash(t, 1796173176, 2)
				for i := range 30 {
					e.variable(t, "Vendor"+strings.Repeat("x", i), bootOrderGUID, 1000)
				}
			},
			wantState: "full",
			wantLeft:  []string{"dmesg-efi-179617317601001", "dmesg-efi-179617317602001"},
			wantLine:  "efi: variable store full",
		},
		{
			// A variable under pstore's GUID whose name is not pstore's,
			// and a dump-type name under another GUID: not lastgasp's.
			name: "lookalikes are not touched", share: 20, storeSize: 100000,
			setup: func(t *testing.T, e *efiTree) {
				e.variable(t, "dump-type0-1-1-1000-C", "00000000-0000-0000-0000-000000000000", 1000)
				e.variable(t, "Notes", efivars.CrashGUID, 1000)
				os.WriteFile(filepath.Join(e.p.Pstore, "dmesg-efi-100001001"), []byte("x"), 0o444)
			},
			wantState: "ok",
			wantLeft:  []string{"dmesg-efi-100001001"},
		},
		{
			name: "share too small for one crash: error, nothing deleted", share: 5, storeSize: 100000,
			setup:     func(t *testing.T, e *efiTree) { e.crash(t, 1796173176, 2) },
			wantState: "error",
			wantLeft:  []string{"dmesg-efi-179617317601001", "dmesg-efi-179617317602001"},
			wantLine:  "less than one crash",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEFITree(t)
			tt.setup(t, e)
			var log bytes.Buffer
			a := &agent{Config: defaultConfig(), Log: openKmsg(filepath.Join(t.TempDir(), "no-kmsg"), &log)}
			b := boards.Defaults()
			b.EFI = boards.EFI{MaxShare: tt.share, StoreSize: tt.storeSize}
			r := a.efiHygiene(&b, e.p)
			t.Logf("log:\n%s", log.String())
			if r.State != tt.wantState || r.Dropped != tt.wantDropped {
				t.Errorf("efiHygiene = %+v, want state %s dropped %d", r, tt.wantState, tt.wantDropped)
			}
			if r.Bytes > r.Limit && r.State != "error" {
				t.Errorf("kept %d bytes, over the limit %d", r.Bytes, r.Limit)
			}
			if diff := cmp.Diff(tt.wantLeft, e.pstoreLeft()); diff != "" {
				t.Errorf("pstore files left (-want +got):\n%s", diff)
			}
			if tt.wantLine != "" && !strings.Contains(log.String(), tt.wantLine) {
				t.Errorf("log lacks %q", tt.wantLine)
			}
			if !strings.Contains(r.String(), "efi="+tt.wantState) {
				t.Errorf("summary %q lacks efi=%s", r, tt.wantState)
			}
		})
	}
}

func TestEFIHygieneOff(t *testing.T) {
	var log bytes.Buffer
	a := &agent{Config: defaultConfig(), Log: openKmsg(filepath.Join(t.TempDir(), "no-kmsg"), &log)}
	b := boards.Defaults()
	if r := a.efiHygiene(&b, efiPaths{Firmware: "/nonexistent"}); r.String() != "efi=off" {
		t.Errorf("board without efi.max_share: %q, want efi=off", r)
	}
	b.EFI.MaxShare = 50
	if r := a.efiHygiene(&b, efiPaths{Firmware: filepath.Join(t.TempDir(), "none")}); r.String() != "efi=none" {
		t.Errorf("not booted by UEFI: %q, want efi=none", r)
	}
}
