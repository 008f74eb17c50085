// Package sink defines where the collector sends each netconsole message
// besides its own store: one Sink interface, implemented by the RFC 5424
// syslog forwarder (package netconsole/forward) and the systemd-journald
// sink (package netconsole/journal), and one Message that carries what the
// kernel's netconsole (Documentation/networking/netconsole.rst) and the
// lastgasp announcement say about a message.
package sink
