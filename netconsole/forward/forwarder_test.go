package forward

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lastgasp/lastgasp/netconsole/sink"
)

// collector is a loopback TCP syslog server that reads octet-counted frames.
type collector struct {
	ln    net.Listener
	mu    sync.Mutex
	msgs  []string
	conns []net.Conn
}

func newCollector(t *testing.T, tlsConfig *tls.Config) *collector {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if tlsConfig != nil {
		ln = tls.NewListener(ln, tlsConfig)
	}
	c := &collector{ln: ln}
	t.Cleanup(func() { ln.Close(); c.dropConns() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			c.mu.Lock()
			c.conns = append(c.conns, conn)
			c.mu.Unlock()
			go func() {
				r := bufio.NewReader(conn)
				for {
					m, err := ReadFrame(r)
					if err != nil {
						return
					}
					c.mu.Lock()
					c.msgs = append(c.msgs, string(m))
					c.mu.Unlock()
				}
			}()
		}
	}()
	return c
}

func (c *collector) dropConns() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, conn := range c.conns {
		conn.Close()
	}
	c.conns = nil
}

func (c *collector) received() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.msgs...)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func runForwarder(t *testing.T, f *Forwarder) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run = %v, want nil", err)
		}
	})
}

func msg(i int) sink.Message {
	return sink.Message{Host: "h", Boot: "b", Level: 6, Seq: uint64(i), Extended: true, Received: t0, Text: fmt.Sprintf("message %d", i)}
}

func TestForwarderReconnects(t *testing.T) {
	c := newCollector(t, nil)
	f, err := New("tcp://"+c.ln.Addr().String(), nil)
	if err != nil {
		t.Fatal(err)
	}
	f.MinBackoff, f.Logf = 10*time.Millisecond, t.Logf
	runForwarder(t, f)
	for i := range 5 {
		f.Send(msg(i))
	}
	waitFor(t, "first batch", func() bool { return len(c.received()) == 5 })
	c.dropConns()
	waitFor(t, "reconnect", func() bool {
		f.Send(msg(99)) // probes the dead connection
		return f.Stats().Connects >= 2
	})
	for i := 5; i < 10; i++ {
		f.Send(msg(i))
	}
	waitFor(t, "second batch", func() bool {
		got := c.received()
		return len(got) > 0 && strings.HasSuffix(got[len(got)-1], "message 9")
	})
	if got := c.received()[0]; !strings.Contains(got, `[lastgasp@32473 seq="0" ts="0.000000" boot="b"] message 0`) {
		t.Errorf("first message %q", got)
	}
}

func TestForwarderQueueFull(t *testing.T) {
	f := &Forwarder{Addr: "127.0.0.1:1", QueueSize: 3}
	for i := range 5 {
		f.Send(msg(i))
	}
	if st := f.Stats(); st.Enqueued != 3 || st.Dropped != 2 || st.Queued != 3 {
		t.Errorf("Stats() = %+v, want 3 enqueued, 2 dropped, 3 queued", st)
	}
}

func TestNew(t *testing.T) {
	for _, tt := range []struct {
		url     string
		ok, tls bool
	}{
		{"tcp://127.0.0.1:514", true, false},
		{"tls://logs.example:6514", true, true},
		{"udp://127.0.0.1:514", false, false},
		{"tcp://127.0.0.1", false, false},
		{"tcp://127.0.0.1:514/x", false, false},
		{"127.0.0.1:514", false, false},
	} {
		f, err := New(tt.url, nil)
		if (err == nil) != tt.ok {
			t.Errorf("New(%q) = %v, want ok %v", tt.url, err, tt.ok)
			continue
		}
		if err == nil && (f.TLS != nil) != tt.tls {
			t.Errorf("New(%q).TLS = %v, want TLS %v", tt.url, f.TLS, tt.tls)
		}
	}
	if f, _ := New("tls://logs.example:6514", nil); f.TLS.ServerName != "logs.example" {
		t.Errorf("ServerName = %q, want logs.example", f.TLS.ServerName)
	}
}

func TestForwarderTLS(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost"},
		DNSNames: []string{"localhost"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	c := newCollector(t, &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}})
	_, port, _ := net.SplitHostPort(c.ln.Addr().String())
	f, err := New("tls://localhost:"+port, &tls.Config{RootCAs: pool})
	if err != nil {
		t.Fatal(err)
	}
	f.Logf = t.Logf
	runForwarder(t, f)
	f.Send(msg(1))
	waitFor(t, "message over TLS", func() bool { return len(c.received()) == 1 })
}

// TestForwardRsyslog sends messages to a real rsyslogd that the test starts
// on a loopback port with its configuration and output in a temporary
// directory (scenario forward-rsyslog without QEMU).
func TestForwardRsyslog(t *testing.T) {
	rsyslogd, err := exec.LookPath("rsyslogd")
	if err != nil {
		if _, err = os.Stat("/usr/sbin/rsyslogd"); err != nil {
			t.Skip("rsyslogd is not installed (apt-get install rsyslog); skipping the real-rsyslog test")
		}
		rsyslogd = "/usr/sbin/rsyslogd"
	}
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	out := filepath.Join(dir, "out.log")
	conf := fmt.Sprintf(`global(workDirectory=%q)
module(load="imtcp")
input(type="imtcp" port="%d" address="127.0.0.1")
template(name="lastgasp" type="string" string="%%HOSTNAME%% %%APP-NAME%% %%MSGID%% %%syslogseverity-text%% %%STRUCTURED-DATA%% %%msg%%\n")
*.* action(type="omfile" file=%q template="lastgasp")
`, dir, port, out)
	confPath := filepath.Join(dir, "rsyslog.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "rsyslogd.out")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	cmd := exec.Command(rsyslogd, "-n", "-f", confPath, "-i", filepath.Join(dir, "rsyslogd.pid"))
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.WaitDelay = time.Second
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting rsyslogd: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("rsyslogd output:\n%s", b)
		}
	})
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	waitFor(t, "rsyslogd listening", func() bool {
		select {
		case <-exited:
			b, _ := os.ReadFile(logPath)
			t.Fatalf("rsyslogd exited: %s", b)
		default:
		}
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	f, err := New("tcp://"+addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	f.Logf = t.Logf
	runForwarder(t, f)
	f.Send(sink.Message{Host: "52-54-00-12-34-56", Boot: "1b6f0a", Level: 6, Seq: 811, TimestampUsec: 3100000, Extended: true, Received: t0,
		Text: "sysrq: Trigger a crash"})
	f.Send(sink.Message{Host: "52-54-00-12-34-56", Boot: "1b6f0a", Level: 0, Seq: 812, TimestampUsec: 3163223, Extended: true, Received: t0,
		Text: "Kernel panic - not syncing: sysrq triggered crash"})
	want := []string{
		`52-54-00-12-34-56 kernel netconsole info [lastgasp@32473 seq="811" ts="3.100000" boot="1b6f0a"] sysrq: Trigger a crash`,
		`52-54-00-12-34-56 kernel netconsole emerg [lastgasp@32473 seq="812" ts="3.163223" boot="1b6f0a"] Kernel panic - not syncing: sysrq triggered crash`,
	}
	var got string
	waitFor(t, "rsyslog's file to hold both messages", func() bool {
		b, _ := os.ReadFile(out)
		got = string(b)
		return strings.Count(got, "\n") >= 2
	})
	if got != strings.Join(want, "\n")+"\n" {
		t.Errorf("rsyslog wrote\n%s\nwant\n%s", got, strings.Join(want, "\n"))
	}
}
