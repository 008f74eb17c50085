package web

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lastgasp/lastgasp/crash/signature"
	"github.com/lastgasp/lastgasp/store/sigindex"
)

func openIndex(t testing.TB) *sigindex.File {
	x, err := sigindex.OpenFile(filepath.Join(t.TempDir(), sigindex.JournalName))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { x.Close() })
	return x
}

func get(t testing.TB, h http.Handler, path string) (int, string) {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
	b, _ := io.ReadAll(rec.Result().Body)
	return rec.Code, string(b)
}

// TestEscapingAndScope: kernel text with <script> and a host name with
// markup are escaped on every page; a host credential reads its own host
// only, and is sent there from the overview.
func TestEscapingAndScope(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	x := openIndex(t)
	evil := `Kernel panic - not syncing: <script>alert(1)</script>`
	sig := signature.Signature{ID: signature.MakeID(evil, nil), Kind: signature.KindPanic, Title: evil, TitleUsec: 1}
	for _, host := range []string{"a<b>", "good"} {
		os.MkdirAll(filepath.Join(root, host, "crash"), 0o755)
		os.WriteFile(filepath.Join(root, host, "crash", "dmesg-ramoops-0.1"), []byte("line before\n"+evil+"\n"), 0o644)
		if _, err := x.Add(ctx, sigindex.Sighting{Host: host, Boot: "b1", Time: time.Now(), Source: sigindex.SourceRecord,
			Ref: host + "/crash/dmesg-ramoops-0.1", Signature: sig, Report: evil + "\n<img src=x onerror=alert(2)>"}); err != nil {
			t.Fatal(err)
		}
	}
	var p Principal
	h := &Handler{Index: x, Root: root, Prefix: "/ui/", Auth: func(*http.Request) (Principal, bool) { return p, true }}

	p = Principal{Reader: true}
	for _, path := range []string{"/ui/", "/ui/sig/" + sig.ID, "/ui/host/good", "/ui/host/a%3Cb%3E"} {
		code, body := get(t, h, path)
		if code != 200 {
			t.Fatalf("GET %s = %d", path, code)
		}
		for _, raw := range []string{"<script>", "<img", "<b>"} {
			if strings.Contains(body, raw) {
				t.Errorf("GET %s: page contains unescaped %q", path, raw)
			}
		}
		if !strings.Contains(body, "&lt;script&gt;") {
			t.Errorf("GET %s: escaped title missing", path)
		}
	}
	if code, body := get(t, h, "/ui/file/good/crash/dmesg-ramoops-0.1"); code != 200 || !strings.Contains(body, "line before") {
		t.Errorf("reader download = %d %q", code, body)
	}

	p = Principal{Host: "good"}
	for path, want := range map[string]int{
		"/ui/":                                  http.StatusFound,
		"/ui/host/good":                         200,
		"/ui/host/a%3Cb%3E":                     http.StatusForbidden,
		"/ui/file/a<b>/crash/dmesg-ramoops-0.1": http.StatusForbidden,
		"/ui/file/good/crash/dmesg-ramoops-0.1": 200,
		"/ui/file/good/crash/..":                http.StatusForbidden,
	} {
		if code, _ := get(t, h, path); code != want {
			t.Errorf("host credential GET %s = %d, want %d", path, code, want)
		}
	}
	if code, body := get(t, h, "/ui/sig/"+sig.ID); code != 200 || strings.Contains(body, "a&lt;b&gt;") || !strings.Contains(body, `id="count">1<`) {
		t.Errorf("host credential's signature page = %d, shows other hosts or not its count: %s", code, body)
	}
}

// BenchmarkOverview10k renders the overview of 10,000 signatures over
// 2,000 hosts.
func BenchmarkOverview10k(b *testing.B) {
	ctx := context.Background()
	x := openIndex(b)
	now := time.Now()
	for i := 0; i < 10000; i++ {
		title := fmt.Sprintf("BUG: kernel NULL pointer dereference in driver_%d", i)
		sig := signature.Signature{ID: signature.MakeID(title, nil), Kind: signature.KindBUG, Title: title, TitleUsec: int64(i)}
		host := fmt.Sprintf("host-%04d", i%2000)
		x.Add(ctx, sigindex.Sighting{Host: host, Boot: "b", Time: now, Source: sigindex.SourceNetconsole, Ref: fmt.Sprint(i), Signature: sig})
	}
	h := &Handler{Index: x, Root: b.TempDir(), Prefix: "/ui/", Auth: func(*http.Request) (Principal, bool) { return Principal{Reader: true}, true }}
	for b.Loop() {
		if code, _ := get(b, h, "/ui/"); code != 200 {
			b.Fatal(code)
		}
	}
}
