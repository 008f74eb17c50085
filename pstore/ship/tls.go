package ship

import "errors"

// ErrTLSNotBuilt is wrapped by the error of an https:// upload from a binary
// built with the lastgasp_notls build tag (see TLSBuilt).
var ErrTLSNotBuilt = errors.New("https:// upload: agent built without TLS (build tag lastgasp_notls; board key build.tags)")

// TLSConfig is what an https:// upload needs, as PEM bytes. The agent reads
// it at boot: the collector's CA from the image (board key upload.ca) and
// this host's client certificate and key from a per-host source (see
// README, "Credentials").
//
// The type itself needs no crypto code: crypto/tls (about 0.53 MB of xz in
// the agent's image) is compiled in by default (put_tls.go); a lab image
// built with the lastgasp_notls tag leaves it out, and an https:// upload
// from it fails with ErrTLSNotBuilt.
type TLSConfig struct {
	// CA holds the PEM certificates of the CA that signed the collector's
	// certificate. They are the only roots trusted (the CA is pinned); it
	// is required.
	CA []byte
	// Cert and Key are this host's PEM client certificate (chain) and
	// private key. Both or neither; without them the upload is made
	// without a client certificate, which a collector that checks
	// identities refuses.
	Cert, Key []byte
}
