package agent

import (
	"context"
	"os"
)

// Main runs the agent with the paths of a booted initramfs: every stage,
// then the handoff. As PID 1 it never returns; outside PID 1 (a developer
// running it by hand) it returns after the rescue step.
func Main() {
	if ringCopierMain() {
		return
	}
	cfg := defaultConfig()
	a := &agent{Config: cfg, Log: openKmsg(cfg.Kmsg, os.Stderr)}
	a.Run(context.Background())
}
