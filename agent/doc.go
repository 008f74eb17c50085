// Package agent is the lastgasp agent: what runs as /init of a u-root
// initramfs before the main system. It loads the board's modules, brings a
// NIC up with DHCP (or a static address, IPv6, a VLAN), resolves the next
// hop to the log receiver with ARP, arms netconsole and ramoops, ships the
// crash records that survived the last reboot, and then hands off: a rescue
// shell on the console, switch_root or kexec, as the board or
// lastgasp.handoff= says. Each stage logs one line, with its outcome and
// duration, to /dev/kmsg.
//
// Main is the whole interface; cmd/lastgasp is the command that calls it.
// The agent runs as PID 1 (not as u-root's uinit) because only PID 1 can
// later switch_root into the real system, and because starting directly
// saves the ~0.4 s u-root's init takes to start a uinit under TCG.
package agent
