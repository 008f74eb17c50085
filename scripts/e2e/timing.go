package main

import (
	"fmt"
	"os"
	"regexp"
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
	var sinceInit []float64
	for i := 0; i < boots; i++ {
		vm, err := e.Boot(fmt.Sprintf("vm%d", i), BootOpts{Append: agentArgs(c, os.Getenv("E2E_APPEND"))}) // e.g. E2E_APPEND=GODEBUG=inittrace=1
		if err != nil {
			return err
		}
		if _, err := vm.WaitSerial(bootTimeout, 0, "handoff: rescue shell"); err != nil {
			return err
		}
		vm.Kill()
		var initTS, prev float64
		fmt.Printf("boot %d:\n", i+1)
		for _, l := range strings.Split(vm.Serial(), "\n") {
			m := kmsgLine.FindStringSubmatch(strings.TrimRight(l, "\r"))
			if m == nil {
				continue
			}
			ts, _ := strconv.ParseFloat(m[1], 64)
			msg := m[2]
			switch {
			case strings.HasPrefix(msg, "Run /init as init process"):
				initTS, prev = ts, ts
				fmt.Printf("  %8.3fs  kernel: Run /init\n", ts)
			case strings.HasPrefix(msg, "lastgasp: ") && initTS > 0:
				fmt.Printf("  %8.3fs  +%4.0fms  %s\n", ts, (ts-prev)*1000, trim(strings.TrimPrefix(msg, "lastgasp: "), 100))
				prev = ts
				if strings.HasPrefix(msg, "lastgasp: netconsole armed") {
					fmt.Printf("  => kernel start to armed: %.3fs, /init to armed: %.0fms\n", ts, (ts-initTS)*1000)
					sinceInit = append(sinceInit, (ts-initTS)*1000)
				}
			}
		}
	}
	if len(sinceInit) > 0 {
		fmt.Printf("/init to netconsole armed over %d boots (ms): %v\n", len(sinceInit), fmtMs(sinceInit))
	}
	return nil
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
