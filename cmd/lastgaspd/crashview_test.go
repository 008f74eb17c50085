package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lastgasp/lastgasp/store"
)

// TestReadScope: over TLS with client certificates, a host's certificate
// lists only its own host in /crashes and is refused another host's page;
// a certificate with the reader OU reads every host; a bearer token does
// too, and a request without either credential is refused.
func TestReadScope(t *testing.T) {
	root := t.TempDir()
	for _, h := range []string{"alpha", "beta"} {
		os.MkdirAll(filepath.Join(root, h, "b1"), 0o755)
		os.WriteFile(filepath.Join(root, h, "b1", store.LogName),
			[]byte("2026-12-02T00:00:00Z 0 seq=1 ts=1.000000 Kernel panic - not syncing: "+h+" crashed\n"), 0o644)
	}
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caT := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ca"}, IsCA: true, BasicConstraintsValid: true,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageCertSign}
	caDER, _ := x509.CreateCertificate(rand.Reader, caT, caT, &caKey.PublicKey, caKey)
	ca, _ := x509.ParseCertificate(caDER)
	issue := func(subj pkix.Name) tls.Certificate {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tm := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: subj, NotBefore: time.Now().Add(-time.Hour),
			NotAfter: time.Now().Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
		der, _ := x509.CreateCertificate(rand.Reader, tm, ca, &k.PublicKey, caKey)
		return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: k}
	}
	caPath := filepath.Join(root, "ca.pem")
	os.WriteFile(caPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600)
	tokPath := filepath.Join(root, "token")
	os.WriteFile(tokPath, []byte("0123456789abcdef-reader\n"), 0o600)

	c := config{store: root, clientCA: caPath, view: viewConfig{readerOU: DefaultReaderOU, readerToken: tokPath}}
	v, err := newCrashView(c, log.New(io.Discard, "", 0), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer v.index.Close()
	defer v.live.Close()
	mux := http.NewServeMux()
	mux.Handle("/crashes", v.scopedCrashes(&store.CrashIndex{Root: root}))
	mux.Handle("/ui/", v.web)
	srv := httptest.NewUnstartedServer(mux)
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	srv.TLS = &tls.Config{ClientCAs: pool, ClientAuth: tls.VerifyClientCertIfGiven}
	srv.StartTLS()
	defer srv.Close()

	get := func(cert *tls.Certificate, token, path string) (int, string) {
		tr := srv.Client().Transport.(*http.Transport).Clone()
		if cert != nil {
			tr.TLSClientConfig.Certificates = []tls.Certificate{*cert}
		}
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := (&http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	alpha := issue(pkix.Name{CommonName: "alpha"})
	reader := issue(pkix.Name{CommonName: "alice", OrganizationalUnit: []string{DefaultReaderOU}})
	tests := []struct {
		name        string
		cert        *tls.Certificate
		token, path string
		code        int
		has, hasNot string
	}{
		{"host cert lists itself", &alpha, "", "/crashes", 200, "alpha crashed", "beta"},
		{"host cert, other host page", &alpha, "", "/ui/host/beta", 403, "", ""},
		{"host cert, own host page", &alpha, "", "/ui/host/alpha", 200, "alpha", ""},
		{"host cert, overview goes to its host", &alpha, "", "/ui/", 302, "", ""},
		{"reader cert lists all", &reader, "", "/crashes", 200, "beta crashed", ""},
		{"reader cert, any host page", &reader, "", "/ui/host/beta", 200, "beta", ""},
		{"token lists all", nil, "0123456789abcdef-reader", "/crashes", 200, "alpha crashed", ""},
		{"wrong token", nil, "0123456789abcdef-wrong", "/crashes", 401, "", ""},
		{"no credential", nil, "", "/crashes", 401, "", ""},
	}
	for _, tt := range tests {
		code, body := get(tt.cert, tt.token, tt.path)
		if code != tt.code || !strings.Contains(body, tt.has) || tt.hasNot != "" && strings.Contains(body, tt.hasNot) {
			t.Errorf("%s: GET %s = %d %q; want %d, containing %q, not %q", tt.name, tt.path, code, body, tt.code, tt.has, tt.hasNot)
		}
	}
}
