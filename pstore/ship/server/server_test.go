package server

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/lastgasp/lastgasp/pstore/ship"

	"github.com/google/go-cmp/cmp"
	"github.com/lastgasp/lastgasp/pstore/records"
	"github.com/lastgasp/lastgasp/store"
)

var (
	received   = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	recordTime = time.Date(2026, 11, 25, 11, 59, 0, 0, time.UTC)
	panicData  = []byte("Panic#1 Part1\n<0>[   12.345678] Kernel panic - not syncing: sysrq triggered crash\n")
)

// newServer starts the real Server on a temporary root behind httptest.
func newServer(t *testing.T, configure func(*Server)) (*Server, *httptest.Server) {
	t.Helper()
	s := &Server{
		Root: filepath.Join(t.TempDir(), "root"),
		Logf: t.Logf,
		Now:  func() time.Time { return received },
	}
	if configure != nil {
		configure(s)
	}
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	return s, ts
}

func newClient(url string) *ship.Client {
	return &ship.Client{
		BaseURL:       url,
		Host:          "box-1",
		BootID:        "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0",
		KernelRelease: "6.1.0-56-amd64",
		Attempts:      3,
		Backoff:       time.Millisecond,
	}
}

// record makes a record backed by a real file in dir, so that removing it
// can be observed.
func record(t *testing.T, dir, name string, data []byte) records.Record {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o444); err != nil {
		t.Fatal(err)
	}
	return records.Record{Name: name, Path: p, Data: data, Size: int64(len(data)), ModTime: recordTime}
}

func exists(t *testing.T, p string) bool {
	t.Helper()
	_, err := os.Stat(p)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	return err == nil
}

// files lists the regular files under root, relative to it.
func files(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) && p == root {
			return filepath.SkipDir
		}
		if err != nil {
			return err
		}
		if !d.IsDir() {
			rel, _ := filepath.Rel(root, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestRoundTrip(t *testing.T) {
	s, ts := newServer(t, nil)
	c := newClient(ts.URL)
	r := record(t, t.TempDir(), "dmesg-ramoops-0", panicData)

	ack, err := c.Ship(context.Background(), r)
	if err != nil {
		t.Fatalf("Ship = %v", err)
	}
	digest := ship.Digest(panicData)
	want := ship.Ack{Digest: digest, Stored: true, Path: "box-1/crash/dmesg-ramoops-0." + digest[:16]}
	if diff := cmp.Diff(want, ack); diff != "" {
		t.Errorf("Ship ack (-want +got):\n%s", diff)
	}
	got, err := os.ReadFile(filepath.Join(s.Root, ack.Path))
	if err != nil || string(got) != string(panicData) {
		t.Errorf("stored record = %q, %v; want %q", got, err, panicData)
	}
	mj, err := os.ReadFile(filepath.Join(s.Root, ack.Path+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var meta ship.Metadata
	if err := json.Unmarshal(mj, &meta); err != nil {
		t.Fatalf("metadata %s: %v", mj, err)
	}
	wantMeta := ship.Metadata{
		Host:          "box-1",
		BootID:        c.BootID,
		KernelRelease: c.KernelRelease,
		RecordName:    "dmesg-ramoops-0",
		RecordType:    "dmesg",
		Digest:        digest,
		Size:          int64(len(panicData)),
		Received:      received,
		RecordTime:    recordTime,
		RemoteAddr:    meta.RemoteAddr,
	}
	if diff := cmp.Diff(wantMeta, meta); diff != "" {
		t.Errorf("metadata (-want +got):\n%s", diff)
	}
	if !strings.HasPrefix(meta.RemoteAddr, "127.0.0.1:") {
		t.Errorf("metadata RemoteAddr = %q, want 127.0.0.1:port", meta.RemoteAddr)
	}
	if diff := cmp.Diff([]string{want.Path, want.Path + ".json"}, files(t, s.Root)); diff != "" {
		t.Errorf("files under root (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(Stats{Uploads: 1, Stored: 1, Rejected: map[string]uint64{}}, s.Stats()); diff != "" {
		t.Errorf("Stats (-want +got):\n%s", diff)
	}
}

func TestShipAllRemovesAfterAck(t *testing.T) {
	s, ts := newServer(t, nil)
	dir := t.TempDir()
	recs := []records.Record{
		record(t, dir, "dmesg-ramoops-0", panicData),
		record(t, dir, "console-ramoops-0", []byte("console log")),
		record(t, dir, "pmsg-ramoops-0", []byte{}),
	}
	shipped, kept, err := ship.ShipAll(context.Background(), newClient(ts.URL), recs, nil, t.Logf)
	if shipped != 3 || kept != 0 || err != nil {
		t.Fatalf("ship.ShipAll = %d, %d, %v; want 3, 0, nil", shipped, kept, err)
	}
	for _, r := range recs {
		if exists(t, r.Path) {
			t.Errorf("%s not removed after ack", r.Name)
		}
	}
	if got := len(files(t, s.Root)); got != 6 {
		t.Errorf("%d files stored, want 6", got)
	}
}

func TestDuplicateStoredOnce(t *testing.T) {
	s, ts := newServer(t, nil)
	c := newClient(ts.URL)
	r := record(t, t.TempDir(), "dmesg-ramoops-0", panicData)

	first, err := c.Ship(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	second, err := c.Ship(context.Background(), r)
	if err != nil {
		t.Fatalf("second Ship = %v", err)
	}
	if !second.Duplicate || second.Path != first.Path || second.Digest != first.Digest {
		t.Errorf("second ack = %+v, want duplicate of %+v", second, first)
	}
	// The same bytes under another name are the same record.
	r.Name = "dmesg-ramoops-1"
	third, err := c.Ship(context.Background(), r)
	if err != nil || !third.Duplicate || third.Path != first.Path {
		t.Errorf("Ship under another name = %+v, %v; want duplicate of %s", third, err, first.Path)
	}
	// Another host's copy is its own.
	c2 := newClient(ts.URL)
	c2.Host = "box-2"
	other, err := c2.Ship(context.Background(), r)
	if err != nil || other.Duplicate {
		t.Errorf("Ship from another host = %+v, %v; want stored", other, err)
	}
	if st := s.Stats(); st.Stored != 2 || st.Duplicates != 2 {
		t.Errorf("Stats = %+v, want 2 stored, 2 duplicates", st)
	}

	// A restarted collector finds the stored record by its digest.
	s2, ts2 := newServer(t, func(s2 *Server) { s2.Root = s.Root })
	again, err := newClient(ts2.URL).Ship(context.Background(), r)
	if err != nil || !again.Duplicate || again.Path != first.Path {
		t.Errorf("Ship after restart = %+v, %v; want duplicate of %s", again, err, first.Path)
	}
	if st := s2.Stats(); st.Duplicates != 1 || st.Stored != 0 {
		t.Errorf("restarted Stats = %+v, want 1 duplicate", st)
	}
	if got := len(files(t, s.Root)); got != 4 {
		t.Errorf("%d files under root, want 4: %v", got, files(t, s.Root))
	}
}

func TestConcurrentUploadsStoreOnce(t *testing.T) {
	s, ts := newServer(t, nil)
	c := newClient(ts.URL)
	r := records.Record{Name: "dmesg-ramoops-0", Data: panicData, Size: int64(len(panicData))}
	var (
		wg   sync.WaitGroup
		dups atomic.Int32
	)
	for range 100 {
		wg.Go(func() {
			ack, err := c.Ship(context.Background(), r)
			if err != nil {
				t.Error(err)
			}
			if ack.Duplicate {
				dups.Add(1)
			}
		})
	}
	wg.Wait()
	if got := dups.Load(); got != 99 {
		t.Errorf("%d duplicate acks, want 99", got)
	}
	if got := files(t, s.Root); len(got) != 2 {
		t.Errorf("files = %v, want one record and its metadata", got)
	}
}

func TestPrefixCollisionKeepsBoth(t *testing.T) {
	s, ts := newServer(t, nil)
	digest := ship.Digest(panicData)
	// Another record of the same name whose digest shares the prefix.
	dir := filepath.Join(s.Root, "box-1", "crash")
	if err := os.MkdirAll(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(dir, "dmesg-ramoops-0."+digest[:16])
	if err := os.WriteFile(other, []byte("other"), 0o640); err != nil {
		t.Fatal(err)
	}
	ack, err := newClient(ts.URL).Ship(context.Background(), records.Record{Name: "dmesg-ramoops-0", Data: panicData, Size: int64(len(panicData))})
	if err != nil {
		t.Fatal(err)
	}
	if want := "box-1/crash/dmesg-ramoops-0." + digest; ack.Path != want || ack.Duplicate {
		t.Errorf("ack = %+v, want stored at %s", ack, want)
	}
	if b, _ := os.ReadFile(other); string(b) != "other" {
		t.Errorf("the other record was overwritten: %q", b)
	}
}

// TestTemporaryFilesKept: a temporary file in a crash directory may be a
// live upload's: the server never removes it (lastgaspd's start does, with
// store.Records.CleanTemps).
func TestTemporaryFilesKept(t *testing.T) {
	s, ts := newServer(t, nil)
	dir := filepath.Join(s.Root, "box-1", "crash")
	if err := os.MkdirAll(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(dir, store.TempPrefix+"1")
	if err := os.WriteFile(tmp, []byte("partial"), 0o640); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-2 * time.Hour)
	os.Chtimes(tmp, old, old)
	if _, err := newClient(ts.URL).Ship(context.Background(), records.Record{Name: "dmesg-ramoops-0", Data: panicData, Size: int64(len(panicData))}); err != nil {
		t.Fatal(err)
	}
	if !exists(t, tmp) {
		t.Errorf("temporary file removed by an upload")
	}
}

// put sends a raw upload request.
func put(t *testing.T, url string, body string, hdr map[string]string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPut, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

func TestDigestMismatchRejected(t *testing.T) {
	s, ts := newServer(t, nil)
	resp := put(t, ts.URL+ship.RecordPath("box-1", ship.Digest([]byte("something else"))), string(panicData),
		map[string]string{ship.HeaderRecordName: "dmesg-ramoops-0"})
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("status = %d, want 400", resp.StatusCode)
	}
	if got := files(t, s.Root); len(got) != 0 {
		t.Errorf("files after rejected upload: %v", got)
	}
	if got := s.Stats().Rejected["digest-mismatch"]; got != 1 {
		t.Errorf("Rejected[digest-mismatch] = %d, want 1", got)
	}
}

func TestBadRequests(t *testing.T) {
	digest := ship.Digest(panicData)
	good := map[string]string{
		ship.HeaderRecordName:    "dmesg-ramoops-0",
		ship.HeaderBootID:        "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0",
		ship.HeaderKernelRelease: "6.1.0-56-amd64",
		ship.HeaderRecordTime:    "2026-11-25T11:59:00Z",
	}
	with := func(k, v string) map[string]string {
		h := map[string]string{}
		for k, v := range good {
			h[k] = v
		}
		if v == "" {
			delete(h, k)
		} else {
			h[k] = v
		}
		return h
	}
	tests := []struct {
		name   string
		method string
		path   string
		hdr    map[string]string
		chunk  bool
		code   int
		reason string
	}{
		{name: "get", method: http.MethodGet, path: ship.RecordPath("box-1", digest), hdr: good, code: 405, reason: "method"},
		{name: "unknown path", path: "/v1/hosts/box-1/other/" + digest, hdr: good, code: 404, reason: "path"},
		{name: "root", path: "/", hdr: good, code: 404, reason: "path"},
		{name: "dot dot host", path: "/v1/hosts/../records/" + digest, hdr: good, code: 400, reason: "host"},
		{name: "escaped dot dot host", path: "/v1/hosts/%2E%2E/records/" + digest, hdr: good, code: 400, reason: "host"},
		{name: "escaped slash in host", path: "/v1/hosts/a%2Fb/records/" + digest, hdr: good, code: 404, reason: "path"},
		{name: "hidden host", path: ship.RecordPath(".box", digest), hdr: good, code: 400, reason: "host"},
		{name: "space in host", path: "/v1/hosts/a%20b/records/" + digest, hdr: good, code: 400, reason: "host"},
		{name: "colon in host", path: ship.RecordPath("52:54:00:12:34:56", digest), hdr: good, code: 400, reason: "host"},
		{name: "upper-case digest", path: ship.RecordPath("box-1", strings.ToUpper(digest)), hdr: good, code: 400, reason: "digest"},
		{name: "short digest", path: ship.RecordPath("box-1", digest[:63]), hdr: good, code: 400, reason: "digest"},
		{name: "no name", path: ship.RecordPath("box-1", digest), hdr: with(ship.HeaderRecordName, ""), code: 400, reason: "name"},
		{name: "traversing name", path: ship.RecordPath("box-1", digest), hdr: with(ship.HeaderRecordName, "../x"), code: 400, reason: "name"},
		{name: "hidden name", path: ship.RecordPath("box-1", digest), hdr: with(ship.HeaderRecordName, ".upload-x"), code: 400, reason: "name"},
		{name: "long name", path: ship.RecordPath("box-1", digest), hdr: with(ship.HeaderRecordName, strings.Repeat("a", 129)), code: 400, reason: "name"},
		{name: "bad boot id", path: ship.RecordPath("box-1", digest), hdr: with(ship.HeaderBootID, "a b"), code: 400, reason: "header"},
		{name: "boot id crash", path: ship.RecordPath("box-1", digest), hdr: with(ship.HeaderBootID, "crash"), code: 400, reason: "header"},
		{name: "boot id boot-unknown", path: ship.RecordPath("box-1", digest), hdr: with(ship.HeaderBootID, "boot-unknown"), code: 400, reason: "header"},
		{name: "bad kernel release", path: ship.RecordPath("box-1", digest), hdr: with(ship.HeaderKernelRelease, "6.1-\xc3\xa9"), code: 400, reason: "header"},
		{name: "bad record time", path: ship.RecordPath("box-1", digest), hdr: with(ship.HeaderRecordTime, "yesterday"), code: 400, reason: "header"},
		{name: "chunked", path: ship.RecordPath("box-1", digest), hdr: good, chunk: true, code: 411, reason: "length"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, ts := newServer(t, nil)
			method := tt.method
			if method == "" {
				method = http.MethodPut
			}
			conn, err := net.Dial("tcp", ts.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			fmt.Fprintf(conn, "%s %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n", method, tt.path)
			for k, v := range tt.hdr {
				fmt.Fprintf(conn, "%s: %s\r\n", k, v)
			}
			if tt.chunk {
				fmt.Fprintf(conn, "Transfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n", len(panicData), panicData)
			} else {
				fmt.Fprintf(conn, "Content-Length: %d\r\n\r\n%s", len(panicData), panicData)
			}
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.code {
				t.Errorf("status = %d, want %d", resp.StatusCode, tt.code)
			}
			if got := s.Stats().Rejected[tt.reason]; got != 1 {
				t.Errorf("Rejected = %v, want 1 %q", s.Stats().Rejected, tt.reason)
			}
			if got := files(t, s.Root); len(got) != 0 {
				t.Errorf("files after rejected upload: %v", got)
			}
		})
	}
}

func TestNoContentLength(t *testing.T) {
	s, ts := newServer(t, nil)
	conn, err := net.Dial("tcp", ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "PUT %s HTTP/1.1\r\nHost: x\r\n%s: dmesg-ramoops-0\r\n\r\n", ship.RecordPath("box-1", ship.Digest(nil)), ship.HeaderRecordName)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusLengthRequired {
		t.Errorf("status = %d, want 411", resp.StatusCode)
	}
	if got := files(t, s.Root); len(got) != 0 {
		t.Errorf("files: %v", got)
	}
}

func TestClientDisconnectMidBody(t *testing.T) {
	s, ts := newServer(t, nil)
	conn, err := net.Dial("tcp", ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "PUT %s HTTP/1.1\r\nHost: x\r\n%s: dmesg-ramoops-0\r\nContent-Length: %d\r\n\r\n%s",
		ship.RecordPath("box-1", ship.Digest(panicData)), ship.HeaderRecordName, len(panicData), panicData[:20])
	// Let the server create its temporary file before the client goes.
	deadline := time.Now().Add(5 * time.Second)
	for len(files(t, s.Root)) == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if got := files(t, s.Root); len(got) != 1 || !strings.Contains(got[0], store.TempPrefix) {
		t.Fatalf("files while uploading = %v, want one temporary file", got)
	}
	conn.Close()
	ts.Close() // waits for the handler
	if got := files(t, s.Root); len(got) != 0 {
		t.Errorf("files after disconnect: %v", got)
	}
	if got := s.Stats().Rejected["short-body"]; got != 1 {
		t.Errorf("Rejected = %v, want 1 short-body", s.Stats().Rejected)
	}
}

// enospcFile fails every write as a full disk does.
type enospcFile struct {
	*os.File
	err error
}

func (f enospcFile) Write(p []byte) (int, error) {
	return 0, &fs.PathError{Op: "write", Path: f.Name(), Err: f.err}
}

func TestDiskFull(t *testing.T) {
	for _, errno := range []syscall.Errno{syscall.ENOSPC, syscall.EDQUOT} {
		t.Run(errno.Error(), func(t *testing.T) {
			s, ts := newServer(t, func(s *Server) {
				s.CreateTemp = func(dir, pattern string) (File, error) {
					f, err := os.CreateTemp(dir, pattern)
					if err != nil {
						return nil, err
					}
					return enospcFile{f, errno}, nil
				}
			})
			r := record(t, t.TempDir(), "dmesg-ramoops-0", panicData)
			c := newClient(ts.URL)

			_, err := c.Ship(context.Background(), r)
			var se *ship.StatusError
			if !errors.As(err, &se) || se.Code != http.StatusInsufficientStorage {
				t.Fatalf("Ship = %v, want ship.StatusError 507", err)
			}
			shipped, kept, err := ship.ShipAll(context.Background(), c, []records.Record{r}, nil, t.Logf)
			if shipped != 0 || kept != 1 || !errors.As(err, &se) {
				t.Errorf("ship.ShipAll = %d, %d, %v; want 0, 1, ship.StatusError", shipped, kept, err)
			}
			if !exists(t, r.Path) {
				t.Error("record removed although the collector's disk is full")
			}
			if got := files(t, s.Root); len(got) != 0 {
				t.Errorf("files after failed writes: %v", got)
			}
			if got := s.Stats().Rejected["disk-full"]; got != 1+uint64(c.Attempts) {
				t.Errorf("Rejected = %v, want %d disk-full", s.Stats().Rejected, 1+c.Attempts)
			}
		})
	}
}

func TestTooLarge(t *testing.T) {
	s, ts := newServer(t, func(s *Server) { s.MaxRecordSize = 1000 })
	dir := t.TempDir()
	huge := record(t, dir, "console-ramoops-0", make([]byte, 1<<20))
	small := record(t, dir, "dmesg-ramoops-0", panicData)
	c := newClient(ts.URL)

	_, err := c.Ship(context.Background(), huge)
	var se *ship.StatusError
	if !errors.As(err, &se) || se.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("Ship = %v, want ship.StatusError 413", err)
	}
	shipped, kept, err := ship.ShipAll(context.Background(), c, []records.Record{huge, small}, nil, t.Logf)
	if shipped != 1 || kept != 1 || !errors.As(err, &se) || se.Code != 413 {
		t.Errorf("ship.ShipAll = %d, %d, %v; want 1, 1, ship.StatusError 413", shipped, kept, err)
	}
	if !exists(t, huge.Path) || exists(t, small.Path) {
		t.Errorf("huge exists = %v, small exists = %v; want true, false", exists(t, huge.Path), exists(t, small.Path))
	}
	if st := s.Stats(); st.Rejected["too-large"] != 2 || st.Uploads != 3 {
		t.Errorf("Stats = %+v, want 2 too-large of 3 uploads (4xx not retried)", st)
	}
}

func TestIncompleteRecordNotSent(t *testing.T) {
	s, ts := newServer(t, nil)
	dir := t.TempDir()
	partial := record(t, dir, "dmesg-ramoops-1", nil)
	partial.Data, partial.Size = nil, 5000 // as records.Read returns an oversized record
	good := record(t, dir, "dmesg-ramoops-0", panicData)
	shipped, kept, err := ship.ShipAll(context.Background(), newClient(ts.URL), []records.Record{partial, good}, nil, t.Logf)
	if shipped != 1 || kept != 1 || !errors.Is(err, ship.ErrIncomplete) {
		t.Errorf("ship.ShipAll = %d, %d, %v; want 1, 1, ship.ErrIncomplete", shipped, kept, err)
	}
	if !exists(t, partial.Path) {
		t.Error("incomplete record removed")
	}
	if st := s.Stats(); st.Uploads != 1 {
		t.Errorf("Stats = %+v, want only the complete record sent", st)
	}
}

func TestAckMismatchKeepsRecord(t *testing.T) {
	digest := ship.Digest(panicData)
	tests := []struct {
		name string
		body string
	}{
		{name: "wrong digest", body: `{"digest":"` + ship.Digest([]byte("x")) + `","stored":true,"duplicate":false,"path":"p"}`},
		{name: "digest upper case", body: `{"digest":"` + strings.ToUpper(digest) + `","stored":true}`},
		{name: "not stored", body: `{"digest":"` + digest + `","stored":false}`},
		{name: "empty body", body: ``},
		{name: "not json", body: `OK`},
		{name: "trailing garbage", body: `{"digest":"` + digest + `","stored":true} x`},
		{name: "null", body: `null`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Write([]byte(tt.body))
			}))
			defer ts.Close()
			r := record(t, t.TempDir(), "dmesg-ramoops-0", panicData)
			removed := false
			shipped, kept, err := ship.ShipAll(context.Background(), newClient(ts.URL), []records.Record{r},
				func(records.Record) error { removed = true; return nil }, t.Logf)
			if shipped != 0 || kept != 1 || !errors.Is(err, ship.ErrAckMismatch) {
				t.Errorf("ship.ShipAll = %d, %d, %v; want 0, 1, ship.ErrAckMismatch", shipped, kept, err)
			}
			if removed {
				t.Error("record removed without a matching ack")
			}
		})
	}
}

func TestCollectorDown(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	r := record(t, t.TempDir(), "dmesg-ramoops-0", panicData)
	shipped, kept, err := ship.ShipAll(context.Background(), newClient("http://"+addr), []records.Record{r}, nil, t.Logf)
	if shipped != 0 || kept != 1 || !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("ship.ShipAll = %d, %d, %v; want 0, 1, ECONNREFUSED", shipped, kept, err)
	}
	if !exists(t, r.Path) {
		t.Error("record removed while the collector is down")
	}
}

func TestRetries(t *testing.T) {
	tests := []struct {
		name     string
		failures int // answers of code before passing to the real server
		code     int
		shipped  int
		requests int
	}{
		{name: "503 twice then stored", failures: 2, code: 503, shipped: 1, requests: 3},
		{name: "500 always", failures: 100, code: 500, shipped: 0, requests: 3},
		{name: "400 not retried", failures: 100, code: 400, shipped: 0, requests: 1},
		{name: "404 not retried", failures: 100, code: 404, shipped: 0, requests: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &Server{Root: t.TempDir(), Logf: t.Logf}
			var n atomic.Int32
			ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if int(n.Add(1)) <= tt.failures {
					http.Error(w, "no", tt.code)
					return
				}
				s.ServeHTTP(w, r)
			}))
			defer ts.Close()
			r := record(t, t.TempDir(), "dmesg-ramoops-0", panicData)
			shipped, _, err := ship.ShipAll(context.Background(), newClient(ts.URL), []records.Record{r}, nil, t.Logf)
			if shipped != tt.shipped || int(n.Load()) != tt.requests {
				t.Errorf("ship.ShipAll = %d, %v after %d requests; want %d shipped after %d", shipped, err, n.Load(), tt.shipped, tt.requests)
			}
			var se *ship.StatusError
			if tt.shipped == 0 && (!errors.As(err, &se) || se.Code != tt.code) {
				t.Errorf("ship.ShipAll error = %v, want ship.StatusError %d", err, tt.code)
			}
		})
	}
}

func TestRetriesStopAtDeadline(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "busy", http.StatusServiceUnavailable)
	}))
	defer ts.Close()
	c := newClient(ts.URL)
	c.Attempts, c.Backoff = 100, 50*time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	dir := t.TempDir()
	recs := []records.Record{record(t, dir, "dmesg-ramoops-0", panicData), record(t, dir, "dmesg-ramoops-1", []byte("b"))}
	start := time.Now()
	shipped, kept, err := ship.ShipAll(ctx, c, recs, nil, t.Logf)
	if elapsed := time.Since(start); elapsed > 2*time.Second {
		t.Errorf("ship.ShipAll took %v, past its 300ms deadline", elapsed)
	}
	if shipped != 0 || kept != 2 || err == nil {
		t.Errorf("ship.ShipAll = %d, %d, %v; want 0, 2, error", shipped, kept, err)
	}
}

func TestRemoveFailure(t *testing.T) {
	_, ts := newServer(t, nil)
	r := record(t, t.TempDir(), "dmesg-ramoops-0", panicData)
	boom := errors.New("boom")
	shipped, kept, err := ship.ShipAll(context.Background(), newClient(ts.URL), []records.Record{r},
		func(records.Record) error { return boom }, t.Logf)
	if shipped != 1 || kept != 0 || !errors.Is(err, boom) {
		t.Errorf("ship.ShipAll = %d, %d, %v; want 1, 0, boom", shipped, kept, err)
	}
}

func TestClientRejectsBadHost(t *testing.T) {
	c := newClient("http://127.0.0.1:1")
	c.Host = "52:54:00:12:34:56"
	_, err := c.Ship(context.Background(), records.Record{Name: "dmesg-ramoops-0", Data: []byte{}, Size: 0})
	if !errors.Is(err, ship.ErrBadHost) {
		t.Errorf("Ship = %v, want bad host", err)
	}
}

func TestSanitizeHost(t *testing.T) {
	tests := []struct{ in, want string }{
		{"box-1", "box-1"},
		{"52:54:00:12:34:56", "52-54-00-12-34-56"},
		{"", "unknown"},
		{"..", "_."},
		{".hidden", "_hidden"},
		{"a/b c", "a-b-c"},
		{"host.example.com", "host.example.com"},
		{"ünï", "--n--"}, // bytes, not runes
		{strings.Repeat("a", 300), strings.Repeat("a", 253)},
	}
	for _, tt := range tests {
		got := ship.SanitizeHost(tt.in)
		if got != tt.want {
			t.Errorf("ship.SanitizeHost(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if err := ship.CheckHost(got); err != nil {
			t.Errorf("ship.SanitizeHost(%q) = %q, not accepted: %v", tt.in, got, err)
		}
	}
}

func TestClientHeaders(t *testing.T) {
	_, ts := newServer(t, nil)
	r := records.Record{Name: "dmesg-ramoops-0", Data: panicData, Size: int64(len(panicData))}
	c := newClient(ts.URL)
	c.BootID = c.BootID + "\n" // as read from /proc/sys/kernel/random/boot_id
	if _, err := c.Ship(context.Background(), r); err != nil {
		t.Errorf("Ship with boot id ending in newline = %v", err)
	}
	c.BootID = "not a boot id"
	if _, err := c.Ship(context.Background(), r); !errors.Is(err, ship.ErrBadHeader) {
		t.Errorf("Ship with bad boot id = %v, want bad header", err)
	}
}

// TestSlowBody: a body slower than MinRate after BodyTimeout is answered
// 408 and leaves nothing; a body that pauses less than BodyTimeout and
// then comes at speed is stored.
func TestSlowBody(t *testing.T) {
	for _, tt := range []struct {
		name   string
		pause  time.Duration // before the first byte
		every  time.Duration // between bytes; 0 sends the rest at once
		code   int
		reason string
	}{
		{"trickle", 0, 100 * time.Millisecond, 408, "slow-body"},
		{"silent", time.Hour, 0, 408, "slow-body"},
		{"pause then fast", 150 * time.Millisecond, 0, 200, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, ts := newServer(t, func(s *Server) { s.BodyTimeout, s.MinRate = 300*time.Millisecond, 1000 })
			conn, err := net.Dial("tcp", ts.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			fmt.Fprintf(conn, "PUT %s HTTP/1.1\r\nHost: x\r\n%s: dmesg-ramoops-0\r\nContent-Length: %d\r\n\r\n",
				ship.RecordPath("box-1", ship.Digest(panicData)), ship.HeaderRecordName, len(panicData))
			go func() {
				time.Sleep(min(tt.pause, 10*time.Second))
				for i := range panicData {
					if tt.every == 0 {
						conn.Write(panicData[i:])
						return
					}
					if _, err := conn.Write(panicData[i : i+1]); err != nil {
						return
					}
					time.Sleep(tt.every)
				}
			}()
			conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatalf("no answer: %v", err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.code {
				t.Errorf("status = %d, want %d", resp.StatusCode, tt.code)
			}
			if tt.reason == "" {
				return
			}
			if got := s.Stats().Rejected[tt.reason]; got != 1 {
				t.Errorf("Rejected = %v, want 1 %s", s.Stats().Rejected, tt.reason)
			}
			ts.Close() // waits for the handler
			if got := files(t, s.Root); len(got) != 0 {
				t.Errorf("files after a slow body: %v", got)
			}
		})
	}
}

// TestQuotaAndFloor: past the host's quota and below the free-space floor
// the collector answers 507, says why, counts the reason and stores
// nothing; the agent keeps the record.
func TestQuotaAndFloor(t *testing.T) {
	for _, tt := range []struct {
		name   string
		recs   func(root string) *store.Records
		reason string
		says   string
	}{
		{"quota", func(root string) *store.Records { return &store.Records{Root: root, HostQuota: 100} }, "quota", "crash records quota exceeded"},
		{"floor", func(root string) *store.Records { return &store.Records{Root: root, MinFree: 1 << 62} }, "low-space", "low on space"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, ts := newServer(t, func(s *Server) { s.Records = tt.recs(s.Root) })
			resp := put(t, ts.URL+ship.RecordPath("box-1", ship.Digest(panicData)), string(panicData), map[string]string{ship.HeaderRecordName: "dmesg-ramoops-0"})
			if resp.StatusCode != http.StatusInsufficientStorage {
				t.Errorf("status = %d, want 507", resp.StatusCode)
			}
			r := record(t, t.TempDir(), "dmesg-ramoops-0", panicData)
			_, err := newClient(ts.URL).Ship(context.Background(), r)
			var se *ship.StatusError
			if !errors.As(err, &se) || se.Code != 507 || !strings.Contains(se.Error(), tt.says) {
				t.Errorf("Ship = %v, want 507 saying %q", err, tt.says)
			}
			if got := s.Stats().Rejected[tt.reason]; got < 2 {
				t.Errorf("Rejected = %v, want %s counted", s.Stats().Rejected, tt.reason)
			}
			if got := files(t, s.Root); len(got) != 0 {
				t.Errorf("files: %v", got)
			}
		})
	}
}

// TestLogInjection: escapes in an upload's URL (a newline, ESC, U+202E)
// reach the log quoted, as one line without control or format characters.
func TestLogInjection(t *testing.T) {
	var mu sync.Mutex
	var lines []string
	_, ts := newServer(t, func(s *Server) {
		s.Logf = func(format string, args ...any) {
			mu.Lock()
			lines = append(lines, fmt.Sprintf(format, args...))
			mu.Unlock()
		}
	})
	digest := ship.Digest(panicData)
	for _, p := range []string{
		"/v1/hosts/box%0alastgaspd:%20forged%20line/records/" + digest,
		"/v1/hosts/box%1b%5b31mred/records/" + digest,
		"/v1/hosts/box%e2%80%aeevil/records/" + digest,
		"/v1/%0a%1b/x",
	} {
		put(t, ts.URL+p, string(panicData), map[string]string{ship.HeaderRecordName: "dmesg-ramoops-0"})
	}
	mu.Lock()
	defer mu.Unlock()
	if len(lines) != 4 {
		t.Fatalf("%d log lines, want 4: %q", len(lines), lines)
	}
	for _, l := range lines {
		if strings.ContainsAny(l, "\n\r\x1b\u202e") {
			t.Errorf("log line holds a control or format character: %q", l)
		}
	}
	if want := `"/v1/hosts/box\nlastgaspd: forged line/records/`; !strings.Contains(lines[0], want) {
		t.Errorf("log line %q, want the path quoted: %s", lines[0], want)
	}
}
