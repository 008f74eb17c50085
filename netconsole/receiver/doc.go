// Package receiver is the collector side of netconsole
// (Documentation/networking/netconsole.rst in the Linux kernel): Server reads
// UDP datagrams, runs each sender through a wire.Host and appends the
// messages and loss events, as store/logline lines, to the per-host,
// per-boot logs of a store.Store.
//
// A sender is its UDP source address and port. It is bound to a host and
// boot by the lastgasp agent's announcement (package netconsole/announce),
//
//	lastgasp: netconsole armed host=52-54-00-12-34-56 boot=1b6f... dev=eth0
//
// or by host= and boot= userdata entries on its messages (Linux 6.9+).
// Lines received before the announcement are held briefly and filed under
// the announced host and boot once it arrives; a sender that never
// announces is filed under its address and boot-unknown, with one note per
// boot saying so.
//
// For fleets of hundreds of thousands of hosts, what a sender needs is
// split in two: an identity kept for every sender (host, boot, where its
// sequence stands, a token bucket: about 480 bytes, bounded by
// Server.MaxHosts and Server.HostTTL, saved to Server.StateFile across
// restarts) and heavy state that may be shed (a wire.Host with fragments,
// reorder window and history, and the held lines: Server.MaxActive of
// them). Shedding never loses a binding or a gap: the next message is
// compared with the last sequence number written.
//
// Each Serve call (one per SO_REUSEPORT socket, read with recvmmsg) keeps
// its own senders, so readers share no locks on the receive path. Lines
// are batched per host and written by a writer goroutine per socket, one
// write per host per Server.WriteDelay, so that creating a new host's
// directories on a slow disk never stalls reading. Netconsole logs are
// best effort and never fsynced; crash records, which the agent deletes
// once acknowledged, are stored durably by package pstore/ship/server.
//
// Every message received but not written is counted by reason in Stats:
// wire drops (wire.DropReason), the per-host rate limit, a store too far
// behind, and write errors; sequence numbers that never arrived are gaps;
// and datagrams the kernel dropped for want of socket buffer are read from
// the socket (SO_RXQ_OVFL with each datagram, and SO_MEMINFO every flush
// interval for the drops after a stream's last datagram, which no datagram
// reports).
package receiver
