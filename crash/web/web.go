// Package web is lastgaspd's crash view: server-rendered pages
// (html/template, so every kernel string and host name is escaped) over the
// signature index (store/sigindex) and the store's files: the fleet
// overview (signatures by recent count, new ones marked), a signature page
// (hosts, releases, sample trace, links to records), and a host page (boots
// with their loss counters, the last lines before each crash, record
// downloads). Every read is scoped by the request's Principal.
package web

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lastgasp/lastgasp/store"
	"github.com/lastgasp/lastgasp/store/logline"
	"github.com/lastgasp/lastgasp/store/sigindex"
)

// Principal is who is reading.
type Principal struct {
	// Reader: may read every host (an operator).
	Reader bool
	// Host: without Reader, the only host this principal may read (a
	// host's own client certificate).
	Host string
}

// CanRead reports whether p may read host.
func (p Principal) CanRead(host string) bool {
	return p.Reader || p.Host != "" && p.Host == host
}

// Record is one crash record as a host page lists it.
type Record struct {
	// Path is the record's name in the store's layout,
	// <host dir>/crash/<name>: what file/ serves.
	Path string
	// Size is the record's length in bytes.
	Size int64
	// Time is when it was stored.
	Time time.Time
}

// Records is where the crash records are read from: the files under the
// store root by default, or the shared crash store (lastgaspd
// -crash-store), so that any collector serves any host's records.
type Records interface {
	// ReadRecord returns the bytes of the record at rel (Record.Path),
	// only its last limit bytes if limit > 0; an error wrapping
	// os.ErrNotExist if there is none, store.ErrUnavailable if the store
	// cannot be read now.
	ReadRecord(ctx context.Context, rel string, limit int64) ([]byte, error)
	// HostRecords returns the records of host (a name as the upload
	// protocol has it), newest first.
	HostRecords(ctx context.Context, host string) ([]Record, error)
}

// Handler serves the pages under Prefix.
type Handler struct {
	// Index is the signature index.
	Index sigindex.Index
	// Root is the store root: boot directories and their logs, and the
	// records unless Records is set.
	Root string
	// Records, if set, reads the crash records instead of the files
	// under Root.
	Records Records
	// Auth returns the request's principal; ok false answers 401 (no
	// credential) before anything is read.
	Auth func(*http.Request) (p Principal, ok bool)
	// Prefix is where the handler is mounted, e.g. "/ui/".
	Prefix string
	// NewFor marks a signature first seen within it as new; zero means
	// 24 hours. RecentFor is the window of the recent count (24 hours).
	NewFor, RecentFor time.Duration
	// Now returns the time; nil means time.Now.
	Now func() time.Time
}

func (h *Handler) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	p, ok := h.Auth(r)
	if !ok {
		http.Error(w, "a reader credential is required", http.StatusUnauthorized)
		return
	}
	rest := strings.TrimPrefix(r.URL.Path, h.Prefix)
	kind, arg, _ := strings.Cut(rest, "/")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	switch kind {
	case "":
		if !p.Reader && p.Host != "" {
			http.Redirect(w, r, h.Prefix+"host/"+url.PathEscape(p.Host), http.StatusFound)
			return
		}
		h.overview(w, r, p)
	case "sig":
		h.signature(w, r, p, arg)
	case "host":
		h.host(w, r, p, arg)
	case "file":
		h.file(w, r, p, arg)
	default:
		http.NotFound(w, r)
	}
}

func (h *Handler) records() Records {
	if h.Records != nil {
		return h.Records
	}
	return FileRecords{Root: h.Root}
}

func (h *Handler) fail(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, sigindex.ErrNotFound), errors.Is(err, os.ErrNotExist):
		http.Error(w, "not found", http.StatusNotFound)
		return
	case errors.Is(err, store.ErrUnavailable):
		http.Error(w, "crash store unavailable", http.StatusServiceUnavailable)
		return
	}
	http.Error(w, "internal error", http.StatusInternalServerError)
}

func (h *Handler) render(w http.ResponseWriter, name string, data any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := pages.ExecuteTemplate(w, name, data); err != nil {
		fmt.Fprintf(w, "<p>render error</p>")
	}
}

type sigRow struct {
	sigindex.Signature
	New bool
}

func (h *Handler) overview(w http.ResponseWriter, r *http.Request, p Principal) {
	now := h.now()
	since := now.Add(-orDur(h.RecentFor, 24*time.Hour))
	sigs, err := h.Index.Signatures(r.Context(), sigindex.Query{Since: since})
	if err != nil {
		h.fail(w, err)
		return
	}
	newSince := now.Add(-orDur(h.NewFor, 24*time.Hour))
	rows := make([]sigRow, len(sigs))
	hosts := map[string]bool{}
	for i, s := range sigs {
		rows[i] = sigRow{Signature: s, New: !s.FirstSeen.Before(newSince)}
		for _, hn := range s.Hosts {
			hosts[hn] = true
		}
	}
	h.render(w, "overview", map[string]any{"P": h.Prefix, "Sigs": rows, "Hosts": sortedKeys(hosts), "Now": now})
}

func (h *Handler) signature(w http.ResponseWriter, r *http.Request, p Principal, id string) {
	scope := ""
	if !p.Reader {
		scope = p.Host
	}
	s, crashes, err := h.Index.Signature(r.Context(), id, scope)
	if err != nil {
		h.fail(w, err)
		return
	}
	h.render(w, "signature", map[string]any{"P": h.Prefix, "S": s, "Crashes": crashes})
}

// bootView is one boot on a host page.
type bootView struct {
	Boot                   string
	Gaps, Lost, Drops, RLs int
	Last                   time.Time
}

// crashView is one crash on a host page.
type crashView struct {
	sigindex.Crash
	Title  string
	Before []string // the last lines before the crash
}

func (h *Handler) host(w http.ResponseWriter, r *http.Request, p Principal, host string) {
	if !p.CanRead(host) {
		http.Error(w, "forbidden", http.StatusForbidden)
		return
	}
	crashes, err := h.Index.HostCrashes(r.Context(), host)
	if err != nil {
		h.fail(w, err)
		return
	}
	hostDir := store.HostDir(host)
	boots := h.boots(hostDir)
	recs, err := h.records().HostRecords(r.Context(), host)
	if err != nil {
		h.fail(w, err)
		return
	}
	if len(crashes) == 0 && len(boots) == 0 && len(recs) == 0 {
		http.NotFound(w, r)
		return
	}
	var views []crashView
	for _, c := range crashes {
		cv := crashView{Crash: c}
		if s, _, err := h.Index.Signature(r.Context(), c.SignatureID, host); err == nil {
			cv.Title = s.Title
		}
		cv.Before = h.before(r.Context(), c)
		views = append(views, cv)
	}
	h.render(w, "host", map[string]any{"P": h.Prefix, "Host": host, "Boots": boots, "Crashes": views, "Records": recs})
}

// boots lists a host's boot directories with the loss the collector noted
// in their logs (gap, dropped, rate-limited lines).
func (h *Handler) boots(hostDir string) []bootView {
	ents, err := os.ReadDir(filepath.Join(h.Root, hostDir))
	if err != nil {
		return nil
	}
	var out []bootView
	for _, e := range ents {
		if !e.IsDir() || e.Name() == store.CrashDir || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		b := bootView{Boot: e.Name()}
		if fi, err := os.Stat(filepath.Join(h.Root, hostDir, e.Name(), store.LogName)); err == nil {
			b.Last = fi.ModTime()
		}
		scanLog(filepath.Join(h.Root, hostDir, e.Name(), store.LogName), func(l logline.Line) bool {
			if l.Kind != logline.Note {
				return true
			}
			switch {
			case strings.HasPrefix(l.Text, "gap "):
				b.Gaps++
				if _, v, ok := strings.Cut(l.Text, "lost="); ok {
					n, _ := strconv.Atoi(strings.Fields(v)[0])
					b.Lost += n
				}
			case strings.HasPrefix(l.Text, "dropped "):
				b.Drops++
			case strings.HasPrefix(l.Text, "rate-limited "):
				f := strings.Fields(l.Text)
				if len(f) > 1 {
					n, _ := strconv.Atoi(f[1])
					b.RLs += n
				}
			}
			return true
		})
		out = append(out, b)
	}
	slices.SortFunc(out, func(a, b bootView) int { return b.Last.Compare(a.Last) })
	return out
}

// maxScan bounds what a page reads of one log.
const maxScan = 64 << 20

// scanLog calls f on each line of the log at p until f returns false.
func scanLog(p string, f func(logline.Line) bool) {
	fl, err := os.Open(p)
	if err != nil {
		return
	}
	defer fl.Close()
	sc := bufio.NewScanner(io.LimitReader(fl, maxScan))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		l, err := logline.Parse(sc.Text())
		if err == nil && !f(l) {
			return
		}
	}
}

// beforeLines is how many lines a host page shows before a crash.
const beforeLines = 20

// before returns the last lines before crash c: from its netconsole log
// when this collector has it, else from its record.
func (h *Handler) before(ctx context.Context, c sigindex.Crash) []string {
	for _, s := range c.Sightings {
		if s.Source != sigindex.SourceNetconsole {
			continue
		}
		logRef, seqs, ok := strings.Cut(s.Ref, " seq=")
		seq, err := strconv.ParseUint(seqs, 10, 64)
		if !ok || err != nil || !safeRel(logRef) {
			continue
		}
		var ring []string
		scanLog(filepath.Join(h.Root, filepath.FromSlash(logRef)), func(l logline.Line) bool {
			if l.Kind == logline.Message && l.Seq >= seq {
				return false
			}
			if l.Kind != logline.Note {
				ring = append(ring, l.Text)
				if len(ring) > beforeLines {
					ring = ring[1:]
				}
			}
			return true
		})
		if len(ring) > 0 {
			return ring
		}
	}
	for _, s := range c.Sightings {
		if s.Source != sigindex.SourceRecord || !safeRel(s.Ref) {
			continue
		}
		data, err := h.records().ReadRecord(ctx, s.Ref, maxRecordRead)
		if err != nil {
			continue
		}
		lines := strings.Split(string(data), "\n")
		for i, l := range lines {
			if strings.Contains(l, s.Signature.Title) || strings.Contains(l, "Kernel panic - not syncing") {
				return lines[max(0, i-beforeLines):i]
			}
		}
	}
	return nil
}

// maxRecordRead bounds what a host page reads of one record (its tail,
// where the panic is).
const maxRecordRead = 4 << 20

// safeRel reports whether rel is a relative path inside the store.
func safeRel(rel string) bool {
	return rel != "" && !strings.HasPrefix(rel, "/") && !slices.Contains(strings.Split(rel, "/"), "..")
}

// file serves a crash record or its metadata: file/<host>/crash/<name>.
func (h *Handler) file(w http.ResponseWriter, r *http.Request, p Principal, rel string) {
	host, name, ok := strings.Cut(rel, "/"+store.CrashDir+"/")
	if !ok || !p.CanRead(host) || strings.Contains(name, "/") || name == "" || strings.HasPrefix(name, ".") {
		http.Error(w, "forbidden", http.StatusForbidden)
		return
	}
	data, err := h.records().ReadRecord(r.Context(), store.HostDir(host)+"/"+store.CrashDir+"/"+name, 0)
	if err != nil {
		h.fail(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", "attachment; filename="+strconv.Quote(name))
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	w.Write(data)
}

// FileRecords reads the records of the local file store (store.Records'
// layout) under Root.
type FileRecords struct {
	Root string
}

// ReadRecord implements Records.
func (f FileRecords) ReadRecord(_ context.Context, rel string, limit int64) ([]byte, error) {
	if !safeRel(rel) {
		return nil, fmt.Errorf("web: record %q: %w", rel, os.ErrNotExist)
	}
	fl, err := os.Open(filepath.Join(f.Root, filepath.FromSlash(rel)))
	if err != nil {
		return nil, fmt.Errorf("web: %w", err)
	}
	defer fl.Close()
	if limit > 0 {
		if fi, err := fl.Stat(); err == nil && fi.Size() > limit {
			fl.Seek(fi.Size()-limit, io.SeekStart)
		}
	}
	return io.ReadAll(fl)
}

// HostRecords implements Records: the data files of <Root>/<host
// dir>/crash, without their metadata and temporary files.
func (f FileRecords) HostRecords(_ context.Context, host string) ([]Record, error) {
	dir := store.HostDir(host)
	ents, err := os.ReadDir(filepath.Join(f.Root, dir, store.CrashDir))
	if err != nil {
		return nil, nil
	}
	var out []Record
	for _, e := range ents {
		if !e.Type().IsRegular() || strings.HasPrefix(e.Name(), ".") || strings.HasSuffix(e.Name(), store.MetaSuffix) {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			continue
		}
		out = append(out, Record{Path: dir + "/" + store.CrashDir + "/" + e.Name(), Size: fi.Size(), Time: fi.ModTime()})
	}
	slices.SortFunc(out, func(a, b Record) int { return b.Time.Compare(a.Time) })
	return out, nil
}

// RecordFile returns the page path of a record, for links: file/<host>/crash/<name>.
func RecordFile(ref string) string {
	return "file/" + ref
}

func orDur(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

var pages = template.Must(template.New("").Funcs(template.FuncMap{
	"t":    func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05Z") },
	"join": strings.Join,
	"esc":  url.PathEscape,
	"recordRef": func(ref string) bool {
		return strings.Contains(ref, "/"+store.CrashDir+"/")
	},
}).Parse(`
{{define "head"}}<!doctype html><html><head><meta charset="utf-8"><title>{{.}} — lastgasp</title>
<style>body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2em .5em;text-align:left;vertical-align:top}
pre{background:#f6f6f6;padding:.5em;overflow:auto;max-height:30em}.new{color:#fff;background:#c00;padding:0 .3em;border-radius:.2em}</style></head><body>{{end}}
{{define "overview"}}{{template "head" "crash signatures"}}
<h1>Crash signatures</h1>
<p id="summary">{{len .Sigs}} signatures on {{len .Hosts}} hosts</p>
<table id="signatures"><tr><th>recent (24 h)</th><th>crashes</th><th>kind</th><th>title</th><th>hosts</th><th>first seen</th><th>last seen</th></tr>
{{range .Sigs}}<tr class="sig" data-id="{{.ID}}"><td class="recent">{{.Recent}}</td><td class="count">{{.Count}}</td><td>{{.Kind}}</td>
<td><a href="{{$.P}}sig/{{.ID}}" class="title">{{.Title}}</a>{{if .New}} <span class="new">new</span>{{end}}</td>
<td>{{len .Hosts}}</td><td>{{t .FirstSeen}}</td><td>{{t .LastSeen}}</td></tr>
{{end}}</table>
<h2>Hosts</h2><ul id="hosts">{{range .Hosts}}<li><a href="{{$.P}}host/{{esc .}}">{{.}}</a></li>{{end}}</ul>
</body></html>{{end}}
{{define "signature"}}{{template "head" .S.Title}}
<p><a href="{{.P}}">all signatures</a></p>
<h1 id="title">{{.S.Title}}</h1>
<p>signature <code id="sigid">{{.S.ID}}</code>, {{.S.Kind}}: <span id="count">{{.S.Count}}</span> crashes, first {{t .S.FirstSeen}}, last {{t .S.LastSeen}}</p>
<p>frames: <code id="frames">{{join .S.Frames " < "}}</code></p>
<h2>Hosts</h2><ul id="hosts">{{range .S.Hosts}}<li><a href="{{$.P}}host/{{esc .}}">{{.}}</a></li>{{end}}</ul>
<h2>Kernel releases</h2><ul id="releases">{{range .S.Releases}}<li>{{.}}</li>{{end}}</ul>
<h2>Crashes</h2><table id="crashes"><tr><th>when</th><th>host</th><th>boot</th><th>copies</th></tr>
{{range .Crashes}}<tr class="crash"><td>{{t .Time}}</td><td><a href="{{$.P}}host/{{esc .Host}}">{{.Host}}</a></td><td>{{.Boot}}</td>
<td>{{range .Sightings}}<div class="sighting">{{.Source}}{{if .Verified}} (verified){{end}}: {{if recordRef .Ref}}<a href="{{$.P}}file/{{.Ref}}">{{.Ref}}</a>{{else}}{{.Ref}}{{end}}</div>{{end}}</td></tr>
{{end}}</table>
<h2>Sample report</h2><p>{{.S.Sample.Source}} {{.S.Sample.Ref}}</p><pre id="sample">{{.S.Sample.Report}}</pre>
</body></html>{{end}}
{{define "host"}}{{template "head" .Host}}
<p><a href="{{.P}}">all signatures</a></p>
<h1 id="host">{{.Host}}</h1>
<h2>Boots</h2><table id="boots"><tr><th>boot</th><th>last written</th><th>gaps</th><th>lost</th><th>dropped</th><th>rate-limited</th></tr>
{{range .Boots}}<tr class="boot"><td>{{.Boot}}</td><td>{{t .Last}}</td><td>{{.Gaps}}</td><td>{{.Lost}}</td><td>{{.Drops}}</td><td>{{.RLs}}</td></tr>{{end}}</table>
<h2>Crashes</h2>
{{range .Crashes}}<div class="crash"><h3><a href="{{$.P}}sig/{{.SignatureID}}">{{.Title}}</a></h3>
<p>{{t .Time}}, boot {{.Boot}}, {{.Release}}</p>
<ul>{{range .Sightings}}<li class="sighting">{{.Source}}{{if .Verified}} (verified){{end}}: {{if recordRef .Ref}}<a class="download" href="{{$.P}}file/{{.Ref}}">{{.Ref}}</a>{{else}}{{.Ref}}{{end}}</li>{{end}}</ul>
<pre class="before">{{range .Before}}{{.}}
{{end}}</pre></div>
{{else}}<p>no crashes</p>{{end}}
<h2>Records</h2><table id="records"><tr><th>record</th><th>bytes</th><th>stored</th></tr>
{{range .Records}}<tr class="record"><td><a class="record-file" href="{{$.P}}file/{{.Path}}">{{.Path}}</a></td><td>{{.Size}}</td><td>{{t .Time}}</td></tr>
{{end}}</table>
</body></html>{{end}}
`))
