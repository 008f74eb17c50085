//go:build !linux

package rescue

import "runtime"

func notHere(_ *Shell, f stdio, args []string) int {
	return failf(f, "%s: not implemented on %s", args[0], runtime.GOOS)
}

var (
	dmesg       = notHere
	mountCmd    = notHere
	umountCmd   = notHere
	syncCmd     = notHere
	rebootCmd   = notHere
	poweroffCmd = notHere
)
