// Package link brings a NIC up for netconsole: it picks interfaces from the
// board's name patterns, tries the candidates in parallel (carrier wait,
// bond/bridge members skipped), obtains a DHCPv4 lease (RFC 2131 via
// github.com/insomniacslk/dhcp's nclient4; classless static routes RFC 3442,
// interface MTU and log servers RFC 2132) or takes a static one from the
// kernel's ip= syntax (Documentation/admin-guide/nfs/nfsroot.rst), and applies
// the address, MTU and routes with netlink. It writes no file unless asked to
// (WithResolvConf): netconsole needs no name resolution.
package link
