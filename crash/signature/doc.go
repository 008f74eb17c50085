// Package signature derives a crash signature from a Linux kernel crash
// report: the text of a pstore dmesg record or the netconsole lines of a
// panic, oops, BUG or warning. It is pure: it reads bytes and does no I/O.
//
// A signature is a title and the top meaningful frames of the call trace.
// The title is the report's first line in the forms the kernel prints
// (kernel/panic.c: "Kernel panic - not syncing: ...", "WARNING: CPU: N PID: N
// at file:line func", arch/x86/mm/fault.c: "BUG: kernel NULL pointer
// dereference, address: ...", arch/x86/kernel/dumpstack.c: "Oops: ...",
// lib/bug.c: "kernel BUG at file:line!", kernel/hung_task.c: "INFO: task
// comm:pid blocked for more than N seconds.") with what changes between two
// occurrences of the same bug (addresses, PIDs, CPU numbers, task names of a
// hung task, seconds) replaced by fixed placeholders, as syzbot titles
// crashes. The frames are those of the first "Call Trace:" without "?"
// (unreliable) entries, offsets, and the generic frames every report of a
// kind shares (dump_stack_lvl, panic, __warn, report_bug, ...), as ChromeOS
// crash_reporter's kernel collector does. ID hashes both.
//
// arm64 reports (arch/arm64/kernel/stacktrace.c, traps.c, mm/fault.c) have a
// "Call trace:" whose frames are return addresses without "[<addr>]", a
// register dump ("pc : ", "lr : ") before it, and the titles "Unable to
// handle kernel ..." and "Internal error: Oops: ...". A return address at a
// function's first byte ("f+0x0/...") follows a call that does not return
// at the end of the function before f: that frame is "before:f"
// (BeforePrefix).
package signature
