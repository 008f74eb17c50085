// Package ipconf holds what a network configuration is, apart from applying
// it: the kernel's ip= argument (ParseIPArg, IPConfig) and the Lease a DHCP
// exchange or a static ip= yields. It has no netlink or socket code, so
// that the board parser (package boards) builds on any OS; package link
// applies a Lease to an interface.
package ipconf
