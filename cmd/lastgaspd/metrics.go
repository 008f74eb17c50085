package main

import (
	"fmt"
	"io"
	"sort"

	"github.com/lastgasp/lastgasp/netconsole/forward"
	"github.com/lastgasp/lastgasp/netconsole/receiver"
	shipserver "github.com/lastgasp/lastgasp/pstore/ship/server"
)

// writeMetrics writes the collector's counters in the Prometheus text format.
// fw is nil when forwarding is off.
func writeMetrics(w io.Writer, rx receiver.Stats, up shipserver.Stats, fw *forward.Stats) {
	counter := func(name, help string, v uint64) {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s counter\n%s %d\n", name, help, name, name, v)
	}
	counter("lastgasp_netconsole_datagrams_total", "Datagrams received.", rx.Datagrams)
	counter("lastgasp_netconsole_messages_total", "Complete messages stored.", rx.Messages)
	counter("lastgasp_netconsole_legacy_messages_total", "Messages without extended header.", rx.Legacy)
	counter("lastgasp_netconsole_malformed_total", "Datagrams that did not parse.", rx.Malformed)
	counter("lastgasp_netconsole_gaps_total", "Sequence gaps seen.", rx.Gaps)
	counter("lastgasp_netconsole_lost_messages_total", "Messages missing from sequence gaps.", rx.Lost)
	counter("lastgasp_netconsole_duplicates_total", "Duplicate datagrams.", rx.Duplicates)
	counter("lastgasp_netconsole_reboots_total", "Sequence restarts (reboots) seen.", rx.Reboots)
	counter("lastgasp_netconsole_truncated_total", "Datagrams longer than the read buffer, dropped.", rx.Truncated)
	fmt.Fprintf(w, "# HELP lastgasp_netconsole_dropped_total Messages dropped, by reason.\n# TYPE lastgasp_netconsole_dropped_total counter\n")
	for _, d := range []struct {
		reason string
		v      uint64
	}{{"incomplete", rx.DroppedIncomplete}, {"host_limit", rx.DroppedLimit}, {"invalid", rx.DroppedInvalid}, {"memory_limit", rx.DroppedMemory}} {
		fmt.Fprintf(w, "lastgasp_netconsole_dropped_total{reason=%q} %d\n", d.reason, d.v)
	}
	counter("lastgasp_netconsole_announcements_total", "Agent announcements that bound a sender to a host.", rx.Announcements)
	counter("lastgasp_netconsole_write_errors_total", "Failed writes to the store.", rx.WriteErrors)
	counter("lastgasp_netconsole_evictions_total", "Senders forgotten to stay within bounds.", rx.Evictions)
	counter("lastgasp_netconsole_forwarded_total", "Messages handed to the syslog forwarder.", rx.Forwarded)
	gauge := func(name, help string, v int64) {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s gauge\n%s %d\n", name, help, name, name, v)
	}
	gauge("lastgasp_netconsole_sources", "Senders (UDP source addresses) tracked.", rx.Sources)
	gauge("lastgasp_netconsole_pending_bytes", "Bytes held for senders, bounded by -max-memory.", rx.PendingBytes)
	if fw != nil {
		counter("lastgasp_forward_enqueued_total", "Messages queued for the syslog server.", fw.Enqueued)
		counter("lastgasp_forward_sent_total", "Messages written to the syslog server.", fw.Sent)
		counter("lastgasp_forward_dropped_total", "Messages dropped because the forward queue was full.", fw.Dropped)
		counter("lastgasp_forward_connects_total", "Connections made to the syslog server.", fw.Connects)
		counter("lastgasp_forward_connect_failures_total", "Failed connection attempts to the syslog server.", fw.ConnectFailures)
		gauge("lastgasp_forward_queued", "Messages waiting to be forwarded.", int64(fw.Queued))
	}
	counter("lastgasp_uploads_total", "Crash-record uploads received.", up.Uploads)
	counter("lastgasp_uploads_stored_total", "Crash records stored durably.", up.Stored)
	counter("lastgasp_uploads_duplicate_total", "Uploads of records already stored.", up.Duplicates)
	fmt.Fprintf(w, "# HELP lastgasp_uploads_rejected_total Uploads rejected, by reason.\n# TYPE lastgasp_uploads_rejected_total counter\n")
	reasons := make([]string, 0, len(up.Rejected))
	for r := range up.Rejected {
		reasons = append(reasons, r)
	}
	sort.Strings(reasons)
	for _, r := range reasons {
		fmt.Fprintf(w, "lastgasp_uploads_rejected_total{reason=%q} %d\n", r, up.Rejected[r])
	}
}
