package main

import (
	"context"
	"crypto/subtle"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lastgasp/lastgasp/crash/alert"
	"github.com/lastgasp/lastgasp/crash/collect"
	"github.com/lastgasp/lastgasp/crash/web"
	"github.com/lastgasp/lastgasp/store"
	"github.com/lastgasp/lastgasp/store/pgstore"
	"github.com/lastgasp/lastgasp/store/sigindex"
)

// openCrashStore opens the shared crash store of -crash-store, nil for the
// local file store. A database that cannot be reached at start is an
// error: lastgaspd exits rather than accept uploads it cannot store.
func openCrashStore(ctx context.Context, c config, logger *log.Logger) (*pgstore.DB, error) {
	switch {
	case c.crashStore == "" || c.crashStore == "file":
		return nil, nil
	case strings.HasPrefix(c.crashStore, "postgres://") || strings.HasPrefix(c.crashStore, "postgresql://"):
	default:
		return nil, fmt.Errorf("-crash-store %q: want postgres://... (or empty: the local file store)", c.crashStore)
	}
	db, err := pgstore.Open(ctx, c.crashStore)
	if err != nil {
		return nil, fmt.Errorf("crash store: %w", err)
	}
	logger.Printf("crash store %s (schema version %d): records and signatures shared", db, db.Version)
	return db, nil
}

// DefaultReaderOU is the organizational unit that makes a client
// certificate (signed by -client-ca) an operator's: it may read every host.
const DefaultReaderOU = "lastgasp-reader"

// viewConfig is the crash view's part of the configuration.
type viewConfig struct {
	webhook     string
	readerOU    string
	readerToken string // file
	// Bounds of the file signature index (sigindex.FileOptions).
	maxSightings, maxHostSightings int
}

func addViewFlags(fs *flag.FlagSet, v *viewConfig) {
	fs.StringVar(&v.webhook, "alert-webhook", "", "POST a JSON alert here on a new crash signature and on a signature whose rate jumps (debounced, retried)")
	fs.StringVar(&v.readerOU, "reader-ou", DefaultReaderOU, "organizational unit (OU) of a client certificate that may read every host in /ui/ and /crashes; other client certificates read only the host they name")
	fs.StringVar(&v.readerToken, "reader-token-file", "", "file holding a bearer token (Authorization: Bearer ...) that may read every host; with it, reads without a credential are refused")
	fs.IntVar(&v.maxSightings, "signature-max-sightings", sigindex.DefaultMaxSightings, "copies of crash reports the file signature index keeps in all (the oldest go first; -1: no bound)")
	fs.IntVar(&v.maxHostSightings, "signature-max-host-sightings", sigindex.DefaultMaxHostSightings, "copies of crash reports the file signature index keeps per host (the oldest go first; -1: no bound)")
}

// crashView is the signature index, what feeds it, the alerts and the web
// view, as lastgaspd wires them.
type crashView struct {
	index    sigindex.Index
	file     *sigindex.File // the embedded index, or nil
	logf     func(format string, args ...any)
	indexer  *collect.Indexer
	live     *collect.Live
	notifier *alert.Notifier // nil without -alert-webhook
	web      *web.Handler
	auth     func(*http.Request) (web.Principal, bool)
	db       *pgstore.DB      // the shared crash store, or nil
	expirer  *pgstore.Expirer // -retention on the shared crash store, or nil
}

// newCrashView opens the file index under the store (the embedded
// default).
func newCrashView(c config, logger *log.Logger, db *pgstore.DB) (*crashView, error) {
	var idx sigindex.Index
	if db != nil {
		idx = db.Index()
	} else {
		fidx, err := sigindex.OpenFileWith(filepath.Join(c.store, store.StateDir, sigindex.JournalName),
			sigindex.FileOptions{MaxSightings: c.view.maxSightings, MaxHostSightings: c.view.maxHostSightings})
		if err != nil {
			return nil, err
		}
		if n := fidx.Skipped(); n > 0 {
			logger.Printf("signatures: %d unreadable journal lines skipped", n)
		}
		idx = fidx
	}
	v := &crashView{index: idx, db: db, logf: logger.Printf}
	v.file, _ = idx.(*sigindex.File)
	v.indexer = &collect.Indexer{Index: idx, Root: c.store, Logf: logger.Printf}
	if db != nil {
		v.indexer.ReadTail = func(rel string, limit int64) ([]byte, error) {
			return db.ReadRecord(context.Background(), rel, limit)
		}
		// The backfill at start: what the database holds that no
		// collector indexed (one stopped between storing and indexing).
		v.indexer.Backlog = func(ctx context.Context, each func(store.RecordMeta, string, string)) error {
			return db.Unindexed(ctx, 0, func(sr pgstore.StoredRecord) error {
				linked := ""
				if sr.LinkedBoot != "" {
					linked = store.HostDir(sr.Meta.Host) + "/" + sr.LinkedBoot
				}
				each(sr.Meta, sr.Path, linked)
				return nil
			})
		}
	}
	var err error
	if c.view.webhook != "" {
		v.notifier = &alert.Notifier{URL: c.view.webhook, Logf: logger.Printf}
		v.indexer.Notify = v.notifier.Notify
	}
	v.auth, err = readAuth(c)
	if err != nil {
		idx.Close()
		return nil, err
	}
	v.web = &web.Handler{Index: idx, Root: c.store, Auth: v.auth, Prefix: "/ui/"}
	if db != nil {
		v.web.Records = sharedRecords{db}
		v.expirer = &pgstore.Expirer{DB: db, MaxAge: c.retention, Logf: logger.Printf}
	}
	v.live = collect.NewLive(v.indexer)
	return v, nil
}

// start runs the live follower, the alerts' sender and the backfill of
// records stored before; stop ends them and closes the index.
func (v *crashView) start(ctx context.Context, logger *log.Logger) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{}, 3)
	go func() {
		if err := v.indexer.Backfill(ctx); err != nil && ctx.Err() == nil {
			logger.Printf("%v", err)
		}
		done <- struct{}{}
	}()
	if v.notifier != nil {
		logger.Printf("alerts to %s", v.notifier.URL)
		go func() { v.notifier.Run(ctx); done <- struct{}{} }()
	} else {
		done <- struct{}{}
	}
	// Records older than -retention leave the shared store as they leave
	// the file store: at start and hourly.
	go func() {
		if v.expirer != nil {
			v.expirer.Run(ctx)
		}
		done <- struct{}{}
	}()
	return func() {
		cancel()
		<-done
		<-done
		<-done
		v.live.Close()
		v.index.Close()
	}
}

// forget is the file store's retention hook (retention.Sweeper.Removed):
// the file index drops the sighting of a removed record, so that no link
// of /ui/ points at it. The shared store's index is pgstore.Expirer's.
func (v *crashView) forget(rel string) {
	if v.file == nil {
		return
	}
	if _, err := v.file.Remove(context.Background(), sigindex.SourceRecord, rel); err != nil {
		v.logf("signatures: forget %s: %v", rel, err)
	}
}

// expire is the file store's retention hook (retention.Sweeper.Swept):
// the file index drops what was added before the sweep's cutoff, live
// reports whose logs retention removes as well as records.
func (v *crashView) expire(cutoff time.Time) {
	if v.file == nil {
		return
	}
	n, err := v.file.Expire(context.Background(), cutoff)
	if err != nil {
		v.logf("signatures: expire: %v", err)
	} else if n > 0 {
		v.logf("signatures: %d sightings older than %s expired", n, cutoff.UTC().Format(time.RFC3339))
	}
}

// readAuth returns how a read request's principal is found:
//   - an Authorization: Bearer token equal to -reader-token-file's: reader;
//   - a verified client certificate (with -client-ca) whose subject has
//     the -reader-ou OU: reader; any other: the host it names (CN);
//   - neither: reader when lastgaspd has neither -client-ca nor
//     -reader-token-file (a lab; like uploads over plain HTTP), else
//     refused.
func readAuth(c config) (func(*http.Request) (web.Principal, bool), error) {
	var token []byte
	if c.view.readerToken != "" {
		b, err := os.ReadFile(c.view.readerToken)
		if err != nil {
			return nil, fmt.Errorf("reader-token-file: %w", err)
		}
		token = []byte(strings.TrimSpace(string(b)))
		if len(token) < 16 {
			return nil, fmt.Errorf("reader-token-file %s: token shorter than 16 bytes", c.view.readerToken)
		}
	}
	open := c.clientCA == "" && token == nil
	ou := c.view.readerOU
	return func(r *http.Request) (web.Principal, bool) {
		if token != nil {
			if got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
				if subtle.ConstantTimeCompare([]byte(got), token) == 1 {
					return web.Principal{Reader: true}, true
				}
				return web.Principal{}, false
			}
		}
		if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 && len(r.TLS.PeerCertificates) > 0 {
			cert := r.TLS.PeerCertificates[0]
			if ou != "" && slices.Contains(cert.Subject.OrganizationalUnit, ou) {
				return web.Principal{Reader: true}, true
			}
			if cert.Subject.CommonName != "" {
				return web.Principal{Host: cert.Subject.CommonName}, true
			}
			return web.Principal{}, false
		}
		return web.Principal{Reader: open}, open
	}, nil
}

// scopedCrashes serves /crashes to readers whole and to a host's
// credential with that host only.
func (v *crashView) scopedCrashes(idx *store.CrashIndex) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := v.auth(r)
		if !ok {
			http.Error(w, "a reader credential is required", http.StatusUnauthorized)
			return
		}
		cs, err := idx.List()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		if v.db != nil {
			if cs, err = mergeShared(r.Context(), v.db, cs); err != nil {
				http.Error(w, "crash store unavailable", http.StatusServiceUnavailable)
				return
			}
		}
		if !p.Reader {
			cs = slices.DeleteFunc(cs, func(h store.HostCrashes) bool { return p.Host == "" || h.Host != store.HostDir(p.Host) })
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		writeCrashes(w, cs)
	})
}

// recordStored is the upload server's hook: index each new record, and
// the assembled text of a multi-part crash its part completed (on either
// crash store: the file store's <crash id>.dmesg.txt, or the shared
// store's, whichever collector received the other parts).
func (v *crashView) recordStored(meta store.RecordMeta, st store.Stored) {
	if st.Assembled != "" {
		v.indexer.CrashAssembled(context.Background(), meta, st.Assembled, st.Linked)
	}
	if st.Duplicate {
		return
	}
	v.indexer.RecordStored(context.Background(), meta, st.Path, st.Linked)
}

// metrics is the crash view's part of /metrics.
func (v *crashView) metrics() prometheus.Collector { return viewMetrics{v} }

type viewMetrics struct{ v *crashView }

var (
	descSigRecords = prometheus.NewDesc("lastgaspd_signatures_records_total", "Crash records indexed by signature.", nil, nil)
	descSigLive    = prometheus.NewDesc("lastgaspd_signatures_live_reports_total", "Live netconsole reports indexed by signature.", nil, nil)
	descSigNone    = prometheus.NewDesc("lastgaspd_signatures_no_report_total", "Crash records in which no report was found.", nil, nil)
	descSigCut     = prometheus.NewDesc("lastgaspd_signatures_cut_reports_total", "Crash records whose text ends inside their report (a console tail copied mid-panic): not indexed.", nil, nil)
	descSigLDrop   = prometheus.NewDesc("lastgaspd_signatures_live_dropped_total", "Live reports not followed (too many at once, queue full).", nil, nil)
	descSigErr     = prometheus.NewDesc("lastgaspd_signatures_errors_total", "Failed additions to the signature index.", nil, nil)
	descAlerts     = prometheus.NewDesc("lastgaspd_alerts_total", "Webhook alerts by outcome (enqueued, sent, failed, dropped, retries, debounced).", []string{"outcome"}, nil)
	descAlertsQ    = prometheus.NewDesc("lastgaspd_alerts_queued", "Webhook alerts waiting to be sent.", nil, nil)
	descExpired    = prometheus.NewDesc("lastgaspd_crash_store_expired_total", "Crash records this collector deleted from the shared crash store for being older than -retention.", nil, nil)
	descSigKept    = prometheus.NewDesc("lastgaspd_signatures_sightings", "Copies of crash reports the file signature index holds.", nil, nil)
	descSigEvicted = prometheus.NewDesc("lastgaspd_signatures_evicted_total", "Copies of crash reports the file signature index dropped, or did not keep, at -signature-max-sightings or -signature-max-host-sightings (the oldest first).", nil, nil)
	descSigExpired = prometheus.NewDesc("lastgaspd_signatures_expired_total", "Copies of crash reports the file signature index dropped for being older than -retention, or because retention removed their record.", nil, nil)
	descExpireErr  = prometheus.NewDesc("lastgaspd_crash_store_expire_failures_total", "Retention runs on the shared crash store that failed (database unavailable).", nil, nil)
)

func (m viewMetrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descSigRecords, descSigLive, descSigNone, descSigCut, descSigLDrop, descSigErr, descAlerts, descAlertsQ, descExpired, descExpireErr, descSigKept, descSigEvicted, descSigExpired} {
		ch <- d
	}
}

func (m viewMetrics) Collect(ch chan<- prometheus.Metric) {
	s := m.v.indexer.Stats()
	c := func(d *prometheus.Desc, v uint64, l ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), l...)
	}
	c(descSigRecords, s.Records)
	c(descSigLive, s.LiveReports)
	c(descSigNone, s.NoReport)
	c(descSigCut, s.Cut)
	c(descSigLDrop, s.LiveDropped)
	c(descSigErr, s.Errors)
	var a alert.Stats
	if m.v.notifier != nil {
		a = m.v.notifier.Stats()
	}
	for _, o := range []struct {
		name string
		v    uint64
	}{{"enqueued", a.Enqueued}, {"sent", a.Sent}, {"failed", a.Failed}, {"dropped", a.Dropped}, {"retries", a.Retries}, {"debounced", a.Debounced}} {
		c(descAlerts, o.v, o.name)
	}
	ch <- prometheus.MustNewConstMetric(descAlertsQ, prometheus.GaugeValue, float64(a.Queued))
	if f := m.v.file; f != nil {
		fs := f.Stats()
		ch <- prometheus.MustNewConstMetric(descSigKept, prometheus.GaugeValue, float64(fs.Sightings))
		c(descSigEvicted, fs.Evicted)
		c(descSigExpired, fs.Expired+fs.Removed)
	}
	if x := m.v.expirer; x != nil {
		c(descExpired, x.Expired())
		c(descExpireErr, x.Failures())
	}
}

// mergeShared sets each host's record line from the shared crash store
// (the whole fleet's records), keeping the local netconsole lines.
func mergeShared(ctx context.Context, db *pgstore.DB, cs []store.HostCrashes) ([]store.HostCrashes, error) {
	latest, err := db.Latest(ctx)
	if err != nil {
		return nil, err
	}
	for i := range cs {
		if hc, ok := latest[cs[i].Host]; ok {
			cs[i].Record, cs[i].Verified = hc.Record, hc.Verified
			delete(latest, cs[i].Host)
		}
	}
	for _, hc := range latest {
		cs = append(cs, hc)
	}
	slices.SortFunc(cs, func(a, b store.HostCrashes) int { return strings.Compare(a.Host, b.Host) })
	return cs, nil
}

// sharedRecords is the crash view's record reader on the shared crash
// store: record downloads and the lines before a crash come from the
// database, so any collector serves any host's records.
type sharedRecords struct{ db *pgstore.DB }

func (s sharedRecords) ReadRecord(ctx context.Context, rel string, limit int64) ([]byte, error) {
	return s.db.ReadRecord(ctx, rel, limit)
}

func (s sharedRecords) HostRecords(ctx context.Context, host string) ([]web.Record, error) {
	rs, err := s.db.HostRecords(ctx, host)
	if err != nil {
		return nil, err
	}
	out := make([]web.Record, len(rs))
	for i, r := range rs {
		out[i] = web.Record{Path: r.Path, Size: r.Meta.Size, Time: r.Meta.Received}
	}
	return out, nil
}
