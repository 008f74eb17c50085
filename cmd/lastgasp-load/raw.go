package main

import (
	"net"
	"net/netip"

	"golang.org/x/net/ipv4"
)

// rawBatch is how many datagrams one sendmmsg carries.
const rawBatch = 64

// batchWriter is the part of *ipv4.RawConn a rawEmitter uses.
type batchWriter interface {
	WriteBatch(ms []ipv4.Message, flags int) (int, error)
	Close() error
}

var _ batchWriter = (*ipv4.RawConn)(nil)

// rawEmitter builds each host's IPv4/UDP datagrams itself, with the host's
// source address, and sends them in batches on one raw socket.
type rawEmitter struct {
	conn batchWriter
	dst  netip.AddrPort
	addr net.Addr
	bufs [rawBatch][]byte
	msgs [rawBatch]ipv4.Message
	n    int
}

func newRawEmitter(c batchWriter, dst netip.AddrPort) *rawEmitter {
	e := &rawEmitter{conn: c, dst: dst, addr: &net.IPAddr{IP: dst.Addr().AsSlice()}}
	for i := range e.bufs {
		e.bufs[i] = make([]byte, 0, 2048)
		e.msgs[i].Buffers = make([][]byte, 1)
		e.msgs[i].Addr = e.addr
	}
	return e
}

func (e *rawEmitter) emit(h *host, payload []byte, r *Result) {
	r.Datagrams++
	e.bufs[e.n] = appendUDP4(e.bufs[e.n][:0], h.src, e.dst, payload)
	e.msgs[e.n].Buffers[0] = e.bufs[e.n]
	e.n++
	if e.n == rawBatch {
		e.flush(r)
	}
}

func (e *rawEmitter) flush(r *Result) {
	ms := e.msgs[:e.n]
	for len(ms) > 0 {
		n, err := e.conn.WriteBatch(ms, 0)
		if err != nil && n <= 0 {
			// sendmmsg reports an error only for the first datagram.
			r.Errors++
			n = 1
		}
		ms = ms[n:]
	}
	e.n = 0
}

func (e *rawEmitter) close() { e.conn.Close() }
