package main

import (
	"log"
	"net/http"
	"strings"

	"github.com/lastgasp/lastgasp/netconsole/forward"
	"github.com/lastgasp/lastgasp/netconsole/journal"
	"github.com/lastgasp/lastgasp/netconsole/receiver"
	"github.com/lastgasp/lastgasp/netconsole/wire"
	shipserver "github.com/lastgasp/lastgasp/pstore/ship/server"
	"github.com/lastgasp/lastgasp/store"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metricsNamespace prefixes every metric of the collector's own.
const metricsNamespace = "lastgaspd"

// dropWriteReason is the reason label of messages lost because the store
// could not write them; the other reasons are wire.DropReasons.
const dropWriteReason = "write"

// maxRateLimitedHosts bounds the hosts exported one by one in
// lastgaspd_netconsole_host_rate_limited_total, so that a fleet cannot blow
// up the scrape: only the top N flooders are named.
const maxRateLimitedHosts = 20

// metricSources are the parts of the collector that /metrics reads at scrape
// time. A nil func is a part that is off (no -forward, no -journal) and
// exports nothing.
type metricSources struct {
	receiver func() receiver.Stats
	uploads  func() shipserver.Stats
	store    func() store.Stats
	forward  func() forward.Stats
	journal  func() journal.Stats
	// rateLimitedHosts returns the n hosts that lost most messages to
	// their rate limit, most first (receiver.Server.RateLimitedHosts).
	rateLimitedHosts func(n int) []receiver.HostCount
	// extra are more collectors (the crash view's).
	extra []prometheus.Collector
}

// metricsHandler serves the collector's metrics, the Go runtime's and the
// process's in the Prometheus exposition format, from a registry of its own
// (nothing registered globally by any library ends up in it).
func metricsHandler(src metricSources, logger *log.Logger) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		newStatsCollector(src),
	)
	reg.MustRegister(src.extra...)
	// A few scrapes at a time are plenty; more would only be a way to
	// spend the collector's CPU. A metric that fails is logged and left
	// out rather than failing the whole scrape.
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog: logger, ErrorHandling: promhttp.ContinueOnError, MaxRequestsInFlight: 4,
	})
}

// snapshot is every part's Stats, read once per scrape so that the metrics
// of one part are consistent with each other.
type snapshot struct {
	rx    receiver.Stats
	up    shipserver.Stats
	st    store.Stats
	fw    *forward.Stats
	jr    *journal.Stats
	rlTop []receiver.HostCount
}

// scalar is one metric without labels. value reports false when its part is
// off.
type scalar struct {
	desc  *prometheus.Desc
	typ   prometheus.ValueType
	value func(*snapshot) (float64, bool)
}

// statsCollector turns the parts' Stats into constant metrics at scrape
// time: the parts keep their own atomic counters, and no second set of
// counters has to be kept in step with them.
type statsCollector struct {
	src                                 metricSources
	scalars                             []scalar
	dropped, rejected, rateLimitedHosts *prometheus.Desc
}

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(metricsNamespace+"_"+name, help, labels, nil)
}

func newStatsCollector(src metricSources) *statsCollector {
	c := &statsCollector{
		src:              src,
		dropped:          desc("netconsole_dropped_total", "Messages and fragments given up on, by reason (wire.DropReason, and write: the store failed).", "reason"),
		rejected:         desc("uploads_rejected_total", "Crash-record uploads rejected, by reason.", "reason"),
		rateLimitedHosts: desc("netconsole_host_rate_limited_total", "Messages dropped by a host's rate limit, for the hosts that lost most.", "host"),
	}
	add := func(name, help string, typ prometheus.ValueType, v func(*snapshot) (float64, bool)) {
		c.scalars = append(c.scalars, scalar{desc(name, help), typ, v})
	}
	rx := func(name, help string, typ prometheus.ValueType, v func(receiver.Stats) float64) {
		add(name, help, typ, func(s *snapshot) (float64, bool) { return v(s.rx), true })
	}
	counter, gauge := prometheus.CounterValue, prometheus.GaugeValue
	rx("netconsole_datagrams_total", "Datagrams received.", counter, func(s receiver.Stats) float64 { return float64(s.Datagrams) })
	rx("netconsole_messages_total", "Complete messages stored.", counter, func(s receiver.Stats) float64 { return float64(s.Messages) })
	rx("netconsole_legacy_messages_total", "Messages without extended header.", counter, func(s receiver.Stats) float64 { return float64(s.Legacy) })
	rx("netconsole_malformed_total", "Datagrams that did not parse.", counter, func(s receiver.Stats) float64 { return float64(s.Malformed) })
	rx("netconsole_truncated_total", "Datagrams longer than the read buffer, dropped.", counter, func(s receiver.Stats) float64 { return float64(s.Truncated) })
	rx("netconsole_gaps_total", "Sequence gaps seen.", counter, func(s receiver.Stats) float64 { return float64(s.Gaps) })
	rx("netconsole_lost_messages_total", "Messages missing from sequence gaps.", counter, func(s receiver.Stats) float64 { return float64(s.Lost) })
	rx("netconsole_duplicates_total", "Duplicate datagrams.", counter, func(s receiver.Stats) float64 { return float64(s.Duplicates) })
	rx("netconsole_reboots_total", "Sequence restarts (reboots) seen.", counter, func(s receiver.Stats) float64 { return float64(s.Reboots) })
	rx("netconsole_announcements_total", "Agent announcements that bound a sender to a host.", counter, func(s receiver.Stats) float64 { return float64(s.Announcements) })
	rx("netconsole_write_errors_total", "Failed writes to the store.", counter, func(s receiver.Stats) float64 { return float64(s.WriteErrors) })
	rx("netconsole_evictions_total", "Senders forgotten to stay within bounds.", counter, func(s receiver.Stats) float64 { return float64(s.Evictions) })
	rx("netconsole_kernel_drops_total", "Datagrams the kernel dropped because a netconsole socket's receive buffer was full (the socket's drop counter: SO_RXQ_OVFL, SO_MEMINFO).", counter, func(s receiver.Stats) float64 { return float64(s.KernelDrops) })
	rx("netconsole_rate_limited_total", "Messages dropped by per-host rate limits (-rate-limit, -rate-burst).", counter, func(s receiver.Stats) float64 { return float64(s.RateLimited) })
	rx("netconsole_refused_announcements_total", "Announcements not accepted: a name the store refuses, or a host pinned to other networks.", counter, func(s receiver.Stats) float64 { return float64(s.Refused) })
	rx("netconsole_host_conflicts_total", "Times two source addresses claimed one host name.", counter, func(s receiver.Stats) float64 { return float64(s.Conflicts) })
	rx("netconsole_no_announcement_total", "Streams filed under their source address because no announcement came (one per sender and boot).", counter, func(s receiver.Stats) float64 { return float64(s.NoAnnouncement) })
	rx("netconsole_hosts_forgotten_total", "Host identities dropped to stay within -max-hosts.", counter, func(s receiver.Stats) float64 { return float64(s.HostsForgotten) })
	rx("netconsole_hosts_expired_total", "Host identities dropped after -host-ttl without a message.", counter, func(s receiver.Stats) float64 { return float64(s.HostsExpired) })
	rx("netconsole_hosts_restored_total", "Host identities loaded from the state file at start.", counter, func(s receiver.Stats) float64 { return float64(s.HostsRestored) })
	rx("netconsole_forwarded_total", "Messages handed to the sinks (-forward, -journal).", counter, func(s receiver.Stats) float64 { return float64(s.Forwarded) })
	rx("netconsole_hosts", "Host identities kept (host, boot, sequence, counters).", gauge, func(s receiver.Stats) float64 { return float64(s.Hosts) })
	rx("netconsole_active", "Senders holding reassembly and reorder state.", gauge, func(s receiver.Stats) float64 { return float64(s.Active) })
	rx("netconsole_pending_bytes", "Bytes held for senders, bounded by -max-memory.", gauge, func(s receiver.Stats) float64 { return float64(s.PendingBytes) })

	up := func(name, help string, v func(shipserver.Stats) uint64) {
		add(name, help, counter, func(s *snapshot) (float64, bool) { return float64(v(s.up)), true })
	}
	up("uploads_total", "Crash-record uploads received.", func(s shipserver.Stats) uint64 { return s.Uploads })
	up("uploads_stored_total", "Crash records stored durably.", func(s shipserver.Stats) uint64 { return s.Stored })
	up("uploads_duplicate_total", "Uploads of records already stored.", func(s shipserver.Stats) uint64 { return s.Duplicates })
	up("uploads_linked_total", "Records hard-linked into the directory of the boot that crashed.", func(s shipserver.Stats) uint64 { return s.Linked })
	up("uploads_unlinked_total", "Records not linked: their boot was announced from another address than the upload's, or an unknown one.", func(s shipserver.Stats) uint64 { return s.Unlinked })
	up("uploads_assembled_total", "Multi-part crashes assembled into one text.", func(s shipserver.Stats) uint64 { return s.Assembled })
	up("uploads_assembled_truncated_total", "Assembled crashes cut to -max-assembled.", func(s shipserver.Stats) uint64 { return s.Truncated })

	add("store_file_opens_total", "Log files opened (descriptor cache misses).", counter, func(s *snapshot) (float64, bool) { return float64(s.st.Opens), true })
	add("store_open_files", "Log files open now.", gauge, func(s *snapshot) (float64, bool) { return float64(s.st.OpenFiles), true })

	fw := func(name, help string, typ prometheus.ValueType, v func(forward.Stats) float64) {
		add(name, help, typ, func(s *snapshot) (float64, bool) {
			if s.fw == nil {
				return 0, false
			}
			return v(*s.fw), true
		})
	}
	fw("forward_enqueued_total", "Messages queued for the syslog server.", counter, func(s forward.Stats) float64 { return float64(s.Enqueued) })
	fw("forward_sent_total", "Messages written to the syslog server.", counter, func(s forward.Stats) float64 { return float64(s.Sent) })
	fw("forward_dropped_total", "Messages dropped because the forward queue was full.", counter, func(s forward.Stats) float64 { return float64(s.Dropped) })
	fw("forward_connects_total", "Connections made to the syslog server.", counter, func(s forward.Stats) float64 { return float64(s.Connects) })
	fw("forward_connect_failures_total", "Failed connection attempts to the syslog server.", counter, func(s forward.Stats) float64 { return float64(s.ConnectFailures) })
	fw("forward_queued", "Messages waiting to be forwarded.", gauge, func(s forward.Stats) float64 { return float64(s.Queued) })

	jr := func(name, help string, typ prometheus.ValueType, v func(journal.Stats) float64) {
		add(name, help, typ, func(s *snapshot) (float64, bool) {
			if s.jr == nil {
				return 0, false
			}
			return v(*s.jr), true
		})
	}
	jr("journal_enqueued_total", "Messages queued for systemd-journal-remote.", counter, func(s journal.Stats) float64 { return float64(s.Enqueued) })
	jr("journal_sent_total", "Entries systemd-journal-remote accepted.", counter, func(s journal.Stats) float64 { return float64(s.Sent) })
	jr("journal_dropped_total", "Messages dropped because the journal queue was full (or held at shutdown).", counter, func(s journal.Stats) float64 { return float64(s.Dropped) })
	jr("journal_rejected_total", "Entries in batches systemd-journal-remote refused (4xx), not sent again.", counter, func(s journal.Stats) float64 { return float64(s.Rejected) })
	jr("journal_posts_total", "POSTs made to systemd-journal-remote.", counter, func(s journal.Stats) float64 { return float64(s.Posts) })
	jr("journal_post_failures_total", "POSTs that failed and were tried again.", counter, func(s journal.Stats) float64 { return float64(s.PostFailures) })
	jr("journal_queued", "Entries waiting or being sent to systemd-journal-remote.", gauge, func(s journal.Stats) float64 { return float64(s.Queued) })
	return c
}

// Describe implements prometheus.Collector.
func (c *statsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, s := range c.scalars {
		ch <- s.desc
	}
	ch <- c.dropped
	ch <- c.rejected
	ch <- c.rateLimitedHosts
}

// Collect implements prometheus.Collector.
func (c *statsCollector) Collect(ch chan<- prometheus.Metric) {
	s := &snapshot{rx: c.src.receiver(), up: c.src.uploads(), st: c.src.store()}
	if c.src.forward != nil {
		fs := c.src.forward()
		s.fw = &fs
	}
	if c.src.journal != nil {
		js := c.src.journal()
		s.jr = &js
	}
	if c.src.rateLimitedHosts != nil {
		s.rlTop = c.src.rateLimitedHosts(maxRateLimitedHosts)
	}
	for _, m := range c.scalars {
		if v, ok := m.value(s); ok {
			ch <- prometheus.MustNewConstMetric(m.desc, m.typ, v)
		}
	}
	// Every reason, zeros included, so that a rate() over a reason that
	// has not happened yet is 0 rather than absent.
	for _, r := range wire.DropReasons {
		ch <- prometheus.MustNewConstMetric(c.dropped, prometheus.CounterValue, float64(s.rx.DroppedByReason[r]), r.String())
	}
	// Lines the store could not write are lost too; summing over reason
	// gives every message lost after it arrived.
	ch <- prometheus.MustNewConstMetric(c.dropped, prometheus.CounterValue, float64(s.rx.DroppedWrite), dropWriteReason)
	ch <- prometheus.MustNewConstMetric(c.dropped, prometheus.CounterValue, float64(s.rx.DroppedBacklog), "store-backlog")
	for reason, n := range s.up.Rejected {
		ch <- prometheus.MustNewConstMetric(c.rejected, prometheus.CounterValue, float64(n), reason)
	}
	seen := make(map[string]bool, len(s.rlTop))
	for _, h := range s.rlTop {
		// Host names come from unauthenticated announcements: a label
		// must be UTF-8, and one host must not be exported twice, or the
		// scrape fails.
		name := strings.ToValidUTF8(h.Host, "\uFFFD")
		if len(seen) == maxRateLimitedHosts || seen[name] {
			continue
		}
		seen[name] = true
		ch <- prometheus.MustNewConstMetric(c.rateLimitedHosts, prometheus.CounterValue, float64(h.Count), name)
	}
}
