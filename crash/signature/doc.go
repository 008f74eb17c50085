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
package signature
