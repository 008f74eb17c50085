// Package receiver is the collector side of netconsole
// (Documentation/networking/netconsole.rst in the Linux kernel): Server reads
// UDP datagrams, runs each sender through a wire.Host and appends the
// messages and loss events to per-host, per-boot text logs kept by Store at
// <Root>/<host>/<boot>/kernel.log.
//
// A sender is identified by its UDP source address until the lastgasp agent
// in it announces itself with a kernel log line such as
//
//	lastgasp: netconsole armed host=52-54-00-12-34-56 boot=1b6f... dev=eth0
//
// Lines received before the announcement are held briefly and filed under the
// announced host and boot once it arrives. The Store remembers each host's
// announced boots in order (Store.PrevBootDir), so that a crash record
// uploaded by one boot can be filed next to the logs of the boot before it.
// Logs are rotated by size (Store.RotateSize); package netconsole/retention
// removes old ones.
//
// For throughput, ListenUDP opens several sockets on one port with
// SO_REUSEPORT (the kernel keeps each sender on one socket), Serve reads each
// with recvmmsg and keeps its own senders, so readers share no locks but the
// Store's sharded ones, and the Store buffers writes per file. Netconsole
// logs are best effort: lines reach their file within Server.FlushInterval
// (and on shutdown) and are never fsynced; crash records, which the agent
// deletes once acknowledged, are stored durably by package
// pstore/ship/server instead. Memory is bounded per sender
// (wire.Config.MaxPendingBytes) and in total (Server.MaxMemory); what does not
// fit is dropped and counted in Stats.
package receiver
