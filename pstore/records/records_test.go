package records

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

func TestParseName(t *testing.T) {
	type parsed struct {
		Type, Backend, ID string
		Compressed        bool
	}
	tests := []struct {
		name    string
		in      string
		want    parsed
		wantErr bool
	}{
		{name: "ramoops dmesg", in: "dmesg-ramoops-0", want: parsed{"dmesg", "ramoops", "0", false}},
		{name: "ramoops dmesg 12", in: "dmesg-ramoops-12", want: parsed{"dmesg", "ramoops", "12", false}},
		{name: "console", in: "console-ramoops-0", want: parsed{"console", "ramoops", "0", false}},
		{name: "pmsg", in: "pmsg-ramoops-0", want: parsed{"pmsg", "ramoops", "0", false}},
		{name: "ftrace", in: "ftrace-ramoops-0", want: parsed{"ftrace", "ramoops", "0", false}},
		{name: "efi", in: "dmesg-efi-170000000000101", want: parsed{"dmesg", "efi", "170000000000101", false}},
		{name: "efi_pstore", in: "dmesg-efi_pstore-170000000000101", want: parsed{"dmesg", "efi_pstore", "170000000000101", false}},
		{name: "erst", in: "dmesg-erst-6543210987654321", want: parsed{"dmesg", "erst", "6543210987654321", false}},
		{name: "pstore-blk has a hyphen", in: "dmesg-pstore-blk-3", want: parsed{"dmesg", "pstore-blk", "3", false}},
		{name: "compressed", in: "dmesg-ramoops-1.enc.z", want: parsed{"dmesg", "ramoops", "1", true}},
		{name: "powerpc type has a hyphen", in: "powerpc-ofw-nvram-1", want: parsed{"powerpc-ofw", "nvram", "1", false}},
		{name: "mce", in: "mce-erst-1", want: parsed{"mce", "erst", "1", false}},
		{name: "empty", in: "", wantErr: true},
		{name: "unknown type", in: "foo-ramoops-0", wantErr: true},
		{name: "no id", in: "dmesg-ramoops", wantErr: true},
		{name: "empty id", in: "dmesg-ramoops-", wantErr: true},
		{name: "empty backend", in: "dmesg--0", wantErr: true},
		{name: "id not decimal", in: "dmesg-ramoops-x", wantErr: true},
		{name: "id overflows uint64 text", in: "dmesg-ramoops-123456789012345678901", wantErr: true},
		{name: "slash in backend", in: "dmesg-a/b-0", wantErr: true},
		{name: "only suffix", in: ".enc.z", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			typ, backend, id, compressed, err := ParseName(tt.in)
			if tt.wantErr {
				if !errors.Is(err, ErrBadName) {
					t.Fatalf("ParseName(%q) error = %v, want ErrBadName", tt.in, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseName(%q) = %v", tt.in, err)
			}
			if diff := cmp.Diff(tt.want, parsed{typ, backend, id, compressed}); diff != "" {
				t.Errorf("ParseName(%q) (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

func FuzzParseName(f *testing.F) {
	for _, s := range []string{
		"dmesg-ramoops-0",        // ramoops oops/panic dump
		"console-ramoops-0",      // ramoops console
		"pmsg-ramoops-0",         // userspace pmsg
		"ftrace-ramoops-0",       // function trace
		"dmesg-efi-170000000001", // EFI variables
		"dmesg-erst-1",           // ACPI ERST
		"dmesg-pstore-blk-2",     // block device backend, hyphenated
		"dmesg-ramoops-0.enc.z",  // undecompressible
		"powerpc-opal-nvram-0",   // hyphenated type
		"dmesg--0",               // empty backend
		"x",                      // garbage
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		typ, backend, id, compressed, err := ParseName(name)
		if err != nil {
			if !errors.Is(err, ErrBadName) {
				t.Fatalf("ParseName(%q) error %v does not wrap ErrBadName", name, err)
			}
			return
		}
		// Round trip: the parts rebuild the name the kernel formats
		// with "%s-%s-%llu%s".
		got := typ + "-" + backend + "-" + id
		if compressed {
			got += ".enc.z"
		}
		if got != name {
			t.Fatalf("ParseName(%q) = %q, %q, %q, %v; rebuilds %q", name, typ, backend, id, compressed, got)
		}
		if backend == "" || id == "" || strings.ContainsAny(backend, "/.") {
			t.Fatalf("ParseName(%q): bad parts %q %q", name, backend, id)
		}
	})
}

func writeFile(t *testing.T, path string, data []byte, mtime time.Time) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o444); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, mtime, mtime); err != nil {
		t.Fatal(err)
	}
}

func TestRead(t *testing.T) {
	root := t.TempDir()
	mtime := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	dmesg := []byte("Panic#1 Part1\n<0>[   12.000000] Kernel panic - not syncing: sysrq triggered crash\n")
	writeFile(t, filepath.Join(root, "dmesg-ramoops-0"), dmesg, mtime)
	writeFile(t, filepath.Join(root, "console-ramoops-0"), []byte("console"), mtime)
	writeFile(t, filepath.Join(root, "dmesg-efi-17.enc.z"), []byte{0x78, 0x9c, 1, 2}, mtime)
	writeFile(t, filepath.Join(root, "strange"), []byte{}, mtime)
	writeFile(t, filepath.Join(root, "pmsg-ramoops-0"), make([]byte, 101), mtime) // over the limit
	if err := os.Mkdir(filepath.Join(root, "dir"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("dmesg-ramoops-0", filepath.Join(root, "link")); err != nil {
		t.Fatal(err)
	}

	recs, errs := Read(root, 100)

	if len(errs) != 1 || !errors.Is(errs[0], ErrTooLarge) {
		t.Fatalf("Read errors = %v, want one ErrTooLarge", errs)
	}
	if !strings.Contains(errs[0].Error(), "pmsg-ramoops-0") {
		t.Errorf("error %q does not name the record", errs[0])
	}
	want := []Record{
		{Name: "console-ramoops-0", Type: "console", Backend: "ramoops", ID: "0", Data: []byte("console"), Size: 7},
		{Name: "dmesg-efi-17.enc.z", Type: "dmesg", Backend: "efi", ID: "17", Compressed: true, Data: []byte{0x78, 0x9c, 1, 2}, Size: 4},
		{Name: "dmesg-ramoops-0", Type: "dmesg", Backend: "ramoops", ID: "0", Data: dmesg, Size: int64(len(dmesg))},
		{Name: "pmsg-ramoops-0", Type: "pmsg", Backend: "ramoops", ID: "0", Size: 101},
		{Name: "strange", Data: []byte{}, Size: 0},
	}
	for i := range want {
		want[i].Path = filepath.Join(root, want[i].Name)
		want[i].ModTime = mtime
	}
	if diff := cmp.Diff(want, recs, cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) })); diff != "" {
		t.Errorf("Read (-want +got):\n%s", diff)
	}
	for _, r := range recs {
		if got, want := r.Complete(), r.Name != "pmsg-ramoops-0"; got != want {
			t.Errorf("%s.Complete() = %v, want %v", r.Name, got, want)
		}
	}
	if _, err := os.Stat(filepath.Join(root, "pmsg-ramoops-0")); err != nil {
		t.Errorf("oversized record is gone: %v", err)
	}
}

func TestReadMissingRoot(t *testing.T) {
	recs, errs := Read(filepath.Join(t.TempDir(), "nope"), 100)
	if len(recs) != 0 || len(errs) != 1 || !errors.Is(errs[0], os.ErrNotExist) {
		t.Fatalf("Read(missing) = %v, %v; want no records and one ErrNotExist", recs, errs)
	}
}

func TestReadUnreadable(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root can read a mode 000 file")
	}
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "dmesg-ramoops-0"), []byte("a"), time.Now())
	writeFile(t, filepath.Join(root, "dmesg-ramoops-1"), []byte("b"), time.Now())
	if err := os.Chmod(filepath.Join(root, "dmesg-ramoops-0"), 0); err != nil {
		t.Fatal(err)
	}
	recs, errs := Read(root, 100)
	if len(errs) != 1 || !errors.Is(errs[0], os.ErrPermission) {
		t.Fatalf("Read errors = %v, want one ErrPermission", errs)
	}
	if len(recs) != 2 || recs[0].Complete() || !recs[1].Complete() {
		t.Fatalf("Read = %+v, want the unreadable record incomplete and the other complete", recs)
	}
}

func TestRemove(t *testing.T) {
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "dmesg-ramoops-0"), []byte("a"), time.Now())
	recs, errs := Read(root, 100)
	if len(errs) != 0 || len(recs) != 1 {
		t.Fatalf("Read = %v, %v", recs, errs)
	}
	if err := Remove(recs[0]); err != nil {
		t.Fatalf("Remove = %v", err)
	}
	if _, err := os.Stat(recs[0].Path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("after Remove, Stat = %v", err)
	}
	if err := Remove(recs[0]); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("second Remove = %v, want ErrNotExist", err)
	}
}

func TestPanicLine(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
	}{
		{
			name: "sysrq panic in ramoops dump",
			in: "Panic#1 Part1\n<6>[    0.000000] Linux version 6.1.0-56-amd64\n" +
				"<6>[   12.340000] sysrq: Trigger a crash\n" +
				"<0>[   12.345678] Kernel panic - not syncing: sysrq triggered crash\n" +
				"<4>[   12.345700] CPU: 0 PID: 1 Comm: sh\n",
			want: "Kernel panic - not syncing: sysrq triggered crash",
		},
		{
			name: "BUG before Oops before panic",
			in: "Oops#1 Part1\n<1>[    5.1] BUG: kernel NULL pointer dereference, address: 0000000000000000\n" +
				"<4>[    5.2] Oops: 0002 [#1] PREEMPT SMP NOPTI\n" +
				"<0>[    5.3] Kernel panic - not syncing: Fatal exception\n",
			want: "BUG: kernel NULL pointer dereference, address: 0000000000000000",
		},
		{
			name: "Oops only",
			in:   "[    5.2] Oops: 0000 [#1] SMP\r\n",
			want: "Oops: 0000 [#1] SMP",
		},
		{
			name: "kernel BUG at",
			in:   "<4>[ 1.0] ------------[ cut here ]------------\n<2>[ 1.0] kernel BUG at mm/slub.c:123!\n",
			want: "kernel BUG at mm/slub.c:123!",
		},
		{
			name: "caller id prefix",
			in:   "<0>[   12.345678][    T1] Kernel panic - not syncing: Attempted to kill init!",
			want: "Kernel panic - not syncing: Attempted to kill init!",
		},
		{
			name: "marker inside text does not count",
			in:   "<6>[ 1.0] test: printing Oops: here\n<6>[ 1.0] not a BUG: line\n",
			want: "",
		},
		{name: "Oops header line is not a crash line", in: "Oops#1 Part1\n", want: ""},
		{name: "empty", in: "", want: ""},
		// Found by FuzzPanicLine: the trailing blank of a marker is trimmed.
		{name: "kernel BUG at with nothing after", in: "kernel BUG at ", want: "kernel BUG at"},
		{
			name: "control bytes and bad UTF-8 replaced",
			in:   "<0>[1.0] Kernel panic - not syncing: a\tb\xffc\x00",
			want: "Kernel panic - not syncing: a?b?c?",
		},
		{
			name: "long line cut",
			in:   "BUG: " + strings.Repeat("x", 400),
			want: ("BUG: " + strings.Repeat("x", 400))[:maxPanicLine],
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := PanicLine([]byte(tt.in)); got != tt.want {
				t.Errorf("PanicLine(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func FuzzPanicLine(f *testing.F) {
	for _, s := range []string{
		"<0>[   12.345678] Kernel panic - not syncing: sysrq triggered crash\n", // ramoops dmesg line
		"Oops#1 Part1\n<4>[ 5.2] Oops: 0002 [#1] SMP\n",                         // multipart header then oops
		"[ 1.0] BUG: soft lockup - CPU#0 stuck for 22s!",                        // no trailing newline
		"<2>[ 1.0] kernel BUG at mm/slub.c:1!",                                  // BUG_ON
		"<<<[[[",                                                                // unterminated prefixes
		"BUG: \xff\xfe\x00\t",                                                   // bad bytes
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got := PanicLine(data)
		if got == "" {
			return
		}
		if len(got) > maxPanicLine || !utf8.ValidString(got) || strings.ContainsAny(got, "\n\r\x00\t") {
			t.Fatalf("PanicLine = %q: not a bounded printable line", got)
		}
		marker := ""
		for _, m := range panicMarkers {
			if strings.HasPrefix(got, strings.TrimRight(m, " ")) {
				marker = m
			}
		}
		if marker == "" {
			t.Fatalf("PanicLine = %q: does not start with a marker", got)
		}
		if !strings.Contains(string(data), strings.TrimRight(marker, " ")) {
			t.Fatalf("PanicLine = %q but data has no %q", got, marker)
		}
	})
}

func TestCallTrace(t *testing.T) {
	rec := []byte(`<0>[    3.577734] Kernel panic - not syncing: sysrq triggered crash
<4>[    3.578149] CPU: 0 PID: 1 Comm: init Not tainted 6.1.0-56-amd64 #1  Debian 6.1.192-2
<4>[    3.578990] Call Trace:
<4>[    3.579527]  <TASK>
<4>[    3.579735]  dump_stack_lvl+0x44/0x5c
<4>[    3.580484]  panic+0x118/0x2f4
<4>[    3.580925]  ? _printk+0x68/0x83
<4>[    3.581552]  sysrq_handle_crash+0x16/0x20
<4>[    3.581740]  __handle_sysrq.cold+0x44/0x11c
<4>[    3.590000] RIP: 0033:0x4a1b2c
`)
	got := CallTrace(rec, 3)
	// dump_stack_lvl prints the trace: not a frame of the crash.
	want := []string{"panic+0x118/0x2f4", "sysrq_handle_crash+0x16/0x20", "__handle_sysrq.cold+0x44/0x11c"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("CallTrace() = %q, want %q", got, want)
	}
	if got := CallTrace(rec, 10); len(got) != 3 {
		t.Errorf("CallTrace(10) = %q, want 3 frames ending before RIP", got)
	}
	if got := CallTrace([]byte("no trace here\n"), 3); got != nil {
		t.Errorf("CallTrace(no trace) = %q", got)
	}
}

// arm64Panic is the trace of a real arm64 sysrq panic (Debian
// 6.1.0-57-arm64 on QEMU virt, scenario arm64-panic-roundtrip): the
// unwinder prints return addresses, and sysrq_handle_crash ends in its call
// to panic, so its frame reads as the next function at offset 0.
const arm64Panic = `<0>[    2.640830] Kernel panic - not syncing: sysrq triggered crash
<4>[    2.641090] CPU: 0 PID: 79 Comm: init Not tainted 6.1.0-57-arm64 #1  Debian 6.1.192-3
<4>[    2.641292] Hardware name: linux,dummy-virt (DT)
<4>[    2.641473] Call trace:
<4>[    2.641624]  dump_backtrace+0xe4/0x140
<4>[    2.642100]  show_stack+0x20/0x30
<4>[    2.642215]  dump_stack_lvl+0x64/0x80
<4>[    2.642304]  dump_stack+0x18/0x34
<4>[    2.642387]  panic+0x184/0x364
<4>[    2.642465]  sysrq_reset_seq_param_set+0x0/0xa0
<4>[    2.642955]  __handle_sysrq+0x90/0x19c
<4>[    2.643227]  write_sysrq_trigger+0x7c/0xc8
<4>[    2.643365]  proc_reg_write+0xac/0x100
<4>[    2.643500]  vfs_write+0xdc/0x3a0
<0>[    2.644915] Kernel Offset: 0x52d058400000 from 0xffff800008000000
<0>[    2.645096] PHYS_OFFSET: 0x40000000
`

func TestCallTraceArm64(t *testing.T) {
	tests := []struct {
		name string
		rec  string
		n    int
		want []string
	}{
		{"real sysrq panic", arm64Panic, 4,
			[]string{"panic+0x184/0x364", "before:sysrq_reset_seq_param_set+0x0/0xa0", "__handle_sysrq+0x90/0x19c", "write_sysrq_trigger+0x7c/0xc8"}},
		{"to the end of the trace", arm64Panic, 20,
			[]string{"panic+0x184/0x364", "before:sysrq_reset_seq_param_set+0x0/0xa0", "__handle_sysrq+0x90/0x19c", "write_sysrq_trigger+0x7c/0xc8", "proc_reg_write+0xac/0x100", "vfs_write+0xdc/0x3a0"}},
		// An interrupted context's registers inside the trace.
		{"registers", "Call trace:\n f+0x10/0x20 [mod]\npc : g+0x4/0x8\nlr : h+0x4/0x8\n i+0x4/0x8\n", 4,
			[]string{"f+0x10/0x20", "i+0x4/0x8"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := CallTrace([]byte(tt.rec), tt.n); strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Errorf("CallTrace() = %q, want %q", got, tt.want)
			}
		})
	}
}

func FuzzCallTrace(f *testing.F) {
	f.Add([]byte("Call Trace:\n <TASK>\n a+0x1/0x2\n"), 3)
	f.Add([]byte(arm64Panic), 4)
	f.Fuzz(func(t *testing.T, data []byte, n int) {
		if n > 64 {
			n = 64
		}
		got := CallTrace(data, n)
		if len(got) > n && n >= 0 {
			t.Fatalf("%d frames, asked for %d", len(got), n)
		}
	})
}

// TestCapturedQEMURecord reads a real ramoops record captured from a QEMU
// run of the panic-roundtrip scenario (Debian 6.1, sysrq crash).
func TestCapturedQEMURecord(t *testing.T) {
	recs, errs := Read("testdata/qemu", 4<<20)
	if len(errs) != 0 || len(recs) != 1 {
		t.Fatalf("Read() = %d records, errors %v", len(recs), errs)
	}
	r := recs[0]
	if r.Type != "dmesg" || r.Backend != "ramoops" || r.ID != "0" || r.Compressed || !r.Complete() {
		t.Errorf("record = %+v", r)
	}
	if got, want := PanicLine(r.Data), "Kernel panic - not syncing: sysrq triggered crash"; got != want {
		t.Errorf("PanicLine() = %q, want %q", got, want)
	}
	trace := CallTrace(r.Data, 8)
	if !slices.Contains(trace, "sysrq_handle_crash+0x16/0x20") {
		t.Errorf("CallTrace() = %q, want it to contain sysrq_handle_crash", trace)
	}
}
