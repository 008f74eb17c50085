package store

import "time"

// Crash is one panic line the store holds for a host.
type Crash struct {
	// Time is when it happened: the record time of a crash record (else
	// when it was received), or when the netconsole line arrived.
	Time time.Time
	// Line is the panic line (records.PanicLine).
	Line string
	// Source says where Line was found, relative to the host directory:
	// "crash/<record>", "<boot>/crash/<record>" for a record linked next
	// to the logs of the boot that produced it, or
	// "<boot>/kernel.log seq=<n>" (or kernel.log.1, just rotated).
	Source string
}
