package server

import (
	"crypto/tls"
	"errors"
	"fmt"
	"slices"
)

// ErrForbidden is wrapped by Authorize's errors.
var ErrForbidden = errors.New("forbidden")

// Authorize decides whether the client of a TLS connection may write the
// records of host: its certificate must have been verified (state's
// VerifiedChains; the listener's tls.Config does the verifying) and name
// host exactly, as the subject's common name or as one of its DNS names.
// A credential thereby writes only its own host's records.
func Authorize(state *tls.ConnectionState, host string) error {
	if state == nil {
		return fmt.Errorf("host %s: upload not over TLS: %w", host, ErrForbidden)
	}
	if len(state.VerifiedChains) == 0 || len(state.PeerCertificates) == 0 {
		return fmt.Errorf("host %s: no verified client certificate: %w", host, ErrForbidden)
	}
	cert := state.PeerCertificates[0]
	if host != "" && (cert.Subject.CommonName == host || slices.Contains(cert.DNSNames, host)) {
		return nil
	}
	return fmt.Errorf("client certificate of %q (DNS names %q) may not write host %s: %w",
		cert.Subject.CommonName, cert.DNSNames, host, ErrForbidden)
}
