// Package wire parses and reassembles the netconsole wire format described in
// the Linux kernel's Documentation/networking/netconsole.rst: plain (legacy)
// console text and the extended format
// "[<release>,]<prival>,<seq>,<ts_usec>,<flags>[,ncfrag=<off>/<total>];<text>",
// and lastgasp's own header field ReplayField, which marks records replayed
// from the sender's kernel log buffer (backfill, never a reboot).
//
// The package does no I/O. Parse turns one UDP datagram into a Packet; Host is
// a per-sender state machine that is fed packets and the current time and
// returns ordered, reassembled messages plus gap, duplicate, reboot and drop
// events, holding at most Config.MaxPendingBytes.
package wire
