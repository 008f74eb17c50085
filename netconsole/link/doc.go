// Package link brings a NIC up for netconsole: it picks the interface from the
// board's name patterns, sets the link up, obtains a DHCPv4 lease (RFC 2131,
// via github.com/insomniacslk/dhcp's nclient4) and applies the address and the
// default route with netlink. It never writes /etc/resolv.conf or any other
// file: netconsole needs no name resolution.
package link
