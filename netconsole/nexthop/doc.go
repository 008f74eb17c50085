// Package nexthop works out which MAC address netconsole frames for a receiver
// must carry. The kernel's netconsole does no routing and no ARP: the agent
// looks the receiver up in the routing table (the receiver itself if on-link,
// else the gateway) and resolves that address with raw ARP requests repeated
// under a deadline (RFC 826, via github.com/mdlayher/arp on
// github.com/mdlayher/packet), optionally lingering to report a second host
// that answers for the same address (an address conflict, RFC 5227's concern).
package nexthop
