package link

import (
	"encoding/binary"
	"net"
	"net/netip"
	"sync"
)

// A DHCP reply carries, besides the lease, the Ethernet address of the host
// that sent it: the server, or the relay agent on this link (RFC 1542, the
// router whose address is giaddr). When that host is also the next hop of a
// netconsole receiver (QEMU's 10.0.2.2, a relaying gateway), its MAC is
// known without an ARP exchange, and the agent can arm before ARP answers
// (ARP still checks it afterwards).

// bootReplySource reads an IPv4 frame (from the IP header on, as an
// AF_PACKET datagram socket delivers it) and reports whether it is a BOOTP
// reply (UDP 67 -> 68, op 2), with its transaction id and IPv4 source.
func bootReplySource(frame []byte) (xid uint32, src netip.Addr, ok bool) {
	if len(frame) < 20 || frame[0]>>4 != 4 {
		return 0, netip.Addr{}, false
	}
	ihl := int(frame[0]&0x0f) * 4
	if ihl < 20 || frame[9] != 17 || len(frame) < ihl+8+8 {
		return 0, netip.Addr{}, false
	}
	// A fragment other than the first holds no UDP header.
	if binary.BigEndian.Uint16(frame[6:8])&0x1fff != 0 {
		return 0, netip.Addr{}, false
	}
	udp := frame[ihl:]
	if binary.BigEndian.Uint16(udp[0:2]) != 67 || binary.BigEndian.Uint16(udp[2:4]) != 68 {
		return 0, netip.Addr{}, false
	}
	bootp := udp[8:]
	if bootp[0] != 2 { // BOOTREPLY
		return 0, netip.Addr{}, false
	}
	return binary.BigEndian.Uint32(bootp[4:8]), netip.AddrFrom4([4]byte(frame[12:16])), true
}

// replySource is where one DHCP reply came from.
type replySource struct {
	ip  netip.Addr
	mac net.HardwareAddr
}

// maxReplySources bounds what replyLog keeps: a client has one or two
// transactions in flight; a segment flooding replies must not grow it.
const maxReplySources = 16

// replyLog keeps the source of the latest BOOTP reply per transaction id.
type replyLog struct {
	mu   sync.Mutex
	seen map[uint32]replySource
}

// note records frame's source if it is a BOOTP reply.
func (r *replyLog) note(frame []byte, mac net.HardwareAddr) {
	xid, ip, ok := bootReplySource(frame)
	if !ok || len(mac) != 6 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.seen == nil || len(r.seen) >= maxReplySources {
		r.seen = map[uint32]replySource{}
	}
	r.seen[xid] = replySource{ip: ip, mac: append(net.HardwareAddr(nil), mac...)}
}

// source returns where the reply of transaction xid came from.
func (r *replyLog) source(xid uint32) (replySource, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s, ok := r.seen[xid]
	return s, ok
}
