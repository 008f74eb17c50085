package signature

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// reports are real reports captured from the QEMU guests (stock Debian 6.1
// kernel; scripts/e2e scenario crash-kinds): the expected titles are the
// kernel's own format strings with the normalisation applied, and the
// frames are read off each report's call trace by hand.
var reports = []struct {
	file   string
	kind   Kind
	title  string
	frames []string
}{
	{"sysrq-1", KindPanic, "Kernel panic - not syncing: sysrq triggered crash",
		[]string{"sysrq_handle_crash", "__handle_sysrq", "write_sysrq_trigger", "proc_reg_write"}},
	// Another host, another kernel release (6.1.0-57), another PID and
	// comm: the same signature.
	{"sysrq-2", KindPanic, "Kernel panic - not syncing: sysrq triggered crash",
		[]string{"sysrq_handle_crash", "__handle_sysrq", "write_sysrq_trigger", "proc_reg_write"}},
	// QEMU's monitor "nmi" with kernel.unknown_nmi_panic=1; the record
	// also holds the agent's summary of the previous crash, quoting its
	// panic line, which must not be taken for this one.
	{"nmi-1", KindPanic, "Kernel panic - not syncing: NMI: Not continuing",
		[]string{"unknown_nmi_error", "exc_nmi", "end_repeat_nmi"}},
	// A second NMI, another boot: the same signature.
	{"nmi-2", KindPanic, "Kernel panic - not syncing: NMI: Not continuing",
		[]string{"unknown_nmi_error", "exc_nmi", "end_repeat_nmi"}},
	// kernel.hung_task_panic=1, a task in D state writing back to a
	// throttled disk: the panic's reason is generic, so the title is the
	// hung task's line, and the frames its trace (not khungtaskd's).
	{"hung-1", KindHungTask, "INFO: task sh:N blocked for more than N seconds.",
		[]string{"io_schedule", "folio_wait_bit_common", "folio_wait_writeback", "__filemap_fdatawait_range"}},
	// vm.panic_on_oom=1: the title is the panic, not the oom-killer
	// report before it, and the frames are the panic's trace.
	{"oom-1", KindPanic, "Kernel panic - not syncing: Out of memory: system-wide panic_on_oom is enabled",
		[]string{"out_of_memory", "__alloc_pages_slowpath", "__alloc_pages", "__folio_alloc"}},
	// arm64 (Debian 6.1.0-57-arm64 on QEMU virt, scripts/e2e scenario
	// arm64-panic-roundtrip): "Call trace:", frames without "[<addr>]",
	// and dump_backtrace/show_stack/dump_stack above panic. The kernel
	// prints return addresses: sysrq_handle_crash ends in its call to
	// panic, so its return address is the next function's first byte,
	// "sysrq_reset_seq_param_set+0x0/0xa0", the caller's frame.
	{"arm64-sysrq-1", KindPanic, "Kernel panic - not syncing: sysrq triggered crash",
		[]string{"before:sysrq_reset_seq_param_set", "__handle_sysrq", "write_sysrq_trigger", "proc_reg_write"}},
}

func readReport(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "qemu", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestExtractReal(t *testing.T) {
	ids := map[string]string{} // id -> kind of report file prefix
	for _, r := range reports {
		t.Run(r.file, func(t *testing.T) {
			sig, ok := Extract(readReport(t, r.file))
			if !ok {
				t.Fatalf("Extract found no report")
			}
			if sig.Kind != r.kind || sig.Title != r.title {
				t.Errorf("Extract = %s %q, want %s %q", sig.Kind, sig.Title, r.kind, r.title)
			}
			if strings.Join(sig.Frames, " ") != strings.Join(r.frames, " ") {
				t.Errorf("frames = %q, want %q", sig.Frames, r.frames)
			}
			if sig.Cut {
				t.Errorf("a whole record reads as cut short")
			}
			if want := MakeID(r.title, r.frames); sig.ID != want {
				t.Errorf("ID = %s, want %s", sig.ID, want)
			}
			cause, _, _ := strings.Cut(r.file, "-")
			if other, ok := ids[sig.ID]; ok && other != cause {
				t.Errorf("%s has the signature of %s", r.file, other)
			}
			ids[sig.ID] = cause
		})
	}
}

// TestExtractCut: a report whose text ends inside it (a console tail
// copied while the panic was printed) is marked Cut while it has fewer
// than MaxFrames frames; cut after them, its signature is the whole one.
func TestExtractCut(t *testing.T) {
	lines := strings.SplitAfter(string(readReport(t, "sysrq-1")), "\n")
	upTo := func(n int) []byte { return []byte(strings.Join(lines[:n], "")) } // lines 1..n
	whole, _ := Extract(upTo(len(lines)))
	for _, tc := range []struct {
		name   string
		n      int // the text's last line (1-based, see testdata/qemu/sysrq-1)
		cut    bool
		frames int
	}{
		{name: "ends at the title", n: 405, cut: true},
		{name: "ends at Call Trace:", n: 408, cut: true},
		{name: "ends after two frames", n: 414, cut: true, frames: 2},
		{name: "ends after four frames", n: 416, frames: 4},
		{name: "ends at </TASK>", n: 436, frames: 4},
		{name: "whole", n: len(lines), frames: 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sig, ok := Extract(upTo(tc.n))
			if !ok || sig.Cut != tc.cut || len(sig.Frames) != tc.frames {
				t.Fatalf("Extract = %v cut=%v frames %q, want cut=%v and %d frames", ok, sig.Cut, sig.Frames, tc.cut, tc.frames)
			}
			if !tc.cut && sig.ID != whole.ID {
				t.Errorf("ID %s, the whole report's is %s", sig.ID, whole.ID)
			}
		})
	}
}

// TestExtractNetconsole: the same report read from netconsole lines (one
// message a line, no "<level>" prefix, the timestamp as the live path
// writes it) has the same signature and title timestamp as the record.
func TestExtractNetconsole(t *testing.T) {
	rec := readReport(t, "sysrq-1")
	var live bytes.Buffer
	re := regexp.MustCompile(`^<[0-9]+>`)
	for _, l := range strings.Split(string(rec), "\n") {
		live.WriteString(re.ReplaceAllString(l, "") + "\n")
	}
	a, _ := Extract(rec)
	b, ok := Extract(live.Bytes())
	if !ok || a.ID != b.ID || a.TitleUsec != b.TitleUsec || a.TitleUsec != 3217581 {
		t.Errorf("record %s usec %d, netconsole %s usec %d; want one ID and usec 3217581", a.ID, a.TitleUsec, b.ID, b.TitleUsec)
	}
}

func TestNormalizeTitle(t *testing.T) {
	tests := []struct {
		kind     Kind
		in, want string
	}{
		// Formats from kernel/panic.c (__warn), arch/x86/mm/fault.c,
		// arch/x86/kernel/dumpstack.c (__die_header), lib/bug.c and
		// kernel/hung_task.c.
		{KindWarning, "WARNING: CPU: 1 PID: 4242 at mm/page_alloc.c:5534 __alloc_pages+0x2bd/0x330",
			"WARNING: CPU: N PID: N at mm/page_alloc.c:LINE __alloc_pages"},
		{KindBUG, "BUG: kernel NULL pointer dereference, address: 0000000000000008",
			"BUG: kernel NULL pointer dereference, address: X"},
		{KindOops, "Oops: 0002 [#3] PREEMPT SMP NOPTI", "Oops: 0002 [#N] PREEMPT SMP NOPTI"},
		{KindBUG, "kernel BUG at mm/slub.c:431!", "kernel BUG at mm/slub.c:LINE!"},
		{KindHungTask, "INFO: task cat:77 blocked for more than 122 seconds.", "INFO: task cat:N blocked for more than N seconds."},
		{KindPanic, "Kernel panic - not syncing: Attempted to kill init! exitcode=0x0000000b",
			"Kernel panic - not syncing: Attempted to kill init! exitcode=X"},
	}
	for _, tt := range tests {
		if got := normalizeTitle(tt.kind, tt.in); got != tt.want {
			t.Errorf("normalizeTitle(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestExtractChoosesCause: a panic whose reason only says an earlier
// report made it panic takes that report's title; a BUG line before its
// Oops line wins.
func TestExtractChoosesCause(t *testing.T) {
	text := strings.Join([]string{
		"<4>[   10.000000] WARNING: CPU: 0 PID: 1 at fs/old.c:1 old_warning+0x1/0x2", // an older, unrelated report
		"<1>[   20.000001] BUG: kernel NULL pointer dereference, address: 0000000000000000",
		"<1>[   20.000002] #PF: supervisor write access in kernel mode",
		"<4>[   20.000003] Oops: 0002 [#1] PREEMPT SMP NOPTI",
		"<4>[   20.000004] Call Trace:",
		"<4>[   20.000005]  <TASK>",
		"<4>[   20.000006]  ? page_fault_oops+0x1/0x2",
		"<4>[   20.000007]  my_driver_write.cold+0x10/0x20 [mydrv]",
		"<4>[   20.000008]  vfs_write+0xc7/0x3f0",
		"<4>[   20.000009]  </TASK>",
		"<0>[   20.000010] Kernel panic - not syncing: Fatal exception",
	}, "\n")
	sig, ok := Extract([]byte(text))
	if !ok || sig.Title != "BUG: kernel NULL pointer dereference, address: X" || strings.Join(sig.Frames, ",") != "my_driver_write,vfs_write" || sig.TitleUsec != 20000001 {
		t.Errorf("Extract = %+v", sig)
	}
}

// TestExtractArm64 covers what the arm64 kernel prints around an oops
// (arch/arm64/mm/fault.c die_kernel_fault and __do_kernel_fault,
// arch/arm64/kernel/traps.c __die, arch/arm64/kernel/stacktrace.c
// dump_backtrace; the layout of a 6.1 report): the register dump's
// pc/lr lines are not frames, a faulting pc at a function's first byte is
// that function, a later "+0x0" frame is a return past a call that does
// not return, and module frames carry "[module]".
func TestExtractArm64(t *testing.T) {
	oops := func(pc string, trace ...string) string {
		return strings.Join(append([]string{
			"<1>[   12.000001] Unable to handle kernel NULL pointer dereference at virtual address 0000000000000008",
			"<1>[   12.000002] Mem abort info:",
			"<1>[   12.000003]   ESR = 0x0000000096000045",
			"<1>[   12.000004]   EC = 0x25: DABT (current EL), IL = 32 bits",
			"<1>[   12.000005]   SET = 0, FnV = 0",
			"<1>[   12.000006]   EA = 0, S1PTW = 0",
			"<1>[   12.000007]   FSC = 0x05: level 1 translation fault",
			"<1>[   12.000008] Data abort info:",
			"<1>[   12.000009]   ISV = 0, ISS = 0x00000045",
			"<1>[   12.000010]   CM = 0, WnR = 1",
			"<1>[   12.000011] user pgtable: 4k pages, 48-bit VAs, pgdp=0000000041a6b000",
			"<1>[   12.000012] [0000000000000008] pgd=0000000000000000, p4d=0000000000000000",
			"<0>[   12.000013] Internal error: Oops: 0000000096000045 [#1] SMP",
			"<4>[   12.000014] Modules linked in: mydrv(E) netconsole configfs",
			"<4>[   12.000015] CPU: 0 PID: 77 Comm: sh Tainted: G            E      6.1.0-57-arm64 #1  Debian 6.1.192-3",
			"<4>[   12.000016] Hardware name: linux,dummy-virt (DT)",
			"<4>[   12.000017] pstate: 60400005 (nZCv daif +PAN -UAO -TCO -DIT -SSBS BTYPE=--)",
			"<4>[   12.000018] pc : " + pc,
			"<4>[   12.000019] lr : vfs_write+0xdc/0x3a0",
			"<4>[   12.000020] sp : ffff80000a4b3d50",
			"<4>[   12.000021] x29: ffff80000a4b3d50 x28: ffff000002a7c380 x27: 0000000000000000",
			"<4>[   12.000022] Call trace:",
		}, trace...), "\n")
	}
	tests := []struct {
		name, text string
		title      string
		frames     []string
	}{
		{"fault in a module", oops("my_write+0x1c/0x30 [mydrv]",
			"<4>[   12.000023]  my_write+0x1c/0x30 [mydrv]",
			"<4>[   12.000024]  vfs_write+0xdc/0x3a0",
			"<4>[   12.000025]  ksys_write+0x7c/0x11c",
			"<4>[   12.000026]  __arm64_sys_write+0x24/0x30",
			"<0>[   12.000027] Code: d2800001 f9400000 b9000001 d65f03c0 (b9000020)",
			"<4>[   12.000028] ---[ end trace 0000000000000000 ]---",
			"<0>[   12.000029] Kernel panic - not syncing: Oops: Fatal exception"),
			"Unable to handle kernel NULL pointer dereference at virtual address X",
			[]string{"my_write", "vfs_write", "ksys_write", "__arm64_sys_write"}},
		// The faulting pc at a function's first byte (a call through a
		// bad pointer that lands on f): the first frame is f itself.
		{"pc at a function's start", oops("my_write+0x0/0x30 [mydrv]",
			"<4>[   12.000023]  my_write+0x0/0x30 [mydrv]",
			"<4>[   12.000024]  vfs_write+0xdc/0x3a0"),
			"Unable to handle kernel NULL pointer dereference at virtual address X",
			[]string{"my_write", "vfs_write"}},
		// Registers printed again inside the trace (an interrupt's
		// frame): not frames.
		{"registers inside the trace", oops("my_write+0x1c/0x30 [mydrv]",
			"<4>[   12.000023]  my_write+0x1c/0x30 [mydrv]",
			"<4>[   12.000024] pc : other+0x10/0x20",
			"<4>[   12.000025] lr : other2+0x10/0x20",
			"<4>[   12.000026]  do_exit+0x0/0x9a0",
			"<4>[   12.000027]  vfs_write+0xdc/0x3a0"),
			"Unable to handle kernel NULL pointer dereference at virtual address X",
			[]string{"my_write", "before:do_exit", "vfs_write"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sig, ok := Extract([]byte(tt.text))
			if !ok || sig.Kind != KindBUG || sig.Title != tt.title {
				t.Fatalf("Extract = %v %s %q, want bug %q", ok, sig.Kind, sig.Title, tt.title)
			}
			if strings.Join(sig.Frames, " ") != strings.Join(tt.frames, " ") {
				t.Errorf("frames = %q, want %q", sig.Frames, tt.frames)
			}
			if sig.TitleUsec != 12000001 {
				t.Errorf("TitleUsec = %d, want 12000001", sig.TitleUsec)
			}
		})
	}
}

func TestStartKind(t *testing.T) {
	for line, want := range map[string]Kind{
		"Kernel panic - not syncing: sysrq triggered crash":                        KindPanic,
		"<4>[    1.0] WARNING: CPU: 0 PID: 1 at a.c:1 f+0x1/0x2":                   KindWarning,
		"INFO: task cat:7 blocked for more than 2 seconds.":                        KindHungTask,
		"lastgasp: netconsole armed host=a boot=b":                                 "",
		"Kernel Offset: disabled":                                                  "",
		"[    2.0] Unable to handle kernel paging request at virtual address dead": KindBUG,
		"Internal error: Oops: 0000000096000045 [#1] SMP":                          KindOops,
	} {
		if got, _ := StartKind(line); got != want {
			t.Errorf("StartKind(%q) = %q, want %q", line, got, want)
		}
	}
}

var reID = regexp.MustCompile(`^[0-9a-f]{16}$`)

func FuzzExtract(f *testing.F) {
	for _, r := range reports {
		f.Add(readReport(f, r.file))
	}
	f.Add([]byte("Kernel panic - not syncing: x\nCall Trace:\n f+0x1/0x2\n"))
	f.Add([]byte("[99999999999.999999] BUG: \xff\xfe\u202e\nCall Trace:\n ? \n +0x\n"))
	f.Add(bytes.Repeat([]byte("WARNING: "), 1<<12))
	f.Fuzz(func(t *testing.T, data []byte) {
		sig, ok := Extract(data)
		if !ok {
			return
		}
		if !reID.MatchString(sig.ID) || len(sig.Title) > MaxTitle || len(sig.Frames) > MaxFrames {
			t.Fatalf("Extract = %+v", sig)
		}
		if strings.ContainsAny(sig.Title, "\n\r\x00") {
			t.Fatalf("title %q has control characters", sig.Title)
		}
		if again, _ := Extract(data); again.ID != sig.ID {
			t.Fatalf("Extract is not deterministic: %s then %s", sig.ID, again.ID)
		}
	})
}

func BenchmarkExtract(b *testing.B) {
	rec := readReport(b, "sysrq-1")
	b.SetBytes(int64(len(rec)))
	for b.Loop() {
		Extract(rec)
	}
}
