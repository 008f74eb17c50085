package main

import (
	"context"
	"os"
	"runtime/debug"
	"time"

	"github.com/lastgasp/lastgasp/netconsole/receiver"
)

// Memory the collector's bound allows for, beyond -max-memory: per
// identity (about 480 bytes measured, with room for map growth), per active
// sender's heavy state, and for the runtime, HTTP and sinks.
const (
	memPerHost   = 640
	memPerActive = 2 << 10
	memBase      = 96 << 20
)

// memoryLimit is the soft limit the Go runtime's collector works to: what
// lastgaspd's bounds say it may hold for hosts identities, so that garbage
// does not double the resident size on top of it (GOGC alone lets the heap
// grow to twice what is live).
func memoryLimit(maxMemory int64, maxActive int, hosts int64) int64 {
	return maxMemory + int64(maxActive)*memPerActive + hosts*memPerHost + memBase
}

// keepMemoryLimit sets the runtime's soft memory limit from the receiver's
// identity count now and every 10 s, unless GOMEMLIMIT is set.
func keepMemoryLimit(ctx context.Context, rx *receiver.Server, maxMemory int64, maxActive int) {
	if os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	if maxActive <= 0 {
		maxActive = receiver.DefaultMaxActive
	}
	t := time.NewTicker(10 * time.Second)
	defer t.Stop()
	for {
		debug.SetMemoryLimit(memoryLimit(maxMemory, maxActive, rx.Stats().Hosts))
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
