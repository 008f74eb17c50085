package main

import (
	"fmt"
	"strings"
	"time"
)

const (
	bootTimeout = 120 * time.Second // one boot under TCG on a slow CI machine
	gatewayMAC  = "52:55:0a:00:02:02"
)

func agentArgs(c *Collector, extra ...string) string {
	return strings.Join(append([]string{
		fmt.Sprintf("lastgasp.receiver=10.0.2.2:%d", c.UDPPort),
		fmt.Sprintf("lastgasp.upload=http://10.0.2.2:%d", c.HTTPPort),
	}, extra...), " ")
}

// panicRoundtrip: the armed line arrives through netconsole with the
// gateway's MAC; a test panic arrives live; after the reset the second boot
// ships the ramoops record, the collector stores it, and pstore is empty.
func panicRoundtrip(e *Env) (string, error) {
	r, err := panicRoundtripOn(e, panicX86)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("stored=%s cycle=%.1fs", shortPath(r.stored), r.cycle.Seconds()), nil
}

// crashSummary starts the collector's one-line summary of the test
// panic's record; the trace follows it.
const crashSummary = "crash record dmesg-ramoops-0: Kernel panic - not syncing: sysrq triggered crash | "

// panicArch is what panic-roundtrip's assertions differ in from one
// architecture to another: the trace of the crash summary line.
type panicArch struct {
	summary []string // what the collector's log must hold of the line
}

var (
	// panicX86: the trace names sysrq_handle_crash.
	panicX86 = panicArch{summary: []string{crashSummary, "sysrq_handle_crash"}}
	// panicArm64: the kernel prints return addresses, and
	// sysrq_handle_crash ends in its call to panic, so its frame is
	// "before:<next function>+0x0" (crash/signature, pstore/records),
	// then __handle_sysrq.
	panicArm64 = panicArch{summary: []string{crashSummary + "panic+", " < before:", " < __handle_sysrq+"}}
)

// roundtrip is what panicRoundtripOn saw.
type roundtrip struct {
	c      *Collector
	vm     *VM
	stored string        // the stored record's path
	armed  time.Duration // from the boot to the armed line at the collector
	cycle  time.Duration // from the boot to the record stored
}

// panicRoundtripOn is panic-roundtrip's body on e's board (kernel, image
// and machine), with arch's trace: (a) the agent's armed line through
// netconsole with the gateway's MAC, (b) the panic live, (c) after the
// reset the ramoops record shipped, stored and gone from pstore, the
// one-line crash summary on the live receiver and the ship summary.
func panicRoundtripOn(e *Env, arch panicArch) (roundtrip, error) {
	var r roundtrip
	c, err := e.StartCollector("collector")
	if err != nil {
		return r, err
	}
	r.c = c
	t0 := time.Now()
	vm, err := e.Boot("vm", BootOpts{Append: agentArgs(c, "lastgasp.test_panic=1")})
	if err != nil {
		return r, err
	}
	r.vm = vm
	// (a) the agent's armed line, through the kernel's netconsole path.
	if err := c.WaitLog(bootTimeout, "lastgasp: netconsole armed", "mac="+gatewayMAC); err != nil {
		return r, fmt.Errorf("a: %w", err)
	}
	r.armed = time.Since(t0)
	// (b) the panic, live.
	if err := c.WaitLog(bootTimeout, "Kernel panic - not syncing: sysrq triggered crash"); err != nil {
		return r, fmt.Errorf("b: %w", err)
	}
	// (c) second boot: the record is shipped, stored, and removed.
	off, err := vm.WaitSerial(bootTimeout, 0, "test_panic: this boot found crash records")
	if err != nil {
		return r, fmt.Errorf("c: %w", err)
	}
	err = waitFor(30*time.Second, func() (bool, string) {
		for path, data := range c.CrashRecords() {
			if strings.Contains(string(data), "Kernel panic - not syncing: sysrq triggered crash") {
				r.stored = path
				return true, ""
			}
		}
		return false, fmt.Sprintf("no stored crash record with the panic line (have %d records)", len(c.CrashRecords()))
	})
	if err != nil {
		return r, fmt.Errorf("c: %w", err)
	}
	r.cycle = time.Since(t0)
	if off, err = vm.WaitSerial(30*time.Second, off, "handoff: rescue shell"); err != nil {
		return r, fmt.Errorf("c: %w", err)
	}
	// Ask the guest's own shell what is left in pstore.
	time.Sleep(500 * time.Millisecond)
	if err := vm.Type(`ls /sys/fs/pstore; echo PSTORE""END`); err != nil {
		return r, fmt.Errorf("c: console: %w", err)
	}
	end, err := vm.WaitSerial(30*time.Second, off, "PSTOREEND")
	if err != nil {
		return r, fmt.Errorf("c: rescue shell: %w", err)
	}
	listing := vm.Serial()[off:end]
	if strings.Contains(listing, "ramoops") || strings.Contains(listing, "no such file") {
		return r, fmt.Errorf("c: pstore after shipping: %q", listing)
	}
	// The one-line crash summary reached the live receiver too.
	if err := c.WaitLog(10*time.Second, arch.summary...); err != nil {
		return r, fmt.Errorf("c: %w", err)
	}
	// Later than the crash line by a write batch (-write-delay, 1 s) when
	// the batch boundary falls between them.
	if err := c.WaitLog(5*time.Second, "shipped=1 kept=0"); err != nil {
		return r, fmt.Errorf("c: collector log lacks the agent's ship summary: %w", err)
	}
	return r, nil
}

func shortPath(p string) string {
	if i := strings.Index(p, "-store/"); i >= 0 {
		return p[i+len("-store/"):]
	}
	return p
}
