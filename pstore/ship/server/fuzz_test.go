package server

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lastgasp/lastgasp/pstore/ship"

	"github.com/google/go-cmp/cmp"
)

// serve sends one upload straight to s.ServeHTTP. "{digest}" in p is
// replaced by the SHA-256 of body.
func serve(s *Server, p, name, bootID, release, rtime string, body []byte) *httptest.ResponseRecorder {
	p = strings.ReplaceAll(p, "{digest}", ship.Digest(body))
	req := &http.Request{
		Method:        http.MethodPut,
		URL:           &url.URL{Path: p},
		Header:        http.Header{},
		Body:          io.NopCloser(bytes.NewReader(body)),
		ContentLength: int64(len(body)),
		RemoteAddr:    "192.0.2.1:4711",
	}
	req.Header.Set("Content-Length", strconv.Itoa(len(body)))
	for k, v := range map[string]string{ship.HeaderRecordName: name, ship.HeaderBootID: bootID, ship.HeaderKernelRelease: release, ship.HeaderRecordTime: rtime} {
		if v != "" {
			req.Header.Set(k, v)
		}
	}
	w := httptest.NewRecorder()
	s.ServeHTTP(w, req)
	return w
}

func FuzzServeHTTP(f *testing.F) {
	boot := "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
	for _, seed := range []struct {
		path, name, boot, release, rtime string
		body                             []byte
	}{
		// A good upload.
		{"/v1/hosts/box-1/records/{digest}", "dmesg-ramoops-0", boot, "6.1.0-56-amd64", "2026-11-25T11:59:00Z", panicData},
		// An empty record, only the required header.
		{"/v1/hosts/box-1/records/{digest}", "pmsg-ramoops-0", "", "", "", nil},
		// ship.Digest of other bytes.
		{"/v1/hosts/box-1/records/" + ship.Digest([]byte("x")), "dmesg-ramoops-0", boot, "", "", panicData},
		// Traversal attempts in host and name.
		{"/v1/hosts/../records/{digest}", "dmesg-ramoops-0", "", "", "", panicData},
		{"/v1/hosts/box-1/records/{digest}", "../../etc/passwd", "", "", "", panicData},
		{"/v1/hosts/box-1/records/../records/{digest}", "dmesg-ramoops-0", "", "", "", panicData},
		// Names the storage layout gives meaning to.
		{"/v1/hosts/box-1/records/{digest}", "x.json", "", "", "", panicData},
		{"/v1/hosts/box-1/records/{digest}", ".upload-1", "", "", "", panicData},
		// Bad optional headers.
		{"/v1/hosts/box-1/records/{digest}", "dmesg-ramoops-0", "a\nb", "6.1\x00", "not a time", panicData},
		// Too large for the fuzz server's limit.
		{"/v1/hosts/box-1/records/{digest}", "console-ramoops-0", "", "", "", make([]byte, 1<<16+1)},
	} {
		f.Add(seed.path, seed.name, seed.boot, seed.release, seed.rtime, seed.body)
	}
	f.Fuzz(func(t *testing.T, p, name, bootID, release, rtime string, body []byte) {
		tmp := t.TempDir()
		s := &Server{
			Root:          filepath.Join(tmp, "root"),
			MaxRecordSize: 1 << 16,
			Now:           func() time.Time { return received },
		}
		w := serve(s, p, name, bootID, release, rtime, body)

		switch w.Code {
		case 200, 400, 404, 413:
		default:
			t.Fatalf("status %d: %s", w.Code, w.Body)
		}
		// Nothing is ever written outside Root.
		ents, err := os.ReadDir(tmp)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			if e.Name() != "root" {
				t.Fatalf("%s written outside the root", e.Name())
			}
		}
		stored := files(t, s.Root)
		if w.Code != 200 {
			if len(stored) != 0 {
				t.Fatalf("status %d but stored %v", w.Code, stored)
			}
			return
		}
		ack, err := ship.ParseAck(w.Body.Bytes(), ship.Digest(body))
		if err != nil {
			t.Fatalf("200 with bad ack %q: %v", w.Body, err)
		}
		if ack.Duplicate || !strings.HasSuffix(ack.Path, "."+ack.Digest[:16]) {
			t.Fatalf("ack = %+v", ack)
		}
		if diff := cmp.Diff([]string{ack.Path, ack.Path + ".json"}, stored); diff != "" {
			t.Fatalf("stored files (-want +got):\n%s", diff)
		}
		got, err := os.ReadFile(filepath.Join(s.Root, ack.Path))
		if err != nil || !bytes.Equal(got, body) {
			t.Fatalf("stored %q, %v; want %q", got, err, body)
		}
		var meta ship.Metadata
		if mj, err := os.ReadFile(filepath.Join(s.Root, ack.Path+".json")); err != nil || json.Unmarshal(mj, &meta) != nil || meta.Digest != ack.Digest || meta.RecordName != name {
			t.Fatalf("metadata %+v, %v", meta, err)
		}
		// The same upload again is a duplicate of the same file.
		w2 := serve(s, p, name, bootID, release, rtime, body)
		ack2, err := ship.ParseAck(w2.Body.Bytes(), ship.Digest(body))
		if w2.Code != 200 || err != nil || !ack2.Duplicate || ack2.Path != ack.Path {
			t.Fatalf("repeat upload = %d %q, %v; want duplicate of %s", w2.Code, w2.Body, err, ack.Path)
		}
		if n := len(files(t, s.Root)); n != 2 {
			t.Fatalf("%d files after repeat upload, want 2", n)
		}
	})
}
