// Package replay sends the kernel log records that were logged before a
// netconsole target was armed: a target created through configfs does not
// replay the printk buffer (only boot-time targets are registered with
// CON_PRINTBUFFER), so without this a collector's log of a boot starts
// wherever the agent armed it. Records are read from /dev/kmsg
// (Documentation/ABI/testing/dev-kmsg), whose records have the shape of
// extended netconsole messages (Documentation/networking/netconsole.rst),
// and sent as extended datagrams with their original sequence numbers,
// fragmented the way the kernel fragments them, each marked with the header
// field wire.ReplayField so that a receiver takes them as backfill of the
// current boot, not as a reboot.
package replay
