package main

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lastgasp/lastgasp/netconsole/wire"
	"github.com/lastgasp/lastgasp/pstore/records"
	"github.com/lastgasp/lastgasp/pstore/ship"
)

func TestPlanFDs(t *testing.T) {
	for _, tt := range []struct {
		name                          string
		nofile                        uint64
		maxConns, storeFiles, sockets int
		want                          fdPlan
		err                           bool
	}{
		// (limit - store - sockets - 64) / 3, at most -http-max-conns.
		{"systemd default hard limit", 524288, 1024, 1024, 2, fdPlan{limit: 524288, conns: 1024, storeFiles: 1024}, false},
		{"20000", 20000, 100000, 1024, 2, fdPlan{limit: 20000, conns: (20000 - 1024 - 2 - 64) / 3, storeFiles: 1024}, false},
		{"soft 1024: the store's cache is cut to a quarter", 1024, 1024, 1024, 2, fdPlan{limit: 1024, conns: (1024 - 256 - 2 - 64) / 3, storeFiles: 256}, false},
		{"256", 256, 1024, 1024, 1, fdPlan{limit: 256, conns: 42, storeFiles: 64}, false},
		{"too low", 100, 1024, 1024, 1, fdPlan{}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := planFDs(tt.nofile, tt.maxConns, tt.storeFiles, tt.sockets)
			if (err != nil) != tt.err {
				t.Fatalf("planFDs = %+v, %v; want error %v", got, err, tt.err)
			}
			if !tt.err && got != tt.want {
				t.Errorf("planFDs = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestConnLimitSheds: at the cap, a new connection gets in by the idle
// connection closing, then by the slow request older than shedRequestAge;
// a young one stays.
func TestConnLimitSheds(t *testing.T) {
	tl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := newConnLimit(tl, 2, 0, t.Logf)
	hs := &http.Server{Handler: l.track(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })),
		ConnState: l.connState, ConnContext: l.connContext}
	go hs.Serve(l)
	defer hs.Close()
	addr := tl.Addr().String()
	dial := func() net.Conn {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	closed := func(c net.Conn, within time.Duration) bool {
		c.SetReadDeadline(time.Now().Add(within))
		_, err := c.Read(make([]byte, 1))
		return err != nil && !errors.Is(err, os.ErrDeadlineExceeded)
	}
	get := func(c net.Conn) {
		t.Helper()
		fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("GET = %v, %v", resp, err)
		}
		io.Copy(io.Discard, resp.Body)
	}
	slow := dial()
	fmt.Fprintf(slow, "GET / HT") // a request that never ends
	idle := dial()
	get(idle)
	time.Sleep(shedRequestAge + 200*time.Millisecond)

	third := dial()
	if !closed(idle, 3*time.Second) {
		t.Fatalf("idle connection still open with a third waiting, want it closed first")
	}
	if closed(slow, 100*time.Millisecond) {
		t.Fatalf("slow request closed before the idle connection's turn")
	}
	fmt.Fprintf(third, "GET / HT") // slow too, but young
	time.Sleep(100 * time.Millisecond)
	fourth := dial()
	if !closed(slow, 3*time.Second) {
		t.Fatalf("slow request (over %v) still open with a fourth waiting", shedRequestAge)
	}
	get(fourth)
	if closed(third, 100*time.Millisecond) {
		t.Fatalf("a request younger than %v was closed", shedRequestAge)
	}
	if st := l.stats(); st.Shed["idle"] != 1 || st.Shed["new"] != 1 {
		t.Errorf("stats = %+v, want one idle and one new (slow request) shed", st)
	}
}

// helperEnv names the environment variable that makes TestHelperCollector
// run lastgaspd with the JSON-encoded arguments it holds, under the
// RLIMIT_NOFILE in helperNofile.
const (
	helperEnv    = "LASTGASPD_TEST_HELPER_ARGS"
	helperNofile = "LASTGASPD_TEST_HELPER_NOFILE"
)

// TestHelperCollector is lastgaspd in a child process, for tests that
// need a process of its own (a descriptor limit). It does nothing unless
// started by startHelper.
func TestHelperCollector(t *testing.T) {
	env := os.Getenv(helperEnv)
	if env == "" {
		return
	}
	var args []string
	if err := json.Unmarshal([]byte(env), &args); err != nil {
		t.Fatal(err)
	}
	var n uint64
	fmt.Sscan(os.Getenv(helperNofile), &n)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &syscall.Rlimit{Cur: n, Max: n}); err != nil {
		t.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	if err := run(ctx, args, os.Stdout, os.Stderr); err != nil {
		log.Fatal(err)
	}
	os.Exit(0)
}

// startHelper runs lastgaspd with args in a child process limited to
// nofile descriptors; its log goes to the returned function's result.
func startHelper(t *testing.T, nofile int, args ...string) func() string {
	_, logs := startHelperCmd(t, nofile, args...)
	return logs
}

// startHelperCmd is startHelper, also returning the child.
func startHelperCmd(t *testing.T, nofile int, args ...string) (*exec.Cmd, func() string) {
	t.Helper()
	enc, _ := json.Marshal(args)
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperCollector$")
	cmd.Env = append(os.Environ(), helperEnv+"="+string(enc), fmt.Sprintf("%s=%d", helperNofile, nofile))
	logs := &syncWriter{w: &strings.Builder{}}
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	})
	return cmd, func() string {
		logs.mu.Lock()
		defer logs.mu.Unlock()
		return logs.w.(*strings.Builder).String()
	}
}

// attack runs n clients of kind against addr, each reconnecting as soon as
// it is cut off, until stop is closed.
func attack(addr, kind string, n int, stop chan struct{}, wg *sync.WaitGroup) {
	body := strings.Repeat("x", 1<<20)
	digest := ship.Digest([]byte(body))
	for range n {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				c, err := net.Dial("tcp", addr)
				if err != nil {
					time.Sleep(50 * time.Millisecond)
					continue
				}
				go func() { <-stop; c.Close() }()
				switch kind {
				case "slow-request": // a request line and headers, a byte at a time
					for _, b := range []byte("PUT /v1/hosts/box/records/" + digest + " HTTP/1.1\r\nHost: x\r\n") {
						if _, err := c.Write([]byte{b}); err != nil {
							break
						}
						time.Sleep(500 * time.Millisecond)
					}
				case "idle": // one request, then a kept-alive idle connection
					fmt.Fprintf(c, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
					if resp, err := http.ReadResponse(bufio.NewReader(c), nil); err == nil {
						io.Copy(io.Discard, resp.Body)
						c.Read(make([]byte, 1))
					}
				case "slow-body": // a valid upload whose 1 MiB body trickles
					fmt.Fprintf(c, "PUT %s HTTP/1.1\r\nHost: x\r\n%s: dmesg-ramoops-0\r\nContent-Length: %d\r\n\r\n", ship.RecordPath("box", digest), ship.HeaderRecordName, len(body))
					for i := range len(body) {
						if _, err := c.Write([]byte{body[i]}); err != nil {
							break
						}
						time.Sleep(500 * time.Millisecond)
					}
				}
				c.Close()
			}
		})
	}
}

// TestSlowClientsDoNotStarve runs lastgaspd limited to 256 descriptors
// (42 HTTP connections by the plan, 10 per address) against 300 hostile
// clients from 127.0.0.1 that reconnect as soon as they are cut off: slow
// request headers, idle keep-alive connections and slow upload bodies. A
// real upload and /metrics from 127.0.0.2, and a newly announced
// netconsole host's log must still get through, and no descriptor may run
// out.
func TestSlowClientsDoNotStarve(t *testing.T) {
	if testing.Short() {
		t.Skip("takes about ten seconds")
	}
	udp, httpAddr, root := freePort(t, "udp"), freePort(t, "tcp"), t.TempDir()
	logs := startHelper(t, 256, "-netconsole", udp, "-http", httpAddr, "-store", root, "-sockets", "1", "-retention", "0")
	deadline := time.Now().Add(20 * time.Second)
	for {
		if resp, err := http.Get("http://" + httpAddr + "/metrics"); err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("collector did not start; log:\n%s", logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if want := "at most 42 connections (RLIMIT_NOFILE 256), 10 per address"; !strings.Contains(logs(), want) {
		t.Fatalf("start line does not say %q; log:\n%s", want, logs())
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, kind := range []string{"slow-request", "idle", "slow-body"} {
		attack(httpAddr, kind, 100, stop, &wg)
	}
	defer func() { close(stop); wg.Wait() }()
	time.Sleep(3 * time.Second) // every slot taken, hundreds waiting

	// The real host and the scraper have addresses of their own.
	dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}
	data := []byte("<0>[    3.1] Kernel panic - not syncing: during the siege\n")
	start := time.Now()
	cl := &ship.Client{BaseURL: "http://" + httpAddr, Host: "real-host", BootID: "b2", Timeout: 20 * time.Second, Attempts: 1, Dial: dialer.DialContext}
	if _, err := cl.Ship(t.Context(), records.Record{Name: "dmesg-ramoops-0", Data: data, Size: int64(len(data)), ModTime: time.Now()}); err != nil {
		t.Fatalf("real upload under attack: %v; log:\n%s", err, logs())
	}
	t.Logf("real upload under attack took %v", time.Since(start).Round(time.Millisecond))

	hc := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{DialContext: dialer.DialContext}}
	start = time.Now()
	resp, err := hc.Get("http://" + httpAddr + "/metrics")
	if err != nil {
		t.Fatalf("/metrics under attack: %v", err)
	}
	resp.Body.Close()
	t.Logf("/metrics under attack took %v", time.Since(start).Round(time.Millisecond))

	c, err := net.Dial("udp", udp)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i, text := range []string{"lastgasp: netconsole armed host=fresh-host boot=b1", "a line from a host announced during the siege"} {
		c.Write(wire.Format(wire.Packet{Extended: true, Seq: uint64(i), Text: text}))
	}
	logPath := filepath.Join(root, "fresh-host", "b1", "kernel.log")
	for {
		if b, _ := os.ReadFile(logPath); strings.Contains(string(b), "during the siege") {
			break
		}
		if time.Now().After(deadline.Add(20 * time.Second)) {
			t.Fatalf("netconsole line of a new host not stored under attack; log:\n%s", logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if l := logs(); strings.Contains(l, "too many open files") {
		t.Errorf("descriptors ran out; log:\n%s", l)
	}
}

func TestHTTPAndRecordFlags(t *testing.T) {
	c, err := parseFlags(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	// The defaults README documents.
	wantWeb := httpConfig{maxConns: 1024, maxConnsPerIP: 64, headerTimeout: 10 * time.Second, bodyTimeout: 10 * time.Second,
		minRate: 4096, idleTimeout: time.Minute, writeTimeout: 30 * time.Second}
	wantRecs := recordsConfig{maxAssembled: 4 << 20, hostQuota: 256 << 20, minFree: 256 << 20}
	if c.web != wantWeb || c.records != wantRecs {
		t.Errorf("defaults: %+v %+v, want %+v %+v", c.web, c.records, wantWeb, wantRecs)
	}
	c, err = parseFlags([]string{"-crash-quota", "0", "-min-free", "0", "-http-max-conns", "10"}, io.Discard)
	if err != nil || c.records.hostQuota != 0 || c.records.minFree != 0 || c.web.maxConns != 10 {
		t.Errorf("parseFlags = %+v, %v", c, err)
	}
	for _, bad := range [][]string{{"-http-max-conns", "0"}, {"-http-min-rate", "0"}, {"-http-idle-timeout", "0s"},
		{"-max-assembled", "0"}, {"-crash-quota", "-1"}, {"-min-free", "-5"}} {
		if _, err := parseFlags(bad, io.Discard); err == nil {
			t.Errorf("parseFlags(%q) = nil error, want error", bad)
		}
	}
}

func TestSanitizedWriter(t *testing.T) {
	var b strings.Builder
	w := sanitizedWriter{&b}
	w.Write([]byte("http: from a\nb\x1b[31m\u202e\n"))
	if want := `http: from a\x0ab\x1b[31m\xe2\x80\xae` + "\n"; b.String() != want {
		t.Errorf("sanitizedWriter wrote %q, want %q", b.String(), want)
	}
}

// TestLogInjectionEndToEnd sends uploads with %0a, %1b and U+202E in the
// URL to a running collector and reads its log: every line is lastgaspd's
// own, without control or format characters.
func TestLogInjectionEndToEnd(t *testing.T) {
	udp, httpAddr := freePort(t, "udp"), freePort(t, "tcp")
	ctx, cancel := context.WithCancel(t.Context())
	logs := &syncWriter{w: &strings.Builder{}}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-netconsole", udp, "-http", httpAddr, "-store", t.TempDir(), "-sockets", "1"}, io.Discard, logs)
	}()
	digest := ship.Digest([]byte("x"))
	deadline := time.Now().Add(10 * time.Second)
	for _, p := range []string{"/v1/hosts/a%0alastgaspd:%20forged/records/" + digest, "/v1/hosts/a%1b%5b2J/records/" + digest, "/v1/hosts/%e2%80%aeb/records/" + digest} {
		for {
			req, _ := http.NewRequest(http.MethodPut, "http://"+httpAddr+p, strings.NewReader("x"))
			req.Header.Set(ship.HeaderRecordName, "dmesg-ramoops-0")
			resp, err := http.DefaultClient.Do(req)
			if err == nil {
				resp.Body.Close()
				break
			}
			if time.Now().After(deadline) {
				t.Fatal(err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	cancel()
	<-done
	logs.mu.Lock()
	text := logs.w.(*strings.Builder).String()
	logs.mu.Unlock()
	n := 0
	for l := range strings.Lines(text) {
		if !strings.HasPrefix(l, "lastgaspd: ") || strings.ContainsAny(strings.TrimSuffix(l, "\n"), "\r\x1b\u202e") {
			t.Errorf("log line %q: forged, or holds a control or format character", l)
		}
		if strings.Contains(l, "400 host") {
			n++
		}
	}
	if n != 3 {
		t.Errorf("%d refusals logged, want 3; log:\n%s", n, text)
	}
}

// waitHTTP waits for a collector to answer on addr.
func waitHTTP(t *testing.T, addr string, logs func() string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if resp, err := http.Get("http://" + addr + "/metrics"); err == nil {
			resp.Body.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("collector did not start; log:\n%s", logs())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestKilledMidUploadCleanedAtStart kills lastgaspd (SIGKILL) while an
// upload's body is on its way: its temporary file stays behind until the
// next start, which removes it; the retried upload is stored whole.
func TestKilledMidUploadCleanedAtStart(t *testing.T) {
	udp, httpAddr, root := freePort(t, "udp"), freePort(t, "tcp"), t.TempDir()
	args := []string{"-netconsole", udp, "-http", httpAddr, "-store", root, "-sockets", "1"}
	cmd, logs := startHelperCmd(t, 4096, args...)
	waitHTTP(t, httpAddr, logs)
	data := []byte("<0>[    3.1] Kernel panic - not syncing: killed collector\n")
	c, err := net.Dial("tcp", httpAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "PUT %s HTTP/1.1\r\nHost: x\r\n%s: dmesg-ramoops-0\r\nContent-Length: %d\r\n\r\n%s",
		ship.RecordPath("box", ship.Digest(data)), ship.HeaderRecordName, len(data), data[:10])
	temps := func() []string {
		m, _ := filepath.Glob(filepath.Join(root, "box", "crash", ".upload-*"))
		return m
	}
	for deadline := time.Now().Add(10 * time.Second); len(temps()) == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no temporary file while the body is on its way; log:\n%s", logs())
		}
	}
	cmd.Process.Kill()
	cmd.Wait()
	if len(temps()) != 1 {
		t.Fatalf("after kill -9: temporary files %q, want the interrupted upload's", temps())
	}
	_, logs = startHelperCmd(t, 4096, args...)
	waitHTTP(t, httpAddr, logs)
	if got := temps(); len(got) != 0 {
		t.Errorf("after the restart: temporary files %q, want none", got)
	}
	if !strings.Contains(logs(), "removed 1 temporary files") {
		t.Errorf("the restart does not say it removed the file; log:\n%s", logs())
	}
	cl := &ship.Client{BaseURL: "http://" + httpAddr, Host: "box", Attempts: 3, Backoff: 10 * time.Millisecond}
	ack, err := cl.Ship(t.Context(), records.Record{Name: "dmesg-ramoops-0", Data: data, Size: int64(len(data)), ModTime: time.Now()})
	if err != nil || ack.Duplicate {
		t.Fatalf("retry = %+v, %v; want stored", ack, err)
	}
	if b, err := os.ReadFile(filepath.Join(root, ack.Path)); err != nil || string(b) != string(data) {
		t.Errorf("stored %q, %v; want the whole record", b, err)
	}
}

// TestIdleConnectionsClosed: a connection that sends nothing, after its
// TLS handshake or after a request, is closed by the header or idle
// timeout, with and without TLS.
func TestIdleConnectionsClosed(t *testing.T) {
	dir := t.TempDir()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "collector"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(key)
	certPath, keyPath := filepath.Join(dir, "c.pem"), filepath.Join(dir, "c.key")
	os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600)
	cert, _ := x509.ParseCertificate(der)
	roots := x509.NewCertPool()
	roots.AddCert(cert)

	for _, useTLS := range []bool{false, true} {
		udp, httpAddr := freePort(t, "udp"), freePort(t, "tcp")
		args := []string{"-netconsole", udp, "-http", httpAddr, "-store", t.TempDir(), "-sockets", "1",
			"-http-header-timeout", "500ms", "-http-idle-timeout", "500ms"}
		if useTLS {
			args = append(args, "-tls-cert", certPath, "-tls-key", keyPath)
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- run(ctx, args, io.Discard, io.Discard) }()
		dial := func() net.Conn {
			for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
				c, err := net.Dial("tcp", httpAddr)
				if err == nil && useTLS {
					tc := tls.Client(c, &tls.Config{RootCAs: roots, ServerName: "127.0.0.1"})
					if err = tc.Handshake(); err == nil {
						return tc
					}
					c.Close()
				} else if err == nil {
					return c
				}
				if time.Now().After(deadline) {
					t.Fatalf("dial: %v", err)
				}
			}
		}
		for _, afterRequest := range []bool{false, true} {
			name := fmt.Sprintf("tls=%v after-request=%v", useTLS, afterRequest)
			c := dial()
			br := bufio.NewReader(c)
			if afterRequest {
				fmt.Fprintf(c, "GET /crashes HTTP/1.1\r\nHost: x\r\n\r\n")
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				io.Copy(io.Discard, resp.Body)
			}
			start := time.Now()
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, err := br.ReadByte()
			if errors.Is(err, os.ErrDeadlineExceeded) {
				t.Errorf("%s: still open after 5 s, want closed after 500 ms", name)
			} else {
				t.Logf("%s: closed after %v (%v)", name, time.Since(start).Round(10*time.Millisecond), err)
			}
			c.Close()
		}
		cancel()
		<-done
	}
}
