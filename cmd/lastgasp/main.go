// Command lastgasp is the lastgasp agent: the /init of a u-root initramfs. It
// loads the board's modules, brings a NIC up with DHCP, resolves the next hop
// to the log receiver with ARP, arms netconsole and ramoops, ships the crash
// records that survived the last reboot, and then hands off: a rescue shell
// on the console, switch_root or kexec, as the board or lastgasp.handoff=
// says.
//
// It runs as PID 1 (not as u-root's uinit) because only PID 1 can later
// switch_root into the real system, and because starting directly saves the
// ~0.4 s u-root's init takes to start a uinit under TCG.
package main

import (
	"context"
	"os"
)

func main() {
	cfg := DefaultConfig()
	a := &Agent{Config: cfg, Log: OpenKmsg(cfg.Kmsg, os.Stderr)}
	a.Run(context.Background())
	// Run never returns as PID 1; outside PID 1 (a developer running it by
	// hand) it returns after the rescue step.
}
