// Package forward sends netconsole messages on to a syslog server as RFC
// 5424 messages over TCP with octet-counting framing (RFC 6587 section
// 3.4.1), optionally over TLS (RFC 5425), so that rsyslog, syslog-ng or
// Vector can take them from there. A Forwarder is a sink.Sink.
package forward
