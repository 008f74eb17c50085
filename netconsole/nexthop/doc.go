// Package nexthop works out which MAC address netconsole frames for a receiver
// must carry. The kernel's netconsole does no routing and no ARP: the agent
// looks the receiver up in the routing table (the receiver itself if on-link,
// else the gateway) and resolves that address with raw ARP requests repeated
// under a deadline (RFC 826, via github.com/mdlayher/arp on
// github.com/mdlayher/packet), optionally lingering to report a second host
// that answers for the same address (an address conflict, RFC 5227's concern).
// For IPv6 next hops the same loop sends neighbor solicitations and reads
// neighbor advertisements instead (RFC 4861, via github.com/mdlayher/ndp),
// once the kernel's SLAAC (RFC 4862) has given the NIC a global address.
package nexthop
