package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
)

// IPv4 and UDP header lengths (RFC 791 without options, RFC 768).
const (
	ipv4HeaderLen = 20
	udpHeaderLen  = 8
	protoUDP      = 17
)

// errNotLoopback refuses a raw-mode address outside 127.0.0.0/8: forged
// source addresses must never leave this machine.
var errNotLoopback = errors.New("not an IPv4 loopback address (127.0.0.0/8)")

// loopback4 is 127.0.0.0/8, the only network raw mode sends to or from.
var loopback4 = netip.MustParsePrefix("127.0.0.0/8")

// appendUDP4 appends to b an IPv4 datagram (RFC 791, no options, TTL 64,
// don't fragment) from src to dst carrying one UDP datagram (RFC 768) with
// payload, both checksums filled in, and returns the extended slice. It is
// what a raw socket with IP_HDRINCL sends as is (Linux fills in a zero IP
// identification and recomputes the header checksum; it checks nothing
// else).
func appendUDP4(b []byte, src, dst netip.AddrPort, payload []byte) []byte {
	total := ipv4HeaderLen + udpHeaderLen + len(payload)
	start := len(b)
	s4, d4 := src.Addr().As4(), dst.Addr().As4()
	b = append(b,
		0x45, 0, // version 4, IHL 5; TOS 0
		byte(total>>8), byte(total),
		0, 0, // identification: the kernel picks one
		0x40, 0, // DF, fragment offset 0
		64, protoUDP,
		0, 0, // header checksum, below
		s4[0], s4[1], s4[2], s4[3],
		d4[0], d4[1], d4[2], d4[3])
	binary.BigEndian.PutUint16(b[start+10:], ^fold(sum16(0, b[start:start+ipv4HeaderLen])))
	u := len(b)
	ulen := udpHeaderLen + len(payload)
	b = binary.BigEndian.AppendUint16(b, src.Port())
	b = binary.BigEndian.AppendUint16(b, dst.Port())
	b = binary.BigEndian.AppendUint16(b, uint16(ulen))
	b = append(b, 0, 0) // checksum, below
	b = append(b, payload...)
	binary.BigEndian.PutUint16(b[u+6:], udpChecksum(s4, d4, b[u:]))
	return b
}

// udpChecksum is RFC 768's checksum of the UDP datagram seg (header with a
// zero checksum field, then payload) between src and dst: the one's
// complement of the one's complement sum of the pseudo header and seg. A
// computed 0 is sent as 0xffff, since 0 means "no checksum".
func udpChecksum(src, dst [4]byte, seg []byte) uint16 {
	var pseudo [12]byte
	copy(pseudo[0:4], src[:])
	copy(pseudo[4:8], dst[:])
	pseudo[9] = protoUDP
	binary.BigEndian.PutUint16(pseudo[10:], uint16(len(seg)))
	c := ^fold(sum16(sum16(0, pseudo[:]), seg))
	if c == 0 {
		c = 0xffff
	}
	return c
}

// sum16 adds b to sum as big-endian 16-bit words (RFC 1071), an odd last
// byte padded with zero; the carries stay in the upper half for fold.
func sum16(sum uint32, b []byte) uint32 {
	for len(b) >= 2 {
		sum += uint32(b[0])<<8 | uint32(b[1])
		b = b[2:]
		if sum >= 1<<31 {
			sum = sum&0xffff + sum>>16
		}
	}
	if len(b) == 1 {
		sum += uint32(b[0]) << 8
	}
	return sum
}

// fold folds the carries of sum back in: the 16-bit one's complement sum.
func fold(sum uint32) uint16 {
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	return uint16(sum)
}

// sourceAddr returns host i's source address in raw mode: base + i, port
// 6665 (netconsole's default local port), or an error if it leaves
// 127.0.0.0/8.
func sourceAddr(base netip.Addr, i int) (netip.AddrPort, error) {
	b := base.As4()
	v := binary.BigEndian.Uint32(b[:]) + uint32(i)
	binary.BigEndian.PutUint32(b[:], v)
	a := netip.AddrFrom4(b)
	if i < 0 || !loopback4.Contains(base) || !loopback4.Contains(a) || a.Less(base) {
		return netip.AddrPort{}, fmt.Errorf("source address %s + %d: %w", base, i, errNotLoopback)
	}
	return netip.AddrPortFrom(a, netconsolePort), nil
}

// netconsolePort is netconsole's default local (source) UDP port
// (Documentation/networking/netconsole.rst: src-port defaults to 6665).
const netconsolePort = 6665
