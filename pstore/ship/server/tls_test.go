package server

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/lastgasp/lastgasp/pstore/ship"
)

// testCA is a throw-away certificate authority.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t testing.TB, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue returns the PEM certificate and key of a leaf signed by ca.
func (ca *testCA) issue(t testing.TB, cn string, dns []string, ips []net.IP, usage x509.ExtKeyUsage) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn},
		DNSNames:     dns,
		IPAddresses:  ips,
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

func (ca *testCA) clientCert(t testing.TB, cn string, dns ...string) tls.Certificate {
	t.Helper()
	c, k := ca.issue(t, cn, dns, nil, x509.ExtKeyUsageClientAuth)
	cert, err := tls.X509KeyPair(c, k)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// newTLSServer starts the real Server behind an httptest TLS listener that
// requires client certificates signed by clientCA (a collector with
// -tls-cert, -tls-key and -client-ca). The server's certificate is for
// 127.0.0.1, signed by serverCA.
func newTLSServer(t *testing.T, serverCA, clientCA *testCA) (*Server, *httptest.Server) {
	t.Helper()
	s := &Server{Root: filepath.Join(t.TempDir(), "root"), Logf: t.Logf, Now: func() time.Time { return received }, RequireClientIdentity: true}
	c, k := serverCA.issue(t, "collector", nil, []net.IP{net.IPv4(127, 0, 0, 1)}, x509.ExtKeyUsageServerAuth)
	cert, err := tls.X509KeyPair(c, k)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(clientCA.cert)
	ts := httptest.NewUnstartedServer(s)
	ts.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert}
	ts.StartTLS()
	t.Cleanup(ts.Close)
	return s, ts
}

// TestTLSIdentity uploads with net/http (the collector's side of the test)
// and checks that a credential writes only its own host's records.
func TestTLSIdentity(t *testing.T) {
	ca := newTestCA(t, "fleet CA")
	s, ts := newTLSServer(t, ca, ca)
	roots := x509.NewCertPool()
	roots.AddCert(ca.cert)
	for _, tt := range []struct {
		name   string
		cert   *tls.Certificate
		host   string
		code   int // 0: the handshake fails
		stored bool
	}{
		{name: "own host by common name", cert: ptr(ca.clientCert(t, "box-1")), host: "box-1", code: 200, stored: true},
		{name: "own host by DNS name", cert: ptr(ca.clientCert(t, "someone", "box-2")), host: "box-2", code: 200, stored: true},
		{name: "other host", cert: ptr(ca.clientCert(t, "box-3", "box-3.example")), host: "box-1", code: 403},
		{name: "prefix of own name", cert: ptr(ca.clientCert(t, "box-10")), host: "box-1", code: 403},
		{name: "case differs", cert: ptr(ca.clientCert(t, "BOX-4")), host: "box-4", code: 403},
		{name: "no client certificate", host: "box-5"},
		{name: "certificate of another CA", cert: ptr(newTestCA(t, "other CA").clientCert(t, "box-6")), host: "box-6"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tc := &tls.Config{RootCAs: roots}
			if tt.cert != nil {
				tc.Certificates = []tls.Certificate{*tt.cert}
			}
			hc := &http.Client{Transport: &http.Transport{TLSClientConfig: tc}}
			body := []byte("record of " + tt.name)
			req, _ := http.NewRequest(http.MethodPut, ts.URL+ship.RecordPath(tt.host, ship.Digest(body)), bytes.NewReader(body))
			req.Header.Set(ship.HeaderRecordName, "dmesg-ramoops-0")
			resp, err := hc.Do(req)
			if tt.code == 0 {
				if err == nil {
					resp.Body.Close()
					t.Fatalf("PUT = %d, want the handshake refused", resp.StatusCode)
				}
				return
			}
			if err != nil {
				t.Fatalf("PUT: %v", err)
			}
			msg, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.code {
				t.Errorf("PUT = %d %s, want %d", resp.StatusCode, msg, tt.code)
			}
			got := exists(t, filepath.Join(s.Root, tt.host, "crash", "dmesg-ramoops-0."+ship.Digest(body)[:16]))
			if got != tt.stored {
				t.Errorf("stored = %v, want %v", got, tt.stored)
			}
		})
	}
	if got := s.Stats().Rejected["forbidden"]; got != 3 {
		t.Errorf("Stats().Rejected[forbidden] = %d, want 3", got)
	}
}

// TestIdentityWithoutTLS: a Server that requires identities refuses a
// plain-HTTP upload.
func TestIdentityWithoutTLS(t *testing.T) {
	s := &Server{Root: t.TempDir(), Logf: t.Logf, RequireClientIdentity: true}
	w := serve(s, "/v1/hosts/box-1/records/{digest}", "dmesg-ramoops-0", "", "", "", panicData)
	if w.Code != http.StatusForbidden {
		t.Errorf("plain upload = %d %s, want 403", w.Code, w.Body)
	}
}

func TestAuthorize(t *testing.T) {
	verified := func(cn string, dns ...string) *tls.ConnectionState {
		c := &x509.Certificate{Subject: pkix.Name{CommonName: cn}, DNSNames: dns}
		return &tls.ConnectionState{PeerCertificates: []*x509.Certificate{c}, VerifiedChains: [][]*x509.Certificate{{c}}}
	}
	unverified := verified("box-1")
	unverified.VerifiedChains = nil
	for _, tt := range []struct {
		name  string
		state *tls.ConnectionState
		host  string
		ok    bool
	}{
		{"common name", verified("box-1"), "box-1", true},
		{"DNS name", verified("x", "a", "box-1"), "box-1", true},
		{"other host", verified("box-2", "box-3"), "box-1", false},
		{"not TLS", nil, "box-1", false},
		{"not verified", unverified, "box-1", false},
		{"empty host", verified(""), "", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := Authorize(tt.state, tt.host)
			if (err == nil) != tt.ok || err != nil && !errors.Is(err, ErrForbidden) {
				t.Errorf("Authorize(%s) = %v, want ok %v", tt.host, err, tt.ok)
			}
		})
	}
}

// FuzzAuthorize: a certificate's names are attacker-chosen bytes; only an
// exact match of the path's host authorizes.
func FuzzAuthorize(f *testing.F) {
	f.Add("box-1", "box-1", "", "")               // common name
	f.Add("x", "box-1.example", "box-1", "box-1") // DNS name
	f.Add("box-1\x00", "", "", "box-1")           // NUL after the name
	f.Add("*.example", "", "", "a.example")       // wildcards are not patterns here
	f.Add("box-10", "box-1 ", "BOX-1", "box-1")   // near misses
	f.Add("", "", "", "")                         // empty everything
	f.Fuzz(func(t *testing.T, cn, dns1, dns2, host string) {
		c := &x509.Certificate{Subject: pkix.Name{CommonName: cn}, DNSNames: []string{dns1, dns2}}
		st := &tls.ConnectionState{PeerCertificates: []*x509.Certificate{c}, VerifiedChains: [][]*x509.Certificate{{c}}}
		err := Authorize(st, host)
		want := host != "" && (host == cn || host == dns1 || host == dns2)
		if (err == nil) != want {
			t.Fatalf("Authorize(cn %q, dns %q %q, host %q) = %v, want ok %v", cn, dns1, dns2, host, err, want)
		}
		if err != nil && !errors.Is(err, ErrForbidden) {
			t.Fatalf("error %v does not wrap ErrForbidden", err)
		}
	})
}

func ptr[T any](v T) *T { return &v }
