//go:build !linux

package main

import (
	"fmt"
	"runtime"

	"golang.org/x/net/ipv4"
)

// dialRaw is implemented on Linux only: IP_HDRINCL's byte order and checks
// differ between systems.
func dialRaw() (*ipv4.RawConn, error) {
	return nil, fmt.Errorf("raw socket: not implemented on %s", runtime.GOOS)
}
