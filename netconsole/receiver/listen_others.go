//go:build !linux

package receiver

import (
	"fmt"
	"net"
	"syscall"
)

// msgTrunc is not reported on this GOOS.
const msgTrunc = 0

// ListenUDP opens one UDP socket on addr: SO_REUSEPORT sharding and receive
// buffer sizing are implemented on Linux only, so n and readBuffer are
// ignored.
func ListenUDP(addr string, n, readBuffer int) ([]*net.UDPConn, error) {
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("receiver: %w", err)
	}
	return []*net.UDPConn{pc.(*net.UDPConn)}, nil
}

// oobSize is zero: SO_RXQ_OVFL is read on Linux only.
const oobSize = 0

func rxqOverflow([]byte) (uint32, bool) { return 0, false }

// sockDrops reports nothing: the socket's drop counter is read on Linux
// only.
func sockDrops(syscall.RawConn) (uint32, bool) { return 0, false }

// mmsgReader is Linux only; elsewhere x/net's ReadBatch reads.
type mmsgReader = batchReader

func newMmsgReader(*net.UDPConn, int, int) (*mmsgReader, error) { return nil, nil }
