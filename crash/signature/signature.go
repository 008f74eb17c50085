package signature

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Kind is the class of a report, from its title.
type Kind string

// Kinds of report.
const (
	KindPanic    Kind = "panic"     // Kernel panic - not syncing: ...
	KindOops     Kind = "oops"      // Oops: ..., invalid opcode: ..., general protection fault ...
	KindBUG      Kind = "bug"       // BUG: ..., kernel BUG at ...
	KindWarning  Kind = "warning"   // WARNING: CPU: N PID: N at ...
	KindHungTask Kind = "hung-task" // INFO: task X:N blocked for more than N seconds.
)

// Bounds of what Extract reads and returns.
const (
	// MaxFrames is how many meaningful frames a signature keeps.
	MaxFrames = 4
	// MaxTitle bounds a title, in bytes.
	MaxTitle = 200
	// maxLine bounds the part of a line Extract looks at: a longer line
	// is not one the kernel printed as a report line.
	maxLine = 1024
	// maxTraceLines bounds the lines read after the title for its trace.
	maxTraceLines = 200
	// oopsLookback is how many lines before an Oops line a BUG line
	// (x86 "BUG: ...", arm64 "Unable to handle kernel ...") may be.
	oopsLookback = 16
)

// Signature is what identifies a crash across hosts and boots.
type Signature struct {
	// ID is the first 16 hex digits of the SHA-256 of Title and Frames:
	// the same bug gives the same ID on every host.
	ID string `json:"id"`
	// Kind is the class of the report.
	Kind Kind `json:"kind"`
	// Title is the report's title line, normalised.
	Title string `json:"title"`
	// Frames are the top meaningful functions of the title's call trace,
	// innermost first, without offsets or compiler suffixes (.cold,
	// .isra.0).
	Frames []string `json:"frames,omitempty"`
	// TitleUsec is the kernel timestamp of the title line, microseconds
	// since boot, or -1 when the line had none. The same crash read from
	// pstore and from netconsole has the same value, which ties the two
	// copies together even when the boot is not known.
	TitleUsec int64 `json:"title_usec"`
	// Cut: the text ends inside the report, its call trace not begun or
	// not ended, with fewer than MaxFrames frames: Frames may be fewer
	// than the report's. A console tail copied while the kernel was still
	// printing the panic (another CPU ran the copier until the panic
	// stopped it) ends so; its ID is not the crash's.
	Cut bool `json:"cut,omitempty"`
}

// MakeID returns the ID of a title and frames.
func MakeID(title string, frames []string) string {
	h := sha256.New()
	h.Write([]byte(title))
	for _, f := range frames {
		h.Write([]byte{0})
		h.Write([]byte(f))
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// startMarkers begin a report line (after the log prefixes), with the kind
// of report they start.
var startMarkers = []struct {
	prefix string
	kind   Kind
}{
	{"Kernel panic - not syncing:", KindPanic},
	{"BUG:", KindBUG},
	{"kernel BUG at ", KindBUG},
	{"Oops:", KindOops},
	{"invalid opcode:", KindOops},
	{"general protection fault", KindOops},
	{"WARNING:", KindWarning},
	{"INFO: task ", KindHungTask},
	// arm64 (arch/arm64/mm/fault.c die_kernel_fault, arch/arm64/kernel/
	// traps.c __die): "Unable to handle kernel NULL pointer dereference at
	// virtual address ...", then "Internal error: Oops: <esr> [#1] SMP".
	{"Unable to handle kernel ", KindBUG},
	{"Internal error: ", KindOops},
}

// genericPanics are the panic reasons that only say an earlier report in
// the same text made the kernel panic (panic_on_oops, panic_on_warn,
// hung_task_panic, softlockup_panic): the earlier report is the title.
var genericPanics = []string{
	"Fatal exception",
	"panic_on_warn set",
	"kernel: panic_on_warn set",
	"hung_task: blocked tasks",
	"softlockup: hung tasks",
	"Fatal exception in interrupt",
}

// StartKind reports whether line (one log line, with or without "<level>"
// and "[timestamp]" prefixes) starts a report, and which kind. The live
// path calls it on every line, so it is cheap: a byte test rejects most
// lines before any comparison.
func StartKind(line string) (Kind, bool) {
	t := stripPrefixes([]byte(line))
	if len(t) == 0 {
		return "", false
	}
	switch t[0] {
	case 'K', 'B', 'k', 'O', 'i', 'g', 'W', 'I', 'U':
	default:
		return "", false
	}
	for _, m := range startMarkers {
		if bytes.HasPrefix(t, []byte(m.prefix)) {
			return m.kind, true
		}
	}
	return "", false
}

// line is one line of a report.
type line struct {
	text []byte // without the prefixes
	usec int64  // its timestamp, -1 if none
	kind Kind   // the report it starts, "" if none
}

// Extract returns the signature of the report in text, which may be a
// whole dmesg record (older lines before the report, the panic at the
// end) or the lines of one report; ok is false if text holds no report.
//
// The title is the last panic line; when its reason is generic ("Fatal
// exception", hung_task, panic_on_warn) or there is no panic, the last
// BUG/Oops/WARNING/hung-task line before it (a BUG line just before an
// Oops line wins: the Oops only numbers it). Its frames are those of the
// first call trace after it.
func Extract(text []byte) (sig Signature, ok bool) {
	var lines []line
	for len(text) > 0 {
		l := text
		if i := bytes.IndexByte(text, '\n'); i >= 0 {
			l, text = text[:i], text[i+1:]
		} else {
			text = nil
		}
		if len(l) > maxLine {
			l = l[:maxLine]
		}
		t, usec := splitPrefixes(l)
		ln := line{text: bytes.TrimRight(t, " \t\r"), usec: usec}
		for _, m := range startMarkers {
			if bytes.HasPrefix(ln.text, []byte(m.prefix)) {
				ln.kind = m.kind
				break
			}
		}
		lines = append(lines, ln)
	}
	title := -1
	for i := len(lines) - 1; i >= 0; i-- {
		if lines[i].kind == KindPanic {
			title = i
			break
		}
	}
	if title < 0 || isGenericPanic(lines[title].text) {
		end := title
		if end < 0 {
			end = len(lines)
		}
		for i := end - 1; i >= 0; i-- {
			if k := lines[i].kind; k != "" && k != KindPanic {
				title = i
				break
			}
		}
	}
	if title < 0 {
		return Signature{}, false
	}
	if lines[title].kind == KindOops {
		// "BUG: kernel NULL pointer dereference" is followed by "#PF:"
		// lines and then "Oops: 0002 [#1]": the BUG line says what. On
		// arm64 the "Mem abort info:" and page-table lines between
		// "Unable to handle kernel" and "Internal error: Oops:" are ~12.
		for i := title - 1; i >= 0 && i >= title-oopsLookback; i-- {
			if lines[i].kind == KindBUG {
				title = i
				break
			}
		}
	}
	tl := lines[title]
	sig.Kind = tl.kind
	sig.Title = normalizeTitle(tl.kind, clean(tl.text))
	sig.TitleUsec = tl.usec
	sig.Frames, sig.Cut = frames(lines[title+1:])
	sig.ID = MakeID(sig.Title, sig.Frames)
	return sig, true
}

func isGenericPanic(t []byte) bool {
	reason := strings.TrimSpace(strings.TrimPrefix(string(t), "Kernel panic - not syncing:"))
	for _, g := range genericPanics {
		if strings.HasPrefix(reason, g) {
			return true
		}
	}
	// arm64 (arch/arm64/kernel/traps.c die): panic("%s: Fatal exception",
	// str) with str "Oops", "Oops - BUG" and the like.
	return strings.HasSuffix(reason, ": Fatal exception") || strings.HasSuffix(reason, ": Fatal exception in interrupt")
}

// genericFrames are frames every report of a kind shares: the machinery
// that prints, traps and panics, not the code that went wrong.
var genericFrames = map[string]bool{
	"dump_stack": true, "dump_stack_lvl": true, "show_stack": true, "show_trace_log_lvl": true,
	"panic": true, "nmi_panic": true, "vpanic": true, "__warn": true, "warn_slowpath_fmt": true,
	"report_bug": true, "handle_bug": true, "exc_invalid_op": true, "asm_exc_invalid_op": true,
	"do_error_trap": true, "do_trap": true, "die": true, "__die": true, "__die_body": true,
	"oops_end": true, "page_fault_oops": true, "kernelmode_fixup_or_oops": true,
	"__bad_area_nosemaphore": true, "bad_area_nosemaphore": true, "do_user_addr_fault": true,
	"exc_page_fault": true, "asm_exc_page_fault": true, "handle_page_fault": true,
	"exc_general_protection": true, "asm_exc_general_protection": true,
	"_printk": true, "printk": true, "vprintk": true, "vprintk_emit": true, "vprintk_default": true,
	"console_unlock": true, "__schedule": true, "schedule": true,
	"check_panic_on_oom": true, "dump_header": true,
	// arm64: the stack dumper (arch/arm64/kernel/stacktrace.c) and the
	// fault and BUG() paths (arch/arm64/mm/fault.c, kernel/traps.c,
	// kernel/entry-common.c).
	"dump_backtrace": true, "arm64_notify_die": true, "die_kernel_fault": true, "__do_kernel_fault": true,
	"do_page_fault": true, "do_translation_fault": true, "do_mem_abort": true, "el1_abort": true,
	"el1h_64_sync_handler": true, "el1h_64_sync": true, "bug_handler": true, "call_break_hook": true,
	"brk_handler": true, "do_debug_exception": true, "el1_dbg": true,
}

// BeforePrefix marks a frame the arm64 unwinder printed as "f+0x0/...":
// arm64 prints return addresses as they are (%pS; x86 prints call sites,
// %pB), and a return address at a function's first byte means the call
// was the last instruction of the function before f in the kernel's text,
// a call that does not return (panic, do_exit, BUG). The report does not
// name that function: the frame is "before:f", which is the same on every
// host running that kernel build. The first frame of a trace that is the
// faulting pc ("pc : f+0x0/..." above it) is not a return address and is
// kept as f.
const BeforePrefix = "before:"

// frames returns the meaningful functions of the first call trace in
// lines, and whether lines ran out inside the report (before the trace
// ended or began) with fewer than MaxFrames of them.
func frames(lines []line) (out []string, cut bool) {
	in, arm64 := false, false
	var pc []byte // arm64: the register dump's "pc : f+0x../0x.."
	for i, l := range lines {
		if i >= maxTraceLines || len(out) >= MaxFrames {
			break
		}
		t := bytes.TrimSpace(l.text)
		if !in {
			switch {
			case bytes.HasPrefix(t, []byte("Call Trace:")): // x86 (show_trace_log_lvl)
				in = true
			case bytes.HasPrefix(t, []byte("Call trace:")): // arm64 (dump_backtrace)
				in, arm64 = true, true
			case bytes.HasPrefix(t, []byte("pc : ")):
				if f := bytes.Fields(t[len("pc : "):]); len(f) > 0 {
					pc = f[0] // without " [module]"
				}
			case l.kind != "" && l.kind != KindOops:
				return out, false // the next report: this one had no trace (an Oops line numbers a BUG)
			}
			continue
		}
		fs := bytes.Fields(t)
		switch {
		case len(t) == 0:
		case t[0] == '<': // <TASK>, </TASK>, <IRQ>, <NMI> markers
			if bytes.HasPrefix(t, []byte("</TASK>")) {
				return out, false
			}
			// The end of an NMI or interrupt: what it interrupted (idle,
			// whatever ran) differs from one occurrence to the next.
			if (bytes.HasPrefix(t, []byte("</NMI>")) || bytes.HasPrefix(t, []byte("</IRQ>"))) && len(out) > 0 {
				return out, false
			}
		case bytes.HasPrefix(t, []byte("? ")): // unreliable frames
		case bytes.Contains(t, []byte("+0x")) && !bytes.HasSuffix(fs[0], []byte(":")) && !(len(fs) > 1 && fs[1][0] == ':'):
			// ("RIP: 0010:native_safe_halt+0xb/0x10", arm64's
			// "pc : f+0x1c/0x30" and "lr : ..." are registers.)
			f := string(fs[0])
			off := ""
			if j := strings.Index(f, "+0x"); j >= 0 {
				f, off = f[:j], f[j+1:]
			}
			if j := strings.IndexByte(f, '.'); j > 0 {
				f = f[:j] // .cold, .isra.0, .constprop.0 vary between builds
			}
			f = clean([]byte(f))
			if f == "" || genericFrames[f] {
				break
			}
			if arm64 && strings.HasPrefix(off, "0x0/") && !(len(out) == 0 && bytes.Equal(pc, fs[0])) {
				f = BeforePrefix + f
			}
			out = append(out, f)
		default:
			// Registers (RIP:, RSP:, Code:) between the frames of an
			// interrupt and a task: skip them, a new report ends it.
			if l.kind != "" {
				return out, false
			}
		}
	}
	return out, len(out) < MaxFrames && len(lines) <= maxTraceLines
}

// Title normalisation: what differs between two occurrences of one bug.
var (
	reHex      = regexp.MustCompile(`\b(0x[0-9a-fA-F]+|[0-9a-fA-F]{8,})\b`)
	reCPU      = regexp.MustCompile(`\bCPU:? ?[0-9]+\b`)
	rePID      = regexp.MustCompile(`\b(PID|pid):? ?[0-9]+\b`)
	reOopsNum  = regexp.MustCompile(`\[#[0-9]+\]`)
	reFileLine = regexp.MustCompile(`(\.[ch]):[0-9]+`)
	reOffset   = regexp.MustCompile(`\+0x[0-9a-fA-F]+/0x[0-9a-fA-F]+`)
	reTaskPID  = regexp.MustCompile(`^(INFO: task .*):[0-9]+ blocked for more than [0-9]+ seconds\.?`)
	reComm     = regexp.MustCompile(`\bComm: \S+`)
)

// normalizeTitle replaces the parts of a title that change between two
// occurrences of the same bug with placeholders: addresses and long hex
// numbers X, CPU and PID numbers N, line numbers LINE, the oops counter N.
func normalizeTitle(kind Kind, t string) string {
	if kind == KindHungTask {
		if m := reTaskPID.FindStringSubmatch(t); m != nil {
			return m[1] + ":N blocked for more than N seconds."
		}
	}
	t = reOffset.ReplaceAllString(t, "")
	t = reFileLine.ReplaceAllString(t, "${1}:LINE")
	t = reHex.ReplaceAllString(t, "X")
	t = reCPU.ReplaceAllString(t, "CPU: N")
	t = rePID.ReplaceAllString(t, "PID: N")
	t = reOopsNum.ReplaceAllString(t, "[#N]")
	t = reComm.ReplaceAllString(t, "Comm: C")
	if len(t) > MaxTitle {
		t = t[:MaxTitle]
		for !utf8.ValidString(t) {
			t = t[:len(t)-1]
		}
	}
	return strings.TrimSpace(t)
}

// splitPrefixes removes the leading "<6>" and "[   12.345678]" ("[T1]")
// decorations of a kernel log line and returns the first timestamp in
// microseconds, -1 if none.
func splitPrefixes(b []byte) ([]byte, int64) {
	usec := int64(-1)
	for {
		b = bytes.TrimLeft(b, " \t")
		var end int
		switch {
		case len(b) > 0 && b[0] == '<':
			end = bytes.IndexByte(b, '>')
			if end < 2 || !isDigits(b[1:end]) {
				return b, usec // <TASK>, <NMI>: trace markers, not a level
			}
		case len(b) > 0 && b[0] == '[':
			end = bytes.IndexByte(b, ']')
			if end > 0 && usec < 0 {
				usec = parseUsec(bytes.TrimSpace(b[1:end]))
			}
		default:
			return b, usec
		}
		if end < 0 || end > 32 {
			return b, usec
		}
		b = b[end+1:]
	}
}

func stripPrefixes(b []byte) []byte {
	t, _ := splitPrefixes(b)
	return t
}

// parseUsec parses "12.345678" (seconds and microseconds) as microseconds.
func parseUsec(b []byte) int64 {
	s, us, ok := strings.Cut(string(b), ".")
	if !ok || len(us) != 6 || len(s) == 0 || len(s) > 10 {
		return -1
	}
	sec, err1 := strconv.ParseUint(s, 10, 64)
	frac, err2 := strconv.ParseUint(us, 10, 64)
	if err1 != nil || err2 != nil {
		return -1
	}
	return int64(sec)*1e6 + int64(frac)
}

// clean makes b a printable, single-line string: invalid UTF-8 and
// non-printing characters (controls, U+202E) become '?'.
func clean(b []byte) string {
	var sb strings.Builder
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		b = b[n:]
		if r == utf8.RuneError && n <= 1 || !unicode.IsPrint(r) {
			r = '?'
		}
		sb.WriteRune(r)
	}
	return sb.String()
}

func isDigits(b []byte) bool {
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
