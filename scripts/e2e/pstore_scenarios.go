package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

const panicLine = "Kernel panic - not syncing: sysrq triggered crash"

// bootAndPanic boots with the test panic and returns the VM and the console
// offset where the second boot starts.
func bootAndPanic(e *Env, args string) (*VM, int, error) {
	return bootAndPanicAs(e, "vm", args)
}

// bootAndPanicAs is bootAndPanic for a guest with its own name (its serial
// log and monitor socket), so that a scenario can boot several.
func bootAndPanicAs(e *Env, name, args string) (*VM, int, error) {
	vm, err := e.Boot(name, BootOpts{Append: args + " lastgasp.test_panic=1"})
	if err != nil {
		return nil, 0, err
	}
	off, err := vm.WaitSerial(bootTimeout, 0, panicLine)
	if err != nil {
		return nil, 0, fmt.Errorf("first boot: %w", err)
	}
	off, err = vm.WaitSerial(bootTimeout, off, "Linux version")
	if err != nil {
		return nil, 0, fmt.Errorf("no reset after the panic: %w", err)
	}
	return vm, off, nil
}

// bootResult is what the agent said about pstore on one boot.
type bootResult struct {
	produced, shipped, kept int
	end                     int // console offset after the handoff line
}

var (
	reRecords = regexp.MustCompile(`lastgasp: pstore: (\d+) records`)
	reShipped = regexp.MustCompile(`summary .* shipped=(\d+) kept=(\d+) `)
)

// waitHandoff waits for this boot's handoff and reads the agent's counts.
func waitHandoff(vm *VM, from int) (bootResult, error) {
	end, err := vm.WaitSerial(bootTimeout, from, "handoff: rescue shell")
	if err != nil {
		return bootResult{}, err
	}
	out := vm.Serial()[from:end]
	var r bootResult
	r.end = end
	if m := reRecords.FindStringSubmatch(out); m != nil {
		r.produced, _ = strconv.Atoi(m[1])
	} else {
		return r, fmt.Errorf("agent printed no pstore line")
	}
	if m := reShipped.FindStringSubmatch(out); m != nil {
		r.shipped, _ = strconv.Atoi(m[1])
		r.kept, _ = strconv.Atoi(m[2])
	}
	return r, nil
}

// pstoreListing asks the guest's rescue shell what is in /sys/fs/pstore.
func pstoreListing(vm *VM, from int) ([]string, int, error) {
	time.Sleep(300 * time.Millisecond)
	if err := vm.Type(`ls /sys/fs/pstore; echo PSTORE""END`); err != nil {
		return nil, from, err
	}
	end, err := vm.WaitSerial(30*time.Second, from, "PSTOREEND")
	if err != nil {
		return nil, from, fmt.Errorf("rescue shell: %w", err)
	}
	out := vm.Serial()[from:end]
	if strings.Contains(strings.ToLower(out), "no such file") {
		return nil, end, fmt.Errorf("pstore not mounted: %q", out)
	}
	var names []string
	for _, f := range strings.Fields(out) {
		if strings.Contains(f, "-ramoops-") && !strings.Contains(f, "/") {
			names = append(names, f)
		}
	}
	return names, end, nil
}

// checkStored verifies every stored record against the digest in its name
// and returns how many there are and whether one holds the panic line.
// isRingRecord reports whether the stored record at p is one of
// lastgasp's ring records (console-lastgasp-N, pmsg-lastgasp-N), which
// every boot after the first ships beside the kernel's pstore records.
func isRingRecord(p string) bool { return strings.Contains(filepath.Base(p), "-lastgasp-") }

func checkStored(c *Collector) (int, bool, error) {
	recs := c.CrashRecords()
	found := false
	for p, d := range recs {
		if strings.HasSuffix(p, ".dmesg.txt") {
			// A multi-part crash put back together by the collector,
			// not a record.
			delete(recs, p)
			continue
		}
		if isRingRecord(p) {
			// lastgasp's ring records (hang_scenarios.go), not the
			// kernel's pstore records these scenarios count.
			delete(recs, p)
			continue
		}
		sum := sha256.Sum256(d)
		ext := filepath.Ext(p)
		if len(ext) < 2 || !strings.HasPrefix(hex.EncodeToString(sum[:]), ext[1:]) {
			return 0, false, fmt.Errorf("stored record %s does not match its digest (partial?)", shortPath(p))
		}
		if _, err := os.Stat(p + ".json"); err != nil {
			return 0, false, fmt.Errorf("stored record %s has no metadata", shortPath(p))
		}
		if strings.Contains(string(d), panicLine) {
			found = true
		}
	}
	return len(recs), found, nil
}

func counts(produced, stored, deleted int) string {
	return fmt.Sprintf("produced=%d stored=%d deleted=%d", produced, stored, deleted)
}

// pstoreCollectorDown: the collector is down during the boot after the
// panic (record kept), up for the next (record shipped, then deleted).
func pstoreCollectorDown(e *Env) (string, error) {
	c, err := e.StartCollector("collector")
	if err != nil {
		return "", err
	}
	vm, off, err := bootAndPanic(e, agentArgs(c))
	if err != nil {
		return "", err
	}
	c.Stop()
	r, err := waitHandoff(vm, off)
	if err != nil {
		return "", fmt.Errorf("boot 2: %w", err)
	}
	if r.produced != 1 || r.shipped != 0 || r.kept != 1 {
		return "", fmt.Errorf("boot 2 (collector down): produced=%d shipped=%d kept=%d, want 1/0/1", r.produced, r.shipped, r.kept)
	}
	left, end, err := pstoreListing(vm, r.end)
	if err != nil {
		return "", err
	}
	if len(left) != 1 {
		return "", fmt.Errorf("boot 2: pstore holds %v, want the record kept", left)
	}
	if err := c.Start(); err != nil {
		return "", err
	}
	if err := vm.Monitor("system_reset"); err != nil {
		return "", err
	}
	off, err = vm.WaitSerial(bootTimeout, end, "Linux version")
	if err != nil {
		return "", err
	}
	r3, err := waitHandoff(vm, off)
	if err != nil {
		return "", fmt.Errorf("boot 3: %w", err)
	}
	stored, hasPanic, err := checkStored(c)
	if err != nil {
		return "", err
	}
	left, _, err = pstoreListing(vm, r3.end)
	if err != nil {
		return "", err
	}
	if r3.produced != 1 || r3.shipped != 1 || stored != 1 || !hasPanic || len(left) != 0 {
		return "", fmt.Errorf("boot 3: produced=%d shipped=%d stored=%d panic-line=%v left=%v", r3.produced, r3.shipped, stored, hasPanic, left)
	}
	return counts(1, stored, 1-len(left)), nil
}

// shipThrough boots with the test panic, uploads going through proxy p to
// collector c, and returns what the second boot did, what is left in its
// pstore, and what the collector stored.
func shipThrough(e *Env, c *Collector, p *Proxy) (r bootResult, left []string, stored int, hasPanic bool, err error) {
	args := fmt.Sprintf("lastgasp.receiver=10.0.2.2:%d lastgasp.upload=http://10.0.2.2:%d", c.UDPPort, p.Port)
	vm, off, err := bootAndPanic(e, args)
	if err != nil {
		return r, nil, 0, false, err
	}
	if r, err = waitHandoff(vm, off); err != nil {
		return r, nil, 0, false, err
	}
	if left, _, err = pstoreListing(vm, r.end); err != nil {
		return r, nil, 0, false, err
	}
	stored, hasPanic, err = checkStored(c)
	return r, left, stored, hasPanic, err
}

// pstoreDuplicate: the collector's first acknowledgement is lost on the way
// back; the agent resends; the collector recognises the record and stores
// it once.
func pstoreDuplicate(e *Env) (string, error) {
	c, err := e.StartCollector("collector")
	if err != nil {
		return "", err
	}
	p, err := e.StartProxy(c.HTTPPort, func(n int) Fault { return Fault{DropResponse: n == 1} })
	if err != nil {
		return "", err
	}
	r, left, stored, hasPanic, err := shipThrough(e, c, p)
	if err != nil {
		return "", err
	}
	uploads, _ := c.Metric("lastgaspd_uploads_total")
	dups, _ := c.Metric("lastgaspd_uploads_duplicate_total")
	if p.Conns() < 2 || uploads < 2 || dups < 1 {
		return "", fmt.Errorf("want a resend recognised as duplicate: connections=%d uploads=%v duplicates=%v", p.Conns(), uploads, dups)
	}
	if r.produced != 1 || stored != 1 || !hasPanic || len(left) != 0 {
		return "", fmt.Errorf("produced=%d stored=%d panic-line=%v left=%v", r.produced, stored, hasPanic, left)
	}
	return counts(r.produced, stored, r.produced-len(left)) + fmt.Sprintf(" uploads=%v duplicates=%v", uploads, dups), nil
}

// pstoreKilledMidUpload: the collector is killed while the record's body is
// on its way; it restarts; nothing partial is visible; the agent's retry
// stores the record whole.
func pstoreKilledMidUpload(e *Env) (string, error) {
	c, err := e.StartCollector("collector")
	if err != nil {
		return "", err
	}
	p, err := e.StartProxy(c.HTTPPort, func(n int) Fault {
		if n != 1 {
			return Fault{}
		}
		return Fault{CutAfter: 8 << 10, OnCut: func() {
			c.Stop()
			if err := c.Start(); err != nil {
				fmt.Fprintln(os.Stderr, "restart collector:", err)
			}
		}}
	})
	if err != nil {
		return "", err
	}
	r, left, stored, hasPanic, err := shipThrough(e, c, p)
	if err != nil {
		return "", err
	}
	if p.Conns() < 2 {
		return "", fmt.Errorf("the agent never retried (connections=%d)", p.Conns())
	}
	if r.produced != 1 || stored != 1 || !hasPanic || len(left) != 0 {
		return "", fmt.Errorf("produced=%d stored=%d panic-line=%v left=%v", r.produced, stored, hasPanic, left)
	}
	return counts(r.produced, stored, r.produced-len(left)), nil
}

// pstoreDiskFull: the collector's disk is full (a 16 KiB tmpfs in the
// collector's own mount namespace): 507, the record is kept; with space
// again the next boot ships it.
func pstoreDiskFull(e *Env) (string, error) {
	// -min-free 0: the disk itself must answer ENOSPC here (the
	// free-space floor, which answers before, has its own unit tests).
	c, err := e.StartCollectorWrapped("collector", []string{"unshare", "-m", "--propagation", "private", "sh", "-c",
		`mkdir -p "$0" && mount -t tmpfs -o size=16k lastgasp-full "$0" && exec "$@"`}, "-min-free", "0")
	if err != nil {
		return "", err
	}
	vm, off, err := bootAndPanic(e, agentArgs(c))
	if err != nil {
		return "", err
	}
	r, err := waitHandoff(vm, off)
	if err != nil {
		return "", err
	}
	full, _ := c.Metric(`lastgaspd_uploads_rejected_total{reason="disk-full"}`)
	if r.produced != 1 || r.kept != 1 || r.shipped != 0 {
		return "", fmt.Errorf("disk full: produced=%d shipped=%d kept=%d, want 1/0/1", r.produced, r.shipped, r.kept)
	}
	if full < 1 {
		return "", fmt.Errorf("disk full: %v uploads rejected with reason disk-full, want at least 1", full)
	}
	if !strings.Contains(vm.Serial()[off:r.end], "507") {
		return "", fmt.Errorf("the agent never reported the collector's 507")
	}
	left, end, err := pstoreListing(vm, r.end)
	if err != nil {
		return "", err
	}
	if len(left) != 1 {
		return "", fmt.Errorf("disk full: pstore holds %v, want the record kept", left)
	}
	// Space again: plain collector on the same ports, reset the guest.
	c.Stop()
	c.Wrap, c.extra = nil, nil
	if err := c.Start(); err != nil {
		return "", err
	}
	if err := vm.Monitor("system_reset"); err != nil {
		return "", err
	}
	if off, err = vm.WaitSerial(bootTimeout, end, "Linux version"); err != nil {
		return "", err
	}
	r3, err := waitHandoff(vm, off)
	if err != nil {
		return "", err
	}
	left, _, err = pstoreListing(vm, r3.end)
	if err != nil {
		return "", err
	}
	stored, hasPanic, err := checkStored(c)
	if err != nil {
		return "", err
	}
	if r3.shipped != 1 || stored != 1 || !hasPanic || len(left) != 0 {
		return "", fmt.Errorf("after space returned: shipped=%d stored=%d panic-line=%v left=%v", r3.shipped, stored, hasPanic, left)
	}
	return counts(1, stored, 1) + fmt.Sprintf(" disk-full-rejections=%v", full), nil
}

// ramoopsUnsafe: the board's ramoops region is not reserved (no memmap= on
// the command line): the agent refuses to arm ramoops over usable RAM, says
// so in one line, and carries on (netconsole still armed).
func ramoopsUnsafe(e *Env) (string, error) {
	c, err := e.StartCollector("collector")
	if err != nil {
		return "", err
	}
	cmdline := regexp.MustCompile(`memmap=\S+`).ReplaceAllString(e.Cmdline, "")
	vm, err := e.Boot("vm", BootOpts{Cmdline: &cmdline, Append: agentArgs(c)})
	if err != nil {
		return "", err
	}
	end, err := vm.WaitSerial(bootTimeout, 0, "handoff: rescue shell")
	if err != nil {
		return "", err
	}
	out := vm.Serial()[:end]
	if !strings.Contains(out, "ramoops: FAILED") || !strings.Contains(out, "overlaps System RAM") {
		return "", fmt.Errorf("no clear refusal on the console")
	}
	if strings.Contains(out, "ramoops: using") || !strings.Contains(out, "ramoops=off") {
		return "", fmt.Errorf("ramoops was armed over usable RAM")
	}
	if err := c.WaitLog(30*time.Second, "lastgasp: netconsole armed"); err != nil {
		return "", err
	}
	return "", nil
}
