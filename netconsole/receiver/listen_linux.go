package receiver

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"strconv"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// msgTrunc is the recvmsg flag of a datagram longer than its buffer.
const msgTrunc = unix.MSG_TRUNC

// ListenUDP opens n UDP sockets on addr (such as ":6666", which takes IPv4
// and IPv6, or "[::1]:6666") that share the port with SO_REUSEPORT: the
// kernel hashes each sender's address and port to one of them, so all of a
// sender's datagrams arrive on the same socket and the sockets can be read
// by different cores without sharing sender state. n < 1 means 1. If
// readBuffer is positive, each socket's receive buffer is set to that many
// bytes: with SO_RCVBUFFORCE when the process may (CAP_NET_ADMIN), else with
// SO_RCVBUF, which the kernel caps at net.core.rmem_max. When addr has port
// 0, all sockets share the port the first one got.
func ListenUDP(addr string, n, readBuffer int) ([]*net.UDPConn, error) {
	n = max(n, 1)
	lc := net.ListenConfig{Control: func(network, address string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			if n > 1 {
				if serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); serr != nil {
					serr = fmt.Errorf("SO_REUSEPORT: %w", serr)
					return
				}
			}
			// Have the kernel report, with each datagram, how many it
			// dropped on this socket for want of buffer space, so that
			// those losses are counted by the collector too.
			unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RXQ_OVFL, 1)
			if readBuffer > 0 {
				if unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, readBuffer) != nil {
					if serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, readBuffer); serr != nil {
						serr = fmt.Errorf("SO_RCVBUF: %w", serr)
					}
				}
			}
		})
		return errors.Join(err, serr)
	}}
	var conns []*net.UDPConn
	closeAll := func() {
		for _, c := range conns {
			c.Close()
		}
	}
	for i := range n {
		pc, err := lc.ListenPacket(context.Background(), "udp", addr)
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("receiver: listen on udp %s (socket %d of %d): %w", addr, i+1, n, err)
		}
		c := pc.(*net.UDPConn)
		conns = append(conns, c)
		if i == 0 {
			host, port, err := net.SplitHostPort(addr)
			if err == nil && port == "0" {
				addr = net.JoinHostPort(host, strconv.Itoa(c.LocalAddr().(*net.UDPAddr).Port))
			}
		}
	}
	return conns, nil
}

// oobSize is the control-message buffer per datagram: room for SO_RXQ_OVFL.
var oobSize = unix.CmsgSpace(4)

// rxqOverflow returns the SO_RXQ_OVFL drop counter in a datagram's control
// messages.
func rxqOverflow(oob []byte) (uint32, bool) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return 0, false
	}
	for _, m := range msgs {
		if m.Header.Level == unix.SOL_SOCKET && m.Header.Type == unix.SO_RXQ_OVFL && len(m.Data) >= 4 {
			return binary.NativeEndian.Uint32(m.Data), true
		}
	}
	return 0, false
}

// sockDrops returns the socket's drop counter, the one SO_RXQ_OVFL reports
// (sk_drops), read now with SO_MEMINFO (Linux 3.7+): it counts the drops no
// queued datagram reports yet.
func sockDrops(rc syscall.RawConn) (uint32, bool) {
	var mi [unix.SK_MEMINFO_VARS]uint32
	var errno syscall.Errno
	l := uint32(unsafe.Sizeof(mi))
	if err := rc.Control(func(fd uintptr) {
		_, _, errno = unix.Syscall6(unix.SYS_GETSOCKOPT, fd, unix.SOL_SOCKET, unix.SO_MEMINFO,
			uintptr(unsafe.Pointer(&mi)), uintptr(unsafe.Pointer(&l)), 0)
	}); err != nil || errno != 0 || l <= unix.SK_MEMINFO_DROPS*4 {
		return 0, false
	}
	return mi[unix.SK_MEMINFO_DROPS], true
}
