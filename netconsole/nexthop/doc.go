// Package nexthop works out which MAC address netconsole frames for a receiver
// must carry. The kernel's netconsole does no routing and no ARP: the agent
// looks the receiver up in the routing table (the receiver itself if on-link,
// else the gateway) and resolves that address with a raw ARP request
// (RFC 826, via github.com/mdlayher/arp on github.com/mdlayher/packet).
package nexthop
