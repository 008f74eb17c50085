package nexthop

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/mdlayher/ndp"
	"golang.org/x/net/ipv6"
)

// NDPConn is the part of an NDP connection ResolveNDP needs; *ndp.Conn
// implements it. Answers are read raw and parsed by ParseAdvertisement:
// ndp's full parser (ReadFrom) also decodes DNS search lists, which links
// in IDNA tables the agent's image has no room for.
type NDPConn interface {
	WriteTo(m ndp.Message, cm *ipv6.ControlMessage, dst netip.Addr) error
	ReadRaw(b []byte) (int, *ipv6.ControlMessage, netip.Addr, error)
	SetReadDeadline(t time.Time) error
}

var _ NDPConn = (*ndp.Conn)(nil)

// noAnswer is an ErrNoAnswer with its own text (errNoAdvertisement).
type noAnswer string

func (e noAnswer) Error() string      { return string(e) }
func (noAnswer) Is(target error) bool { return target == ErrNoAnswer }

const errNoAdvertisement = noAnswer("no neighbor advertisement")

// ResolveNDP resolves the IPv6 address ip to a MAC with neighbor
// solicitations (RFC 4861, section 7.2) sent to ip's solicited-node
// multicast group through c, carrying src as the source link-layer address,
// with r's retries, deadline and conflict watch. Only advertisements whose
// target is ip and that carry a valid target link-layer address count.
func (r Resolver) ResolveNDP(ctx context.Context, c NDPConn, src net.HardwareAddr, ip netip.Addr) (net.HardwareAddr, error) {
	if !ip.Is6() || ip.Is4In6() {
		return nil, fmt.Errorf("nexthop: ndp %s: not an IPv6 address", ip)
	}
	return r.run(ctx, &ndpProber{c: c, src: src, buf: make([]byte, 1500)}, ip)
}

type ndpProber struct {
	c   NDPConn
	src net.HardwareAddr
	buf []byte
}

func (ndpProber) proto() string                       { return "ndp" }
func (ndpProber) noAnswer() error                     { return errNoAdvertisement }
func (p ndpProber) SetReadDeadline(t time.Time) error { return p.c.SetReadDeadline(t) }

func (p ndpProber) request(ip netip.Addr) error {
	dst, err := ndp.SolicitedNodeMulticast(ip.WithZone(""))
	if err != nil {
		return err
	}
	m := &ndp.NeighborSolicitation{TargetAddress: ip.WithZone("")}
	if len(p.src) == 6 {
		m.Options = []ndp.Option{&ndp.LinkLayerAddress{Direction: ndp.Source, Addr: p.src}}
	}
	return p.c.WriteTo(m, nil, dst)
}

func (p *ndpProber) read() (netip.Addr, net.HardwareAddr, bool, error) {
	n, _, _, err := p.c.ReadRaw(p.buf)
	if err != nil {
		return netip.Addr{}, nil, false, err
	}
	ip, mac, ok := ParseAdvertisement(p.buf[:n])
	return ip, mac, ok, nil
}

// ParseAdvertisement returns the target address and the (first) target
// link-layer address of the ICMPv6 neighbor advertisement b (RFC 4861,
// section 4.4: type 136, code 0, 4 bytes of flags, the target, then
// options of 8-byte units). ok is false for any other message, a truncated
// or malformed one (an option of length zero or running past the end, a
// link-layer option that is not 8 bytes long, an IPv4-mapped target), and
// an advertisement without a target link-layer address option.
func ParseAdvertisement(b []byte) (target netip.Addr, mac net.HardwareAddr, ok bool) {
	const (
		typeNA    = 136
		hdrLen    = 4 + 4 + 16 // ICMPv6 header, flags, target
		optTarget = 2
	)
	if len(b) < hdrLen || b[0] != typeNA || b[1] != 0 {
		return netip.Addr{}, nil, false
	}
	target = netip.AddrFrom16([16]byte(b[8:24]))
	if target.Is4In6() {
		return netip.Addr{}, nil, false
	}
	for opts := b[hdrLen:]; len(opts) > 0; {
		if len(opts) < 2 || opts[1] == 0 || int(opts[1])*8 > len(opts) {
			return netip.Addr{}, nil, false
		}
		l := int(opts[1]) * 8
		if opts[0] == 1 || opts[0] == optTarget { // source/target link-layer address
			if l != 8 {
				return netip.Addr{}, nil, false
			}
			if opts[0] == optTarget && mac == nil {
				mac = append(net.HardwareAddr(nil), opts[2:8]...)
			}
		}
		opts = opts[l:]
	}
	if mac == nil {
		return netip.Addr{}, nil, false
	}
	return target, mac, true
}
