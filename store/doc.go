// Package store owns the collector's on-disk layout: every file lastgaspd
// writes under its store root is named, written and read back here, so that
// the netconsole receiver, the crash-record upload server, retention and the
// crash listing agree on one mapping from host and boot names to paths.
//
//	<root>/<HostDir(host)>/<boot>/kernel.log[.N]   netconsole lines (rotated)
//	<root>/<HostDir(host)>/boot-unknown/kernel.log  lines of a stream that never announced its boot
//	<root>/<HostDir(host)>/crash/<record>.<digest16>[.json]   crash records, canonical
//	<root>/<HostDir(host)>/<boot>/crash/...         hard links to the records that boot left
//	<root>/.lastgaspd/                              the collector's own state
//
// Host names the upload protocol accepts are their own directory; anything
// else is percent-escaped (HostDir). Boot names the layout uses itself
// (crash, boot-unknown) are refused (CheckBoot).
package store
