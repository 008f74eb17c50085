package link

import (
	"net"

	"github.com/mdlayher/packet"
)

// replyConn is the AF_PACKET socket under nclient4's broadcast UDP
// conn: it passes every frame on and notes each DHCP reply's sender.
type replyConn struct {
	*packet.Conn
	log *replyLog
}

// ReadFrom reads a frame and notes its sender if it is a DHCP reply.
func (c replyConn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, addr, err := c.Conn.ReadFrom(b)
	if err == nil {
		if pa, ok := addr.(*packet.Addr); ok {
			c.log.note(b[:n], pa.HardwareAddr)
		}
	}
	return n, addr, err
}
