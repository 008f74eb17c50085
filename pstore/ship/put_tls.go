//go:build !lastgasp_notls

package ship

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
)

// TLSBuilt reports whether this binary can upload over https:// (it can
// unless built with the lastgasp_notls tag, for lab images).
const TLSBuilt = true

// Check parses t and reports what is wrong with it.
func (t *TLSConfig) Check() error {
	_, err := t.config("")
	return err
}

// config builds the client's tls.Config: the collector CA as the only
// root, the client certificate if any, TLS 1.2 or later.
func (t *TLSConfig) config(serverName string) (*tls.Config, error) {
	if t == nil || len(t.CA) == 0 {
		return nil, errors.New("tls: no collector CA: refusing https:// without a pinned CA")
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(t.CA) {
		return nil, errors.New("tls: collector CA: no PEM certificate")
	}
	tc := &tls.Config{RootCAs: roots, ServerName: serverName, MinVersion: tls.VersionTLS12}
	switch {
	case len(t.Cert) > 0 && len(t.Key) > 0:
		cert, err := tls.X509KeyPair(t.Cert, t.Key)
		if err != nil {
			return nil, fmt.Errorf("tls: client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	case len(t.Cert) > 0 || len(t.Key) > 0:
		return nil, errors.New("tls: client certificate without key, or key without certificate")
	}
	return tc, nil
}

// startTLS runs the client handshake on conn, verifying the collector's
// certificate for serverName against the pinned CA. A failed verification
// is final (not a transport error: retrying cannot help).
func startTLS(ctx context.Context, conn net.Conn, t *TLSConfig, serverName string) (net.Conn, error) {
	tc, err := t.config(serverName)
	if err != nil {
		return nil, err
	}
	c := tls.Client(conn, tc)
	if err := c.HandshakeContext(ctx); err != nil {
		var ve *tls.CertificateVerificationError
		if errors.As(err, &ve) {
			return nil, fmt.Errorf("collector certificate not trusted: %w", err)
		}
		return nil, &transportError{fmt.Errorf("tls handshake: %w", err)}
	}
	return c, nil
}
