package main

import (
	"fmt"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

var kmsgLine = regexp.MustCompile(`^\[\s*(\d+\.\d+)\] (.*)$`)

// runTiming boots the image once and prints where the time goes from the
// kernel's start to "netconsole armed", from the kernel's own timestamps.
func runTiming(e *Env, boots int) error {
	c, err := e.StartCollector("collector")
	if err != nil {
		return err
	}
	var sinceInit, own []float64
	for i := 0; i < boots; i++ {
		// E2E_APPEND=GODEBUG=inittrace=1 adds kernel arguments (package
		// inits on the console); E2E_QEMU adds QEMU arguments, e.g.
		// "-icount shift=0,sleep=off": guest time from instructions
		// executed, so that A/B figures do not move with the host's load
		// (but TCG's own translation time no longer shows).
		vm, err := e.Boot(fmt.Sprintf("vm%d", i), BootOpts{Append: agentArgs(c, os.Getenv("E2E_APPEND")), QEMU: strings.Fields(os.Getenv("E2E_QEMU"))})
		if err != nil {
			return err
		}
		if _, err := vm.WaitSerial(bootTimeout, 0, "handoff: rescue shell"); err != nil {
			return err
		}
		vm.Kill()
		fmt.Printf("boot %d:\n", i+1)
		b := breakdown(vm.Serial())
		for _, l := range b.lines {
			fmt.Println(l)
		}
		if b.armed {
			sinceInit = append(sinceInit, b.initToArmed)
			own = append(own, b.own)
		}
	}
	if len(sinceInit) > 0 {
		fmt.Printf("/init to netconsole armed over %d boots (ms): %v; median %.0f\n", len(sinceInit), fmtMs(sinceInit), median(sinceInit))
		fmt.Printf("agent's own steps (board ring mount ipconfig nic receiver, the armed line) (ms): %v; median %.0f\n", fmtMs(own), median(own))
	}
	return nil
}

// ownSteps are the agent's own work between "start" and "netconsole
// armed": parsing, the ring, its decisions. The other steps wait for the
// kernel (modules, address, route, the target) or the network (carrier,
// DHCP, ARP); "start" is exec, the Go runtime and package inits.
var ownSteps = map[string]bool{"board": true, "ring": true, "mount": true, "ipconfig": true, "nic": true, "receiver": true, "netconsole armed": true}

type timingBreakdown struct {
	lines       []string
	armed       bool
	initToArmed float64 // ms
	own         float64 // ms in ownSteps
}

// breakdown reads one boot's serial log: each agent line with the time
// since the previous one (which is the time of the step it reports), up to
// and including "netconsole armed".
func breakdown(serial string) timingBreakdown {
	var b timingBreakdown
	var initTS, prev float64
	for _, l := range strings.Split(serial, "\n") {
		m := kmsgLine.FindStringSubmatch(strings.TrimRight(l, "\r"))
		if m == nil {
			continue
		}
		ts, _ := strconv.ParseFloat(m[1], 64)
		msg := m[2]
		switch {
		case strings.HasPrefix(msg, "Run /init as init process"):
			initTS, prev = ts, ts
			b.lines = append(b.lines, fmt.Sprintf("  %8.3fs  kernel: Run /init", ts))
		case strings.HasPrefix(msg, "lastgasp: ") && initTS > 0 && !b.armed:
			text := strings.TrimPrefix(msg, "lastgasp: ")
			d := (ts - prev) * 1000
			b.lines = append(b.lines, fmt.Sprintf("  %8.3fs  +%4.0fms  %s", ts, d, trim(text, 100)))
			// The modules line ends with each module's own time.
			if _, took, ok := strings.Cut(text, "; took "); ok && strings.HasPrefix(text, "modules") {
				b.lines = append(b.lines, "                      per module (duration@start): "+took)
			}
			prev = ts
			name, _, _ := strings.Cut(text, ":")
			if strings.HasPrefix(text, "netconsole armed") {
				name = "netconsole armed"
			}
			if ownSteps[name] {
				b.own += d
			}
			if name == "netconsole armed" {
				b.armed, b.initToArmed = true, (ts-initTS)*1000
				b.lines = append(b.lines, fmt.Sprintf("  => kernel start to armed: %.3fs, /init to armed: %.0fms, agent's own steps %.0fms", ts, b.initToArmed, b.own))
			}
		}
	}
	return b
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func fmtMs(v []float64) string {
	var s []string
	for _, x := range v {
		s = append(s, fmt.Sprintf("%.0f", x))
	}
	return strings.Join(s, " ")
}

func trim(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
