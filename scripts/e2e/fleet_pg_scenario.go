package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"
	"github.com/jackc/pgx/v5"

	"github.com/lastgasp/lastgasp/store/pgstore/pgtest"
)

// dbRecord is one row of the shared crash store's records table, read
// directly from the database (not through lastgaspd).
type dbRecord struct {
	host, digest, path, collector string
}

// dbRecords reads every row of the records table and how many rows each
// (host, digest) has.
func dbRecords(ctx context.Context, url string) ([]dbRecord, map[string]int, error) {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return nil, nil, fmt.Errorf("crash store: %w", err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, "SELECT host, digest, path, collector FROM records ORDER BY host, path")
	if err != nil {
		return nil, nil, fmt.Errorf("crash store: %w", err)
	}
	defer rows.Close()
	var out []dbRecord
	per := map[string]int{}
	for rows.Next() {
		var r dbRecord
		if err := rows.Scan(&r.host, &r.digest, &r.path, &r.collector); err != nil {
			return nil, nil, err
		}
		out = append(out, r)
		per[r.host+"/"+r.digest]++
	}
	return out, per, rows.Err()
}

// reStoredAs is the agent's line for an acknowledged record.
var reStoredAs = regexp.MustCompile(`ship: (\S+): \d+ bytes (?:already )?stored as (\S+), removed`)

// reRingShipped is the agent's line for its ring's records.
var reRingShipped = regexp.MustCompile(`ring ship: shipped=(\d+) kept=(\d+)`)

// fleetGuest boots a guest that panics once (lastgasp.test_panic) and ships
// its record on the boot after, and returns the record paths it says were
// acknowledged and its console from the second boot on.
func fleetGuest(e *Env, name, args string) (*VM, []string, string, error) {
	vm, off, err := bootAndPanicAs(e, name, args+" lastgasp.host="+name)
	if err != nil {
		return nil, nil, "", fmt.Errorf("%s: %w", name, err)
	}
	r, err := waitHandoff(vm, off)
	if err != nil {
		return vm, nil, "", fmt.Errorf("%s: second boot: %w", name, err)
	}
	out := vm.Serial()[off:r.end]
	if r.produced == 0 || r.shipped != r.produced || r.kept != 0 {
		return vm, nil, out, fmt.Errorf("%s: pstore records %d, shipped %d, kept %d; want all shipped, none kept", name, r.produced, r.shipped, r.kept)
	}
	// The agent's ring (its own console and pmsg of the boot before) is
	// shipped too, after the pstore records.
	shipped := r.shipped
	if m := reRingShipped.FindStringSubmatch(out); m != nil {
		if m[2] != "0" {
			return vm, nil, out, fmt.Errorf("%s: ring records kept: %s", name, m[0])
		}
		n, _ := strconv.Atoi(m[1])
		shipped += n
	}
	var paths []string
	for _, m := range reStoredAs.FindAllStringSubmatch(out, -1) {
		paths = append(paths, m[2])
	}
	if len(paths) != shipped {
		return vm, paths, out, fmt.Errorf("%s: %d records shipped, %d acknowledgement lines", name, shipped, len(paths))
	}
	return vm, paths, out, nil
}

// httpGet returns the body of a GET on one collector's HTTP side.
func httpGet(c *Collector, path string) (string, error) {
	cl := &http.Client{Timeout: 10 * time.Second}
	resp, err := cl.Get(fmt.Sprintf("http://127.0.0.1:%d%s", c.HTTPPort, path))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return string(b), fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return string(b), err
}

// fleetView checks what one collector shows of the fleet: /crashes lists
// both guests' records, and in Chromium the overview has the one sysrq
// signature with 2 crashes on both hosts, and each host page has its
// crash and a record download. Screenshots are named after the collector.
func fleetView(br *browser, c *Collector, name string, hosts []string) error {
	err := waitFor(20*time.Second, func() (bool, string) {
		body, err := httpGet(c, "/crashes")
		if err != nil {
			return false, fmt.Sprintf("%s /crashes: %v", name, err)
		}
		for _, h := range hosts {
			if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(h) + `\s+record\s.*` + regexp.QuoteMeta(panicLine)).MatchString(body) {
				return false, fmt.Sprintf("%s /crashes has no record line for %s: %q", name, h, body)
			}
		}
		return true, ""
	})
	if err != nil {
		return err
	}
	base := fmt.Sprintf("http://127.0.0.1:%d/ui/", c.HTTPPort)
	var ov string
	err = waitFor(20*time.Second, func() (bool, string) {
		ov, err = br.page(base, "#signatures",
			`Array.from(document.querySelectorAll("tr.sig")).map(r => r.querySelector(".count").textContent + ":" + r.querySelector(".title").textContent).join("|") + "#" +
			 Array.from(document.querySelectorAll("#hosts li")).map(l => l.textContent).join(",")`, name+"-overview")
		if err != nil {
			return false, err.Error()
		}
		return ov == "2:"+panicLine+"#"+strings.Join(hosts, ","), fmt.Sprintf("%s overview %q, want one signature with 2 crashes on %v", name, ov, hosts)
	})
	if err != nil {
		return err
	}
	for _, h := range hosts {
		got, err := br.page(base+"host/"+h, "#host",
			`document.querySelectorAll("div.crash").length + "|" + Array.from(document.querySelectorAll("a.download")).map(a => a.textContent).join(",")`, name+"-host-"+h)
		if err != nil {
			return err
		}
		if n, dl, _ := strings.Cut(got, "|"); n != "1" || !strings.Contains(","+dl, ","+h+"/crash/dmesg-ramoops-") {
			return fmt.Errorf("%s host page of %s: %q, want 1 crash and its record download", name, h, got)
		}
	}
	return nil
}

// download opens a host page, clicks its crash's dmesg record link (the
// Content-Disposition: attachment download) in Chromium, and returns the
// bytes Chromium saved.
func (b *browser) download(url, name string) ([]byte, string, error) {
	dir := filepath.Join(b.dir, "downloads", name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, "", err
	}
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	progress := chromedp.Events(ctx, cdpbrowser.DownloadProgress)
	sel := `a.download[href*="/crash/dmesg-ramoops-"]`
	var href string
	err := chromedp.Do(ctx, chromedp.Navigate(url), chromedp.WaitReady(chromedp.CSS(sel)),
		chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
			events := true
			_, err := chromedp.Call(ctx, cdpbrowser.SetDownloadBehavior, cdpbrowser.SetDownloadBehaviorParams{
				Behavior: cdpbrowser.SetDownloadBehaviorBehaviorAllowAndName, DownloadPath: dir, EventsEnabled: &events})
			return err
		}),
		chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
			var err error
			href, err = chromedp.Evaluate[string](`document.querySelector('`+sel+`').textContent`)(ctx, t)
			return err
		}),
		chromedp.Click(chromedp.CSS(sel)))
	if err != nil {
		return nil, "", fmt.Errorf("chromium %s: download: %w", url, err)
	}
	for ev, err := range progress {
		if err != nil {
			return nil, href, fmt.Errorf("chromium %s: download: %w", url, err)
		}
		switch ev.State {
		case cdpbrowser.DownloadProgressStateCompleted:
			data, err := os.ReadFile(filepath.Join(dir, ev.GUID))
			return data, href, err
		case cdpbrowser.DownloadProgressStateCanceled:
			return nil, href, fmt.Errorf("chromium %s: download of %s canceled", url, href)
		}
	}
	return nil, href, fmt.Errorf("chromium %s: download of %s did not complete", url, href)
}

// fleetTwoCollectors: two collectors share one PostgreSQL crash store.
// Guest A ships its record to collector 1; collector 1 is then killed, and
// guest B (the same two upload URLs, collector 1 first) fails over to
// collector 2. Both crashes are visible from either collector (collector 1
// is restarted at the end), no record is lost, and each is one row; each
// collector's host page downloads the record the other one received.
func fleetTwoCollectors(e *Env) (string, error) {
	ctx := context.Background()
	pg, err := pgtest.New()
	if err != nil {
		return "", err
	}
	defer pg.Close()
	url, err := pg.CreateDB(ctx, "lastgasp")
	if err != nil {
		return "", err
	}
	c1, err := e.StartCollector("collector1", "-crash-store", url)
	if err != nil {
		return "", err
	}
	c2, err := e.StartCollector("collector2", "-crash-store", url)
	if err != nil {
		return "", err
	}
	c1URL := fmt.Sprintf("http://10.0.2.2:%d", c1.HTTPPort)
	c2URL := fmt.Sprintf("http://10.0.2.2:%d", c2.HTTPPort)
	upload := "lastgasp.upload=" + c1URL + "," + c2URL

	vmA, pathsA, _, err := fleetGuest(e, "guest-a", fmt.Sprintf("lastgasp.receiver=10.0.2.2:%d %s", c1.UDPPort, upload))
	if err != nil {
		return "", err
	}
	vmA.Kill()
	if v, err := c1.Metric("lastgaspd_uploads_stored_total"); err != nil || int(v) != len(pathsA) {
		return "", fmt.Errorf("collector 1 stored %v records (%v), want guest A's %d", v, err, len(pathsA))
	}
	// A's records are acknowledged (the agent removed them): collector 1
	// goes down before guest B boots.
	c1.Stop()

	vmB, pathsB, outB, err := fleetGuest(e, "guest-b", fmt.Sprintf("lastgasp.receiver=10.0.2.2:%d %s", c2.UDPPort, upload))
	if err != nil {
		return "", err
	}
	vmB.Kill()
	if !strings.Contains(outB, "failing over to "+c2URL) || !strings.Contains(outB, "acknowledged by "+c2URL) {
		return "", fmt.Errorf("guest B did not fail over from %s to %s: %q", c1URL, c2URL, outB)
	}
	if v, err := c2.Metric("lastgaspd_uploads_stored_total"); err != nil || int(v) != len(pathsB) {
		return "", fmt.Errorf("collector 2 stored %v records (%v), want guest B's %d", v, err, len(pathsB))
	}

	// The database itself: every acknowledged record is one row, stored
	// by the collector that acknowledged it.
	rows, per, err := dbRecords(ctx, url)
	if err != nil {
		return "", err
	}
	want := map[string]string{} // path -> collector's -http address
	for _, p := range pathsA {
		want[p] = fmt.Sprintf("127.0.0.1:%d", c1.HTTPPort)
	}
	for _, p := range pathsB {
		want[p] = fmt.Sprintf("127.0.0.1:%d", c2.HTTPPort)
	}
	got := map[string]string{}
	for _, r := range rows {
		got[r.path] = r.collector
	}
	if len(rows) != len(want) || fmt.Sprint(got) != fmt.Sprint(want) {
		return "", fmt.Errorf("records table %v, want %v (path -> collector)", got, want)
	}
	for k, n := range per {
		if n != 1 {
			return "", fmt.Errorf("record %s stored %d times", k, n)
		}
	}

	// Collector 1 comes back (same store, same database): it shows B's
	// crash too, which it never received.
	if err := c1.Start(); err != nil {
		return "", fmt.Errorf("restart collector 1: %w", err)
	}
	br, err := newBrowser(filepath.Join(e.Dir, "screenshots"))
	if err != nil {
		return "", err
	}
	defer br.cancel()
	hosts := []string{"guest-a", "guest-b"}
	for _, v := range []struct {
		c    *Collector
		name string
	}{{c2, "collector2"}, {c1, "collector1"}} {
		if err := fleetView(br, v.c, v.name, hosts); err != nil {
			return "", err
		}
	}
	// Each collector serves the record it did not receive, from the
	// database: a click on the host page's download link saves the bytes
	// whose sha256 is the row's digest.
	digests := map[string]string{}
	for _, r := range rows {
		digests[r.path] = r.digest
	}
	for _, v := range []struct {
		c    *Collector
		name string
		host string
	}{{c1, "collector1", "guest-b"}, {c2, "collector2", "guest-a"}} {
		data, ref, err := br.download(fmt.Sprintf("http://127.0.0.1:%d/ui/host/%s", v.c.HTTPPort, v.host), v.name+"-"+v.host)
		if err != nil {
			return "", err
		}
		sum := sha256.Sum256(data)
		if d := digests[ref]; d == "" || hex.EncodeToString(sum[:]) != d {
			return "", fmt.Errorf("%s: downloaded %s: %d bytes with sha256 %x, want the row's digest %q", v.name, ref, len(data), sum, d)
		}
	}
	all := append(append([]string(nil), pathsA...), pathsB...)
	sort.Strings(all)
	return fmt.Sprintf("rows=%d lost=0 downloads=2 records=%s screenshots=%s", len(rows), strings.Join(all, ","), shortPath(br.dir)), nil
}
