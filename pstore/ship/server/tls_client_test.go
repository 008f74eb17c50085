//go:build !lastgasp_notls

package server

import (
	"context"
	"crypto/x509"
	"errors"
	"net"
	"sync/atomic"
	"testing"

	"github.com/lastgasp/lastgasp/pstore/records"
	"github.com/lastgasp/lastgasp/pstore/ship"
)

// These tests drive the agent's own client (ship.Client, with TLS: every
// build but one with the lastgasp_notls tag) against the real Server behind
// a TLS listener that requires client certificates:
//
//	go test ./pstore/ship/...

// tlsClient is newClient with TLS material and a dialer that counts
// connections.
func tlsClient(url string, ca []byte, cert, key []byte, dials *atomic.Int32) *ship.Client {
	c := newClient(url)
	c.TLS = &ship.TLSConfig{CA: ca, Cert: cert, Key: key}
	c.Dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
		dials.Add(1)
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}
	return c
}

func TestTLSClientRoundTrip(t *testing.T) {
	ca := newTestCA(t, "fleet CA")
	s, ts := newTLSServer(t, ca, ca)
	cert, key := ca.issue(t, "box-1", nil, nil, x509.ExtKeyUsageClientAuth)
	var dials atomic.Int32
	r := record(t, t.TempDir(), "dmesg-ramoops-0", panicData)
	shipped, kept, err := ship.ShipAll(context.Background(), tlsClient(ts.URL, ca.pem, cert, key, &dials), []records.Record{r}, nil, t.Logf)
	if shipped != 1 || kept != 0 || err != nil {
		t.Fatalf("ShipAll = %d, %d, %v; want 1, 0, nil", shipped, kept, err)
	}
	if exists(t, r.Path) {
		t.Error("record not removed after the acknowledgement")
	}
	if st := s.Stats(); st.Stored != 1 {
		t.Errorf("Stats().Stored = %d, want 1", st.Stored)
	}
}

func TestTLSClientRefused(t *testing.T) {
	ca := newTestCA(t, "fleet CA")
	other := newTestCA(t, "impostor CA")
	box1, box1Key := ca.issue(t, "box-1", nil, nil, x509.ExtKeyUsageClientAuth)
	box2, box2Key := ca.issue(t, "box-2", []string{"box-2.example"}, nil, x509.ExtKeyUsageClientAuth)
	for _, tt := range []struct {
		name      string
		serverCA  *testCA // signs the collector's certificate
		pinned    []byte  // the CA the agent trusts
		cert, key []byte
		code      int   // want a StatusError with this code, or 0
		dials     int32 // connections made: 1 = not retried
	}{
		{name: "credential of another host", serverCA: ca, pinned: ca.pem, cert: box2, key: box2Key, code: 403, dials: 1},
		{name: "collector certificate not signed by the pinned CA", serverCA: other, pinned: ca.pem, cert: box1, key: box1Key, dials: 1},
		{name: "no client certificate", serverCA: ca, pinned: ca.pem, dials: 3},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, ts := newTLSServer(t, tt.serverCA, ca)
			var dials atomic.Int32
			r := record(t, t.TempDir(), "dmesg-ramoops-0", panicData)
			shipped, kept, err := ship.ShipAll(context.Background(), tlsClient(ts.URL, tt.pinned, tt.cert, tt.key, &dials), []records.Record{r}, nil, t.Logf)
			if shipped != 0 || kept != 1 || err == nil {
				t.Fatalf("ShipAll = %d, %d, %v; want 0, 1, an error", shipped, kept, err)
			}
			var se *ship.StatusError
			if tt.code != 0 && (!errors.As(err, &se) || se.Code != tt.code) {
				t.Errorf("ShipAll error = %v, want StatusError %d", err, tt.code)
			}
			if tt.code == 0 && errors.As(err, &se) {
				t.Errorf("ShipAll error = %v, want a TLS failure", err)
			}
			if got := dials.Load(); got != tt.dials {
				t.Errorf("%d connections, want %d", got, tt.dials)
			}
			if !exists(t, r.Path) {
				t.Error("refused record removed")
			}
			if st := s.Stats(); st.Stored != 0 {
				t.Errorf("Stats().Stored = %d, want 0", st.Stored)
			}
		})
	}
}

func TestTLSConfigCheck(t *testing.T) {
	ca := newTestCA(t, "fleet CA")
	cert, key := ca.issue(t, "box-1", nil, nil, x509.ExtKeyUsageClientAuth)
	for _, tt := range []struct {
		name string
		tc   *ship.TLSConfig
		ok   bool
	}{
		{"CA and credential", &ship.TLSConfig{CA: ca.pem, Cert: cert, Key: key}, true},
		{"CA only", &ship.TLSConfig{CA: ca.pem}, true},
		{"nil", nil, false},
		{"no CA", &ship.TLSConfig{Cert: cert, Key: key}, false},
		{"CA not PEM", &ship.TLSConfig{CA: []byte("not a certificate")}, false},
		{"certificate without key", &ship.TLSConfig{CA: ca.pem, Cert: cert}, false},
		{"key of another certificate", &ship.TLSConfig{CA: ca.pem, Cert: cert, Key: func() []byte { _, k := ca.issue(t, "x", nil, nil, x509.ExtKeyUsageClientAuth); return k }()}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.tc.Check(); (err == nil) != tt.ok {
				t.Errorf("Check() = %v, want ok %v", err, tt.ok)
			}
		})
	}
}

// FuzzTLSConfig: the PEM files come from a per-host source at boot; any
// bytes must give a usable config or an error, never a panic.
func FuzzTLSConfig(f *testing.F) {
	ca := newTestCA(f, "fleet CA")
	cert, key := ca.issue(f, "box-1", nil, nil, x509.ExtKeyUsageClientAuth)
	f.Add(ca.pem, cert, key)                              // a good set
	f.Add(ca.pem, []byte(nil), []byte(nil))               // no client credential
	f.Add(cert, ca.pem, key)                              // swapped
	f.Add(ca.pem[:len(ca.pem)/2], cert, key[:len(key)-9]) // truncated
	f.Add([]byte("-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----\n"), cert, cert)
	f.Fuzz(func(t *testing.T, caPEM, certPEM, keyPEM []byte) {
		(&ship.TLSConfig{CA: caPEM, Cert: certPEM, Key: keyPEM}).Check()
	})
}
