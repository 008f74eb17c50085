package ship

import "errors"

// ErrTLSNotBuilt is wrapped by the error of an https:// upload from a binary
// built without the lastgasp_tls build tag (see TLSBuilt).
var ErrTLSNotBuilt = errors.New("https:// upload: agent built without TLS (build tag lastgasp_tls; board key build.tags)")

// TLSConfig is what an https:// upload needs, as PEM bytes. The agent reads
// it at boot: the collector's CA from the image (board key upload.ca) and
// this host's client certificate and key from a per-host source (see
// README, "Credentials").
//
// The type itself needs no crypto code: crypto/tls costs about 0.8 MB of
// xz in the agent's image, so only a binary built with the lastgasp_tls tag
// can use it (put_tls.go); without the tag an https:// upload fails with
// ErrTLSNotBuilt.
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
