package main

import (
	"fmt"
	"net"

	"golang.org/x/net/ipv4"
)

// dialRaw opens a raw IPv4 socket for datagrams with a header of our own
// (IPPROTO_RAW, which implies IP_HDRINCL and receives nothing). It needs
// CAP_NET_RAW.
func dialRaw() (*ipv4.RawConn, error) {
	// Protocol 255 is IPPROTO_RAW: a send-only socket, unlike "ip4:udp",
	// which would also get a copy of every UDP datagram this machine
	// receives, the collector's load included.
	pc, err := net.ListenPacket("ip4:255", "127.0.0.1")
	if err != nil {
		return nil, fmt.Errorf("raw socket: %w", err)
	}
	rc, err := ipv4.NewRawConn(pc)
	if err != nil {
		pc.Close()
		return nil, fmt.Errorf("raw socket: %w", err)
	}
	return rc, nil
}
