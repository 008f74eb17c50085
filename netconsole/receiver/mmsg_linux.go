package receiver

import (
	"net"
	"net/netip"
	"os"
	"strconv"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// mmsgReader reads a UDP socket with recvmmsg(2) into buffers, names and
// control buffers of its own, set up once, and decodes each datagram's
// source straight into the netip.AddrPort that keys its sender. x/net's
// ReadBatch, used before, allocated a net.UDPAddr and its IP for every
// datagram and packed its headers anew for every call: garbage at a rate
// of two objects per datagram on the path that must keep up with the
// socket.
type mmsgReader struct {
	rc    syscall.RawConn
	hdrs  []mmsghdr
	iovs  []unix.Iovec
	names []unix.RawSockaddrInet6 // large enough for AF_INET and AF_INET6
	bufs  [][]byte
	oob   []byte // oobSize bytes per datagram
	ovfl  ovflCounter
	zones map[uint32]string // IPv6 scope id -> interface name
}

// mmsghdr is struct mmsghdr: a msghdr and the length received (Go pads it
// to the C layout on 32- and 64-bit platforms alike).
type mmsghdr struct {
	hdr unix.Msghdr
	len uint32
}

// newMmsgReader returns a reader of up to n datagrams of size bytes per
// call on uc.
func newMmsgReader(uc *net.UDPConn, n, size int) (*mmsgReader, error) {
	rc, err := uc.SyscallConn()
	if err != nil {
		return nil, err
	}
	n = max(n, 1)
	r := &mmsgReader{
		rc:    rc,
		hdrs:  make([]mmsghdr, n),
		iovs:  make([]unix.Iovec, n),
		names: make([]unix.RawSockaddrInet6, n),
		bufs:  make([][]byte, n),
		oob:   make([]byte, n*oobSize),
	}
	for i := range n {
		r.bufs[i] = make([]byte, max(size, 1))
		r.iovs[i].Base = &r.bufs[i][0]
		r.iovs[i].SetLen(len(r.bufs[i]))
		h := &r.hdrs[i].hdr
		h.Name = (*byte)(unsafe.Pointer(&r.names[i]))
		h.Iov = &r.iovs[i]
		h.SetIovlen(1)
		h.Control = &r.oob[i*oobSize]
	}
	return r, nil
}

// read waits (until the socket's read deadline) for datagrams and returns
// how many it read.
func (r *mmsgReader) read() (int, error) {
	var n int
	var errno syscall.Errno
	err := r.rc.Read(func(fd uintptr) bool {
		for i := range r.hdrs {
			h := &r.hdrs[i].hdr
			h.Namelen = unix.SizeofSockaddrInet6
			h.SetControllen(oobSize)
			h.Flags = 0
		}
		for {
			r0, _, e := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&r.hdrs[0])), uintptr(len(r.hdrs)), 0, 0, 0)
			switch e {
			case unix.EINTR:
				continue
			case unix.EAGAIN:
				return false // wait until readable (or the deadline)
			}
			n, errno = int(r0), e
			return true
		}
	})
	if err != nil {
		return 0, err
	}
	if errno != 0 {
		return 0, os.NewSyscallError("recvmmsg", errno)
	}
	return n, nil
}

// datagram returns datagram i of the last read: its sender, its bytes and
// whether it was longer than the buffer. ok is false for a source that is
// not an IP address (which UDP does not deliver).
func (r *mmsgReader) datagram(i int) (key netip.AddrPort, b []byte, truncated, ok bool) {
	h := &r.hdrs[i]
	sa := &r.names[i]
	switch sa.Family {
	case unix.AF_INET:
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		key = netip.AddrPortFrom(netip.AddrFrom4(sa4.Addr), netPort(sa4.Port))
	case unix.AF_INET6:
		a := netip.AddrFrom16(sa.Addr)
		if sa.Scope_id != 0 {
			a = a.WithZone(r.zone(sa.Scope_id))
		}
		key = netip.AddrPortFrom(a.Unmap(), netPort(sa.Port))
	default:
		return netip.AddrPort{}, nil, false, false
	}
	return key, r.bufs[i][:h.len], h.hdr.Flags&unix.MSG_TRUNC != 0, true
}

// netPort returns a port as the kernel stores it in a sockaddr: in network
// byte order.
func netPort(p uint16) uint16 {
	b := (*[2]byte)(unsafe.Pointer(&p))
	return uint16(b[0])<<8 | uint16(b[1])
}

// zone returns the name of the interface with index id, as net.UDPAddr
// names an IPv6 zone (its number if it has none), remembered per id.
func (r *mmsgReader) zone(id uint32) string {
	if z, ok := r.zones[id]; ok {
		return z
	}
	z := strconv.FormatUint(uint64(id), 10)
	if ifi, err := net.InterfaceByIndex(int(id)); err == nil {
		z = ifi.Name
	}
	if r.zones == nil || len(r.zones) >= 256 {
		r.zones = make(map[uint32]string)
	}
	r.zones[id] = z
	return z
}

// kernelDrops returns how many datagrams the kernel dropped on the socket
// since the last call, from the SO_RXQ_OVFL counter of the n datagrams just
// read.
func (r *mmsgReader) kernelDrops(n int) uint64 {
	var d uint64
	for i := range n {
		if cl := int(r.hdrs[i].hdr.Controllen); cl > 0 {
			d += r.ovfl.see(r.oob[i*oobSize : i*oobSize+min(cl, oobSize)])
		}
	}
	return d
}

// socketDrops returns the drops the socket's counter (SO_MEMINFO) adds to
// those the datagrams read so far reported.
func (r *mmsgReader) socketDrops() uint64 {
	c, ok := sockDrops(r.rc)
	if !ok {
		return 0
	}
	return r.ovfl.advance(c)
}
