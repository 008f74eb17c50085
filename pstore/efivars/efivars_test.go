package efivars

import (
	"compress/gzip"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseDumpName(t *testing.T) {
	tests := []struct {
		name    string
		want    Dump
		wantErr bool
	}{
		// Names captured from an OVMF VARS file after a panic (Linux 6.1).
		{name: "dump-type0-1-1-1796173176-C", want: Dump{Type: 0, Part: 1, Count: 1, Time: 1796173176, Compressed: true}},
		{name: "dump-type0-14-1-1796173177-C", want: Dump{Type: 0, Part: 14, Count: 1, Time: 1796173177, Compressed: true}},
		// The older form without the data type (efi_pstore_read_func's second sscanf).
		{name: "dump-type0-2-1-1389294950", want: Dump{Part: 2, Count: 1, Time: 1389294950}},
		{name: "dump-type0-3-0-1389294950-D", want: Dump{Part: 3, Time: 1389294950}},
		{name: "dump-type0-1-1-1389294950-X", wantErr: true},
		{name: "dump-type0-1-1", wantErr: true},
		{name: "dump-typeA-1-1-1-C", wantErr: true},
		{name: "Boot0000", wantErr: true},
		{name: "dump-type0-1-1-99999999999999999999-C", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseDumpName(tt.name)
			if (err != nil) != tt.wantErr {
				t.Fatalf("ParseDumpName(%q) error = %v, want error %v", tt.name, err, tt.wantErr)
			}
			if err != nil {
				if !errors.Is(err, ErrBadName) {
					t.Errorf("error %v does not wrap ErrBadName", err)
				}
				return
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseDumpName(%q) (-want +got):\n%s", tt.name, diff)
			}
		})
	}
}

// The pstore id of an efi record: (time*100+part)*1000+count
// (efi-pstore.c, generic_id). dmesg-efi-179617317601001 is part 1 of the
// capture above.
func TestPstoreNames(t *testing.T) {
	d, err := ParseDumpName("dump-type0-1-1-1796173176-C")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"dmesg-efi-179617317601001", "dmesg-efi-179617317601001.enc.z"}
	if diff := cmp.Diff(want, d.PstoreNames()); diff != "" {
		t.Errorf("PstoreNames (-want +got):\n%s", diff)
	}
}

func FuzzParseDumpName(f *testing.F) {
	for _, s := range []string{"dump-type0-1-1-1796173176-C", "dump-type0-2-1-1389294950", "dump-type0-3-0-1-D", "dump-type--", "dump-type0-1-1-1-C-"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDumpName(s)
		if err != nil {
			return
		}
		// Round trip: the 6.1 form parses back to the same values.
		d2, err := ParseDumpName(d.Format())
		if err != nil || d2 != d {
			t.Fatalf("ParseDumpName(%q) = %+v; Format %q parses to %+v, %v", s, d, d.Format(), d2, err)
		}
	})
}

func TestParseEntry(t *testing.T) {
	tests := []struct {
		file, name, guid string
		ok               bool
	}{
		{"dump-type0-1-1-1796173176-C-cfc8fc79-be2e-4ddc-97f0-9f98bfe298a0", "dump-type0-1-1-1796173176-C", CrashGUID, true},
		{"BootOrder-8be4df61-93ca-11d2-aa0d-00e098032b8c", "BootOrder", "8be4df61-93ca-11d2-aa0d-00e098032b8c", true},
		{"Boot-8BE4DF61-93CA-11D2-AA0D-00E098032B8C", "Boot", "8be4df61-93ca-11d2-aa0d-00e098032b8c", true},
		{"-8be4df61-93ca-11d2-aa0d-00e098032b8c", "", "", false},
		{"BootOrder", "", "", false},
		{"x-8be4df61x93ca-11d2-aa0d-00e098032b8c", "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			name, guid, ok := ParseEntry(tt.file)
			if name != tt.name || guid != tt.guid || ok != tt.ok {
				t.Errorf("ParseEntry(%q) = %q, %q, %v, want %q, %q, %v", tt.file, name, guid, ok, tt.name, tt.guid, tt.ok)
			}
		})
	}
}

func FuzzParseEntry(f *testing.F) {
	f.Add("dump-type0-1-1-1796173176-C-cfc8fc79-be2e-4ddc-97f0-9f98bfe298a0")
	f.Add("a-00000000-0000-0000-0000-000000000000")
	f.Fuzz(func(t *testing.T, s string) {
		name, guid, ok := ParseEntry(s)
		if ok && !strings.EqualFold(name+"-"+guid, s) {
			t.Fatalf("ParseEntry(%q) = %q, %q: does not put back together", s, name, guid)
		}
	})
}

// capture is the 14 parts of one panic as OVMF stored them (names and data
// sizes read from the VARS file): parts 1-10 in one second, 11-14 in the
// next.
var capture = []Var{
	{"dump-type0-1-1-1796173176-C", CrashGUID, 639}, {"dump-type0-2-1-1796173176-C", CrashGUID, 849},
	{"dump-type0-3-1-1796173176-C", CrashGUID, 774}, {"dump-type0-4-1-1796173176-C", CrashGUID, 913},
	{"dump-type0-5-1-1796173176-C", CrashGUID, 863}, {"dump-type0-6-1-1796173176-C", CrashGUID, 984},
	{"dump-type0-7-1-1796173176-C", CrashGUID, 705}, {"dump-type0-8-1-1796173176-C", CrashGUID, 861},
	{"dump-type0-9-1-1796173176-C", CrashGUID, 597}, {"dump-type0-10-1-1796173176-C", CrashGUID, 368},
	{"dump-type0-11-1-1796173177-C", CrashGUID, 847}, {"dump-type0-12-1-1796173177-C", CrashGUID, 737},
	{"dump-type0-13-1-1796173177-C", CrashGUID, 815}, {"dump-type0-14-1-1796173177-C", CrashGUID, 748},
}

// shifted is the same crash written dt seconds later.
func shifted(vs []Var, dt uint64) []Var {
	var out []Var
	for _, v := range vs {
		d, _ := ParseDumpName(v.Name)
		d.Time += dt
		out = append(out, Var{d.Format(), v.GUID, v.DataSize})
	}
	return out
}

func names(cs []Crash) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Name)
	}
	return out
}

func TestCrashesOrder(t *testing.T) {
	other := Var{"BootOrder", "8be4df61-93ca-11d2-aa0d-00e098032b8c", 2}
	fake := Var{"dump-type0-1-1-1796173176-C", "00000000-0000-0000-0000-000000000000", 10} // not pstore's GUID
	older := capture[:3]
	newer := shifted(capture[:3], 600)
	vars := append(append(append([]Var{other, fake}, newer[2], newer[0]), older...), newer[1])
	want := []string{
		"dump-type0-1-1-1796173776-C", "dump-type0-2-1-1796173776-C", "dump-type0-3-1-1796173776-C",
		"dump-type0-1-1-1796173176-C", "dump-type0-2-1-1796173176-C", "dump-type0-3-1-1796173176-C",
	}
	if diff := cmp.Diff(want, names(Crashes(vars))); diff != "" {
		t.Errorf("Crashes (-want +got):\n%s", diff)
	}
	// One crash across a second boundary stays one crash, part 1 first.
	got := names(Crashes(capture))
	if got[0] != "dump-type0-1-1-1796173176-C" || got[13] != "dump-type0-14-1-1796173177-C" {
		t.Errorf("Crashes(capture) = %v, want parts 1..14 in order", got)
	}
}

func TestCharge(t *testing.T) {
	// Charges read from the captured VARS file (variable header to the
	// next header): CustomMode (1 byte) 84, dump-type0-1-1-1796173121-C
	// (626 bytes) 744, dump-type0-10-1-1796173121-C (464 bytes) 584.
	tests := []struct {
		v    Var
		want int64
	}{
		{Var{Name: "CustomMode", DataSize: 1}, 84},
		{Var{Name: "dump-type0-1-1-1796173121-C", DataSize: 626}, 744},
		{Var{Name: "dump-type0-10-1-1796173121-C", DataSize: 464}, 584},
	}
	for _, tt := range tests {
		if got := tt.v.Charge(); got != tt.want {
			t.Errorf("Charge(%s, %d) = %d, want %d", tt.v.Name, tt.v.DataSize, got, tt.want)
		}
	}
	// The measured crash (12,364 bytes charged) fits the bound for the
	// default kmsg_bytes.
	var sum int64
	for _, v := range capture {
		sum += v.Charge()
	}
	if nc := NextCrash(10240, RecordSize); sum > nc {
		t.Errorf("captured crash charges %d bytes, more than NextCrash(10240) = %d", sum, nc)
	}
}

func TestPlan(t *testing.T) {
	a, b, c := capture, shifted(capture, 600), shifted(capture, 1200) // c newest

	tests := []struct {
		name      string
		pol       Policy
		vars      []Var
		wantKeep  int
		wantFirst string // first dropped
	}{
		{"all fit", Policy{StoreSize: 262072, Share: 50, NextCrash: NextCrash(10240, 1024)}, append(append([]Var{}, a...), b...), 28, ""},
		{"room for one crash and the next", Policy{StoreSize: 100000, Share: 27, NextCrash: 14000}, append(append(append([]Var{}, a...), c...), b...), 14, "dump-type0-1-1-1796173776-C"},
		{"a part of the newest crash only", Policy{StoreSize: 100000, Share: 20, NextCrash: 14000}, append([]Var{}, c...), 6, "dump-type0-7-1-1796174376-C"},
		{"nothing fits", Policy{StoreSize: 100000, Share: 14, NextCrash: 14000}, append([]Var{}, a...), 0, "dump-type0-1-1-1796173176-C"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keep, drop := tt.pol.Plan(Crashes(tt.vars))
			if len(keep) != tt.wantKeep {
				t.Fatalf("kept %d (%v), want %d", len(keep), names(keep), tt.wantKeep)
			}
			if Sum(keep) > tt.pol.Keep() {
				t.Errorf("kept %d bytes, more than Keep() = %d", Sum(keep), tt.pol.Keep())
			}
			if tt.wantFirst != "" && (len(drop) == 0 || drop[0].Name != tt.wantFirst) {
				t.Errorf("dropped %v, want first %s", names(drop), tt.wantFirst)
			}
			for _, k := range keep {
				for _, d := range drop {
					if d.Time > k.Time+1 {
						t.Errorf("dropped %s, newer than kept %s", d.Name, k.Name)
					}
				}
			}
		})
	}
}

func TestPolicyValidate(t *testing.T) {
	if err := (Policy{StoreSize: 262072, Share: 50, NextCrash: 14351}).Validate(); err != nil {
		t.Errorf("OVMF 50%%: %v", err)
	}
	if err := (Policy{StoreSize: 262072, Share: 5, NextCrash: 14351}).Validate(); err == nil {
		t.Errorf("5%% of 262072 (13103) holds less than one crash: want an error")
	}
	if err := (Policy{Share: 50, NextCrash: 1}).Validate(); err == nil {
		t.Errorf("unknown store size: want an error")
	}
}

func readGz(t testing.TB, name string) []byte {
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(z)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestParseStore reads VARS files OVMF wrote (Debian's OVMF_VARS_4M.fd
// after boots of the EFI board): 262,072 bytes of store, its own
// variables, and pstore's.
func TestParseStore(t *testing.T) {
	tests := []struct {
		file                            string
		wantLiveDumps, wantDeletedDumps int
	}{
		// After the boot that shipped and deleted all 14 parts: the
		// bytes are still there, marked deleted.
		// Right after a panic (the first boot of pstore-efi-coldboot): 14
		// live parts.
		{"ovmf-vars-after-panic.fd.gz", 14, 0},
		{"ovmf-vars-after-ship.fd.gz", 0, 14},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			s, err := ParseStore(readGz(t, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if s.Size != 262072 {
				t.Errorf("Size = %d, want 262072", s.Size)
			}
			live, deleted := 0, 0
			sawCustomMode := false
			for _, v := range s.Vars {
				if v.Name == "CustomMode" && v.GUID == "c076ec0c-7028-4399-a072-71ee5c448b9f" && v.Live {
					sawCustomMode = true
				}
				if _, err := ParseDumpName(v.Name); err != nil || v.GUID != CrashGUID {
					continue
				}
				if v.Live {
					live++
				} else {
					deleted++
				}
			}
			if !sawCustomMode {
				t.Errorf("no live CustomMode variable (OVMF's first)")
			}
			if live != tt.wantLiveDumps || deleted != tt.wantDeletedDumps {
				t.Errorf("pstore variables live=%d deleted=%d, want %d/%d", live, deleted, tt.wantLiveDumps, tt.wantDeletedDumps)
			}
		})
	}
}

func TestParseStoreBad(t *testing.T) {
	good := readGz(t, "ovmf-vars-after-ship.fd.gz")
	tests := map[string][]byte{
		"empty":     nil,
		"no FV":     make([]byte, 4096),
		"truncated": good[:0x50],
	}
	for name, b := range tests {
		if _, err := ParseStore(b); !errors.Is(err, ErrBadStore) {
			t.Errorf("%s: err = %v, want ErrBadStore", name, err)
		}
	}
}

func FuzzParseStore(f *testing.F) {
	good := readGz(f, "ovmf-vars-after-ship.fd.gz")
	f.Add(good[:4096])
	f.Add(good[:0x64])
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseStore(b)
		if err != nil {
			return
		}
		for _, v := range s.Vars {
			if v.Offset < 0 || v.Offset+int(v.Charge) > len(b) || v.Charge <= 0 {
				t.Fatalf("variable %q at %d charge %d outside %d bytes", v.Name, v.Offset, v.Charge, len(b))
			}
		}
	})
}
