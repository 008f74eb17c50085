// Package boards parses board profiles: one small text file per board that
// says which Debian kernel package to boot, which kernel modules go into the
// image, how to pick the NIC, where the receiver is, how ramoops is laid out
// and how the console is set up.
//
// # File format
//
// A profile is UTF-8 text. Each non-blank line is
//
//	key = value
//
// and '#' starts a comment that runs to the end of the line. Keys are case
// sensitive. List keys (modules, modules.late, modules.ondemand, nic, receiver, build.tags) take space-separated values and
// may be repeated; each repetition appends. Any other key may appear once.
// Unknown keys are an error, so a typo never goes unnoticed.
//
//	name            board name (required; [a-z0-9._-])
//	arch            Go architecture of the image: amd64 or arm64 (required)
//	kernel.package  Debian kernel package (required)
//	kernel.cmdline  arguments the board's kernel must be booted with
//	modules         kernel modules loaded first, before the network comes up: the NIC
//	                drivers, configfs and netconsole (names as in modules.dep, '-' or '_')
//	modules.late    kernel modules loaded once netconsole is armed (ramoops, storage):
//	                under one emulated CPU, loading them early delays the network
//	modules.ondemand  kernel modules packed into the image but loaded only when a
//	                feature needs them: 8021q (802.1Q VLANs) when vlan= is set, on
//	                the board or on the kernel command line (lastgasp.vlan=)
//	vlan            802.1Q VLAN ID (1-4094) to tag the agent's traffic with: the
//	                agent creates <nic>.<id> on each candidate NIC and runs DHCP
//	                and netconsole there; 0 or off (default) for untagged. Setting
//	                it adds 8021q to the image
//	nic             NIC rules in order of preference: a glob on the interface name
//	                ("eth*"), "mac:<glob>" on its MAC ("mac:52:54:00:*"), or
//	                "driver:<glob>" on its driver ("driver:e1000")
//	receiver        netconsole receiver host:port (port defaults to 6666)
//	receiver.dhcp_option  DHCPv4 option that names receivers when neither the
//	                command line nor the board does: 7 (RFC 2132 log server,
//	                default) or a site-specific code 128-254 holding IPv4
//	                addresses, for networks whose option 7 points at syslog
//	                servers; lastgasp.dhcp_option= overrides
//	receiver.dhcp6_option  DHCPv6 option code (149-65535, i.e. not IANA-assigned; or off) holding IPv6 receivers
//	                (16-byte addresses each); DHCPv6 has no standard log server
//	                option, so a site picks one. Unset: DHCPv6 is not asked
//	upload          crash-record upload base URL: http:// (plain, unauthenticated:
//	                labs and QEMU; logged INSECURE) or https:// (not with
//	                build.tags = lastgasp_notls);
//	                several, comma-separated, are tried in order until one
//	                acknowledges (failover between collectors)
//	upload.ca       path inside the image of the collector's CA (PEM), pinned for
//	                https:// (default /etc/lastgasp/ca.pem); the client certificate
//	                and key are read per host from /etc/lastgasp/client.pem and
//	                client.key (README, "Credentials")
//	upload.ca_file  file, relative to the board file, baked into the image at
//	                upload.ca; without it the CA comes at boot with the credential
//	build.tags      Go build tags for the image's binaries (list): lastgasp_notls
//	                leaves TLS out of the agent (about 0.53 MB of xz; lab images)
//	ramoops.mem_address, ramoops.mem_size, ramoops.record_size,
//	ramoops.console_size, ramoops.ftrace_size, ramoops.pmsg_size, ramoops.ecc
//	                ramoops module parameters (numbers, 0x... allowed)
//	ramoops.source  params (default: the region above as module parameters) or
//	                devicetree: the DT's /reserved-memory node with compatible =
//	                "ramoops" is the region, ramoops loads without parameters; the
//	                ramoops.* above, if given, are what the node must say
//	                (scripts/dtb-ramoops.sh writes them into a DTB)
//	console.loglevel  console loglevel once netconsole is armed (0-8)
//	dhcp.timeout, arp.timeout, upload.timeout  Go durations ("10s")
//	console.main_loglevel  console loglevel handed to the main system by switch_root
//	                and kexec (default 5: warnings, oopses and panics go out, boot noise not)
//	console.ignore_loglevel  1: every message reaches the consoles whatever its level
//	handoff         rescue (default), switch_root or kexec: what runs after the agent
//	kexec.kernel, kexec.initrd  absolute paths of the main kernel (bzImage) and initrd,
//	                inside the root= file system (or the initramfs without root=)
//	kexec.cmdline   extra arguments for the main kernel; the agent adds the board's
//	                kernel.cmdline, ramoops.*=, loglevel= and netconsole= itself
//	ip              static network configuration in the kernel's ip= syntax
//	                (client:server:gw:netmask:hostname:device:off); ip= on the
//	                kernel command line wins
//	host            fixed host name (default: derived from the NIC's MAC)
//	efi.max_share   share of the EFI variable store (1%-100%) that pstore's
//	                efi_pstore records may take, room for the next crash included;
//	                the agent deletes the oldest beyond it (lastgasp.efi_max_share=)
//	efi.store_size  the firmware's variable store in bytes, used when the
//	                kernel's efivarfs statfs does not report it (QueryVariableInfo)
package boards
