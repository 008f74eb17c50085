package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/lastgasp/lastgasp/netconsole/forward"
	"github.com/lastgasp/lastgasp/netconsole/receiver"
	shipserver "github.com/lastgasp/lastgasp/pstore/ship/server"
	"github.com/lastgasp/lastgasp/store"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrape fetches url and parses it as the Prometheus text exposition format.
func scrape(url string) (map[string]*dto.MetricFamily, error) {
	resp, err := http.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		return nil, fmt.Errorf("GET %s: Content-Type %q, want text/plain", url, ct)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	return p.TextToMetricFamilies(resp.Body)
}

// sample is one metric's value and type, with its labels as "k=v,k=v".
type sample struct {
	Type  dto.MetricType
	Value float64
}

// samples flattens the families named in want, keyed like want:
// `name` or `name{label="value"}`.
func samples(fams map[string]*dto.MetricFamily) map[string]sample {
	out := map[string]sample{}
	for name, f := range fams {
		for _, m := range f.GetMetric() {
			key := name
			if len(m.GetLabel()) > 0 {
				var ls []string
				for _, l := range m.GetLabel() {
					ls = append(ls, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
				}
				key += "{" + strings.Join(ls, ",") + "}"
			}
			var v float64
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				v = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				v = m.GetGauge().GetValue()
			case dto.MetricType_UNTYPED:
				v = m.GetUntyped().GetValue()
			}
			out[key] = sample{f.GetType(), v}
		}
	}
	return out
}

// TestMetricsExposition runs lastgaspd on loopback with a syslog forward,
// sends it netconsole datagrams and crash-record uploads whose effects the
// kernel's netconsole document and the upload protocol (pstore/ship/doc.go)
// define, and checks the counters in the parsed /metrics.
func TestMetricsExposition(t *testing.T) {
	syslog, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer syslog.Close()
	var frames atomic.Int64
	go func() {
		for {
			c, err := syslog.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					if _, err := forward.ReadFrame(r); err != nil {
						return
					}
					frames.Add(1)
				}
			}()
		}
	}()

	udp, httpAddr := freePort(t, "udp"), freePort(t, "tcp")
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	logs := &syncWriter{w: &strings.Builder{}}
	go func() {
		done <- run(ctx, []string{"-netconsole", udp, "-http", httpAddr, "-store", t.TempDir(), "-sockets", "1",
			"-forward", "tcp://" + syslog.Addr().String()}, io.Discard, logs)
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run = %v, want nil after cancel", err)
		}
	}()
	base := "http://" + httpAddr
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := scrape(base + "/metrics"); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("/metrics: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}

	// One sender, in the kernel's extended format
	// ("<prival>,<seq>,<ts>,<flags>[,ncfrag=<off>/<total>];<text>"):
	// 9 datagrams, 5 messages (one of them legacy, one reassembled from
	// fragments), 1 announcement, 1 duplicate, 1 gap of 3, 1 overlapping
	// fragment, 1 malformed header.
	c, err := net.Dial("udp", udp)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, d := range []string{
		"6,100,1000,-;lastgasp: netconsole armed host=box1 boot=b1",
		"6,101,1001,-;first line",
		"6,101,1001,-;first line",              // duplicate
		"3,105,1005,-;after a gap of 102..104", // gap: 3 lost
		"6,106,1006,-,ncfrag=0/20;aaaaaaaaaa",
		"6,106,1006,-,ncfrag=5/20;bbbbbbbbbb", // overlaps the first fragment: dropped
		"6,106,1006,-,ncfrag=10/20;cccccccccc",
		"2048,107,1007,-;prival over 2047", // malformed
		"plain console text",               // legacy
	} {
		if _, err := c.Write([]byte(d)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond) // keep the order on the socket
	}

	// Uploads: a record, the same again (a duplicate), a new digest with a
	// body that does not match it (400) and a GET (405).
	put := func(body, digestOf string) int {
		sum := sha256.Sum256([]byte(digestOf))
		req, _ := http.NewRequest(http.MethodPut, base+"/v1/hosts/box1/records/"+hex.EncodeToString(sum[:]), strings.NewReader(body))
		req.Header.Set("Lastgasp-Record-Name", "dmesg-ramoops-0")
		req.Header.Set("Lastgasp-Boot-Id", "b2")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("PUT: %v", err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	rec := "<0>[    3.1] Kernel panic - not syncing: sysrq triggered crash\n"
	for _, u := range []struct {
		body, digestOf string
		want           int
	}{{rec, rec, 200}, {rec, rec, 200}, {"other bytes", "a record not stored", 400}} {
		if got := put(u.body, u.digestOf); got != u.want {
			t.Errorf("PUT %q = %d, want %d", u.body, got, u.want)
		}
	}
	if resp, err := http.Get(base + "/v1/hosts/box1/records/00"); err != nil {
		t.Fatal(err)
	} else if resp.Body.Close(); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET record = %d, want 405", resp.StatusCode)
	}

	counter, gauge := dto.MetricType_COUNTER, dto.MetricType_GAUGE
	want := map[string]sample{
		"lastgaspd_netconsole_datagrams_total":                       {counter, 9},
		"lastgaspd_netconsole_messages_total":                        {counter, 5},
		"lastgaspd_netconsole_legacy_messages_total":                 {counter, 1},
		"lastgaspd_netconsole_malformed_total":                       {counter, 1},
		"lastgaspd_netconsole_truncated_total":                       {counter, 0},
		"lastgaspd_netconsole_gaps_total":                            {counter, 1},
		"lastgaspd_netconsole_lost_messages_total":                   {counter, 3},
		"lastgaspd_netconsole_duplicates_total":                      {counter, 1},
		"lastgaspd_netconsole_reboots_total":                         {counter, 0},
		"lastgaspd_netconsole_announcements_total":                   {counter, 1},
		"lastgaspd_netconsole_write_errors_total":                    {counter, 0},
		"lastgaspd_netconsole_forwarded_total":                       {counter, 5},
		"lastgaspd_netconsole_hosts":                                 {gauge, 1},
		"lastgaspd_netconsole_rate_limited_total":                    {counter, 0},
		"lastgaspd_netconsole_no_announcement_total":                 {counter, 0},
		"lastgaspd_netconsole_host_conflicts_total":                  {counter, 0},
		"lastgaspd_netconsole_pending_bytes":                         {gauge, 0},
		`lastgaspd_netconsole_dropped_total{reason="overlap"}`:       {counter, 1},
		`lastgaspd_netconsole_dropped_total{reason="timeout"}`:       {counter, 0},
		`lastgaspd_netconsole_dropped_total{reason="write"}`:         {counter, 0},
		"lastgaspd_forward_enqueued_total":                           {counter, 5},
		"lastgaspd_forward_sent_total":                               {counter, 5},
		"lastgaspd_forward_dropped_total":                            {counter, 0},
		"lastgaspd_forward_connects_total":                           {counter, 1},
		"lastgaspd_forward_queued":                                   {gauge, 0},
		"lastgaspd_uploads_total":                                    {counter, 4},
		"lastgaspd_uploads_stored_total":                             {counter, 1},
		"lastgaspd_uploads_duplicate_total":                          {counter, 1},
		`lastgaspd_uploads_rejected_total{reason="digest-mismatch"}`: {counter, 1},
		`lastgaspd_uploads_rejected_total{reason="method"}`:          {counter, 1},
		"lastgaspd_store_file_opens_total":                           {counter, 1}, // box1/b1/kernel.log
		"lastgaspd_store_open_files":                                 {gauge, 1},
	}
	var got map[string]sample
	var fams map[string]*dto.MetricFamily
	deadline = time.Now().Add(10 * time.Second)
	for {
		if fams, err = scrape(base + "/metrics"); err != nil {
			t.Fatal(err)
		}
		got = samples(fams)
		sub := map[string]sample{}
		for k := range want {
			if v, ok := got[k]; ok {
				sub[k] = v
			}
		}
		diff := cmp.Diff(want, sub)
		if diff == "" && frames.Load() == 5 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/metrics mismatch (-want +got):\n%s\nframes at the syslog server: %d\nlog:\n%s", diff, frames.Load(), logs.w)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// Every drop reason is exported, zeros included.
	for _, r := range []string{"out-of-range", "invalid-fragment", "conflict", "overlap", "too-large",
		"pending-limit", "timeout", "drained", "reboot", "memory"} {
		if _, ok := got[`lastgaspd_netconsole_dropped_total{reason="`+r+`"}`]; !ok {
			t.Errorf("no lastgaspd_netconsole_dropped_total for reason %q", r)
		}
	}
	// The Go runtime's and the process's collectors are registered.
	for _, name := range []string{"go_goroutines", "process_open_fds", "process_resident_memory_bytes"} {
		if s, ok := got[name]; !ok || s.Value <= 0 {
			t.Errorf("%s = %+v, %v, want a positive sample", name, s, ok)
		}
	}
	// Nothing of the old name space is left.
	for name := range fams {
		if strings.HasPrefix(name, "lastgasp_") {
			t.Errorf("metric %s: want the lastgaspd_ prefix", name)
		}
	}
	if !bytes.Contains([]byte(fams["lastgaspd_netconsole_dropped_total"].GetHelp()), []byte("reason")) {
		t.Errorf("lastgaspd_netconsole_dropped_total help %q", fams["lastgaspd_netconsole_dropped_total"].GetHelp())
	}
}

// TestMetricsRateLimited floods a real receiver with a small rate limit and
// checks the total and per-host rate-limit metrics on a loopback HTTP server
// running the collector's metrics handler.
func TestMetricsRateLimited(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	st := &store.Store{Root: t.TempDir()}
	// Burst 5 at 1 message/s: of 25 messages sent within well under a
	// second, 5 or 6 pass. Announcements are never limited.
	rx := &receiver.Server{Store: st, Logf: t.Logf, RateLimit: 1, RateBurst: 5, RateNoteInterval: 50 * time.Millisecond}
	ctx, cancel := context.WithCancel(t.Context())
	rxDone := make(chan error, 1)
	go func() { rxDone <- rx.Serve(ctx, pc) }()
	defer func() {
		cancel()
		<-rxDone
	}()
	hl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: metricsHandler(metricSources{receiver: rx.Stats, uploads: (&shipserver.Server{}).Stats,
		store: st.Stats, rateLimitedHosts: rx.RateLimitedHosts}, nil)}
	go hs.Serve(hl)
	defer hs.Close()

	send := func(host string, n int) {
		c, err := net.Dial("udp", pc.LocalAddr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.Write([]byte("6,1,1,-;lastgasp: netconsole armed host=" + host + " boot=b1"))
		for i := range n {
			c.Write([]byte(fmt.Sprintf("6,%d,%d,-;line %d", i+2, i+2, i)))
			time.Sleep(time.Millisecond)
		}
	}
	send("flood1", 25)
	send("calm1", 3)

	url := "http://" + hl.Addr().String() + "/metrics"
	var got map[string]sample
	deadline := time.Now().Add(10 * time.Second)
	for {
		fams, err := scrape(url)
		if err != nil {
			t.Fatal(err)
		}
		got = samples(fams)
		stored, limited := got["lastgaspd_netconsole_messages_total"].Value, got["lastgaspd_netconsole_rate_limited_total"].Value
		host := got[`lastgaspd_netconsole_host_rate_limited_total{host="flood1"}`].Value
		// 2 announcements, 28 lines: each line is stored or limited.
		if stored+limited == 30 && host == limited {
			if limited < 19 || limited > 20 {
				t.Errorf("rate limited %v of flood1's 25 lines, want 19 or 20", limited)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("messages %v + rate limited %v, want 30; flood1's rate limited %v", stored, limited, host)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if s, ok := got[`lastgaspd_netconsole_host_rate_limited_total{host="calm1"}`]; ok {
		t.Errorf("calm1 was not limited but is exported: %+v", s)
	}
}
