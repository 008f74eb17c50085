//go:build lastgasp_notls

package ship

import (
	"context"
	"net"
)

// TLSBuilt reports whether this binary can upload over https:// (it can
// unless built with the lastgasp_notls tag, for lab images).
const TLSBuilt = false

// Check reports whether t can be used; without TLS support it never can.
func (t *TLSConfig) Check() error { return ErrTLSNotBuilt }

func startTLS(ctx context.Context, conn net.Conn, t *TLSConfig, serverName string) (net.Conn, error) {
	return nil, ErrTLSNotBuilt
}
