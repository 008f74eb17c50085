package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestHTTPTLS checks -tls-cert, -tls-key and -client-ca.
func TestHTTPTLS(t *testing.T) {
	dir := t.TempDir()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ca"}, IsCA: true, BasicConstraintsValid: true,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(key)
	certPath, keyPath, junk := filepath.Join(dir, "c.pem"), filepath.Join(dir, "c.key"), filepath.Join(dir, "junk")
	os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600)
	os.WriteFile(junk, []byte("not PEM"), 0o600)
	for _, tt := range []struct {
		name       string
		c          config
		wantTLS    bool
		clientAuth tls.ClientAuthType
		wantErr    bool
	}{
		{name: "plain", c: config{}},
		{name: "server certificate", c: config{tlsCert: certPath, tlsKey: keyPath}, wantTLS: true, clientAuth: tls.NoClientCert},
		{name: "client certificates", c: config{tlsCert: certPath, tlsKey: keyPath, clientCA: certPath}, wantTLS: true, clientAuth: tls.RequireAndVerifyClientCert},
		{name: "client-ca without certificate", c: config{clientCA: certPath}, wantErr: true},
		{name: "certificate without key", c: config{tlsCert: certPath}, wantErr: true},
		{name: "client-ca not PEM", c: config{tlsCert: certPath, tlsKey: keyPath, clientCA: junk}, wantErr: true},
		{name: "client-ca missing", c: config{tlsCert: certPath, tlsKey: keyPath, clientCA: filepath.Join(dir, "none")}, wantErr: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tc, err := httpTLS(tt.c)
			if (err != nil) != tt.wantErr {
				t.Fatalf("httpTLS() err = %v, want error %v", err, tt.wantErr)
			}
			if (tc != nil) != tt.wantTLS {
				t.Fatalf("httpTLS() = %v, want TLS %v", tc, tt.wantTLS)
			}
			if tc != nil && tc.ClientAuth != tt.clientAuth {
				t.Errorf("ClientAuth = %v, want %v", tc.ClientAuth, tt.clientAuth)
			}
		})
	}
}

func TestTLSFlags(t *testing.T) {
	c, err := parseFlags([]string{"-tls-cert", "a", "-tls-key", "b", "-client-ca", "c"}, os.Stderr)
	if err != nil || c.tlsCert != "a" || c.tlsKey != "b" || c.clientCA != "c" {
		t.Errorf("parseFlags = %+v, %v", c, err)
	}
}
