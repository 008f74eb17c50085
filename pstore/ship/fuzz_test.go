package ship

import (
	"bytes"
	"encoding/json"
	"errors"
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

	"github.com/google/go-cmp/cmp"
)

// serve sends one upload straight to s.ServeHTTP. "{digest}" in p is
// replaced by the SHA-256 of body.
func serve(s *Server, p, name, bootID, release, rtime string, body []byte) *httptest.ResponseRecorder {
	p = strings.ReplaceAll(p, "{digest}", Digest(body))
	req := &http.Request{
		Method:        http.MethodPut,
		URL:           &url.URL{Path: p},
		Header:        http.Header{},
		Body:          io.NopCloser(bytes.NewReader(body)),
		ContentLength: int64(len(body)),
		RemoteAddr:    "192.0.2.1:4711",
	}
	req.Header.Set("Content-Length", strconv.Itoa(len(body)))
	for k, v := range map[string]string{HeaderRecordName: name, HeaderBootID: bootID, HeaderKernelRelease: release, HeaderRecordTime: rtime} {
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
		// Digest of other bytes.
		{"/v1/hosts/box-1/records/" + Digest([]byte("x")), "dmesg-ramoops-0", boot, "", "", panicData},
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
		ack, err := parseAck(w.Body.Bytes(), Digest(body))
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
		var meta Metadata
		if mj, err := os.ReadFile(filepath.Join(s.Root, ack.Path+".json")); err != nil || json.Unmarshal(mj, &meta) != nil || meta.Digest != ack.Digest || meta.RecordName != name {
			t.Fatalf("metadata %+v, %v", meta, err)
		}
		// The same upload again is a duplicate of the same file.
		w2 := serve(s, p, name, bootID, release, rtime, body)
		ack2, err := parseAck(w2.Body.Bytes(), Digest(body))
		if w2.Code != 200 || err != nil || !ack2.Duplicate || ack2.Path != ack.Path {
			t.Fatalf("repeat upload = %d %q, %v; want duplicate of %s", w2.Code, w2.Body, err, ack.Path)
		}
		if n := len(files(t, s.Root)); n != 2 {
			t.Fatalf("%d files after repeat upload, want 2", n)
		}
	})
}

func FuzzParseAck(f *testing.F) {
	d := Digest(panicData)
	for _, seed := range []struct {
		body, digest string
	}{
		{`{"digest":"` + d + `","stored":true,"duplicate":false,"path":"box-1/crash/dmesg-ramoops-0.` + d[:16] + `"}`, d}, // a real ack
		{`{"digest":"` + d + `","stored":true,"duplicate":true,"path":"p"}`, d},                                           // duplicate
		{`{"digest":"` + d + `","stored":false}`, d},                                                                      // not stored
		{`{"digest":"` + d + `","stored":true}`, Digest(nil)},                                                             // other record
		{`{"digest":"` + d + `","stored":true,"extra":[1,2,{}]}`, d},                                                      // unknown fields
		{`{"digest":"` + d + `","digest":"x","stored":true}`, d},                                                          // repeated key
		{`{"stored":"true"}`, ""}, // wrong type
		{`null`, ""},              // null
		{``, ""},                  // empty
	} {
		f.Add([]byte(seed.body), seed.digest)
	}
	f.Fuzz(func(t *testing.T, body []byte, digest string) {
		ack, err := parseAck(body, digest)
		if err != nil {
			if !errors.Is(err, ErrAckMismatch) {
				t.Fatalf("parseAck error %v does not wrap ErrAckMismatch", err)
			}
			return
		}
		if ack.Digest != digest || !ack.Stored {
			t.Fatalf("parseAck(%q, %q) = %+v, accepted", body, digest, ack)
		}
		// Round trip through the server's encoding.
		b, err := json.Marshal(ack)
		if err != nil {
			t.Fatal(err)
		}
		again, err := parseAck(b, digest)
		if err != nil {
			t.Fatalf("re-encoded ack %s: %v", b, err)
		}
		if diff := cmp.Diff(ack, again); diff != "" {
			t.Fatalf("round trip (-first +second):\n%s", diff)
		}
	})
}
