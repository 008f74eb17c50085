package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

var reSummaryBoot = regexp.MustCompile(`summary host=(\S+) boot=(\S+) `)

// ringRecord is a stored record of lastgasp's ring (console-lastgasp-N or
// pmsg-lastgasp-N) and its metadata.
type ringRecord struct {
	path string
	data []byte
	meta struct {
		RecordBootID string `json:"record_boot_id"`
		BootID       string `json:"boot_id"`
		Description  string `json:"description"`
	}
}

// findRingRecord returns the stored record whose name starts with prefix.
func findRingRecord(c *Collector, prefix string) (*ringRecord, bool) {
	files, _ := filepath.Glob(filepath.Join(c.Store, "*", "crash", prefix+"*"))
	for _, f := range files {
		if strings.HasSuffix(f, ".json") {
			continue
		}
		r := &ringRecord{path: f}
		var err error
		if r.data, err = os.ReadFile(f); err != nil {
			continue
		}
		m, err := os.ReadFile(f + ".json")
		if err != nil || json.Unmarshal(m, &r.meta) != nil {
			continue
		}
		return r, true
	}
	return nil, false
}

// checkFiledBeside checks that r is hard-linked into the crash directory
// of boot's own directory, beside that boot's kernel.log.
func checkFiledBeside(c *Collector, r *ringRecord, boot string) error {
	host := filepath.Dir(filepath.Dir(r.path))
	link := filepath.Join(host, boot, "crash", filepath.Base(r.path))
	a, err1 := os.Stat(r.path)
	b, err2 := os.Stat(link)
	if err1 != nil || err2 != nil || !os.SameFile(a, b) {
		return fmt.Errorf("%s is not filed beside boot %s's log (%v %v)", shortPath(r.path), boot, err1, err2)
	}
	if _, err := os.Stat(filepath.Join(host, boot, "kernel.log")); err != nil {
		return fmt.Errorf("boot %s has no kernel.log beside its record: %w", boot, err)
	}
	return nil
}

// hangConsoleRecord: the guest is reset from outside with no panic (QEMU's
// system_reset, a warm reset: a watchdog or BMC ending a hang). The next
// boot ships the ring's console record, whose text holds the first boot's
// last agent lines; the collector files it beside the first boot's log.
func hangConsoleRecord(e *Env) (string, error) {
	c, err := e.StartCollector("collector")
	if err != nil {
		return "", err
	}
	vm, err := e.Boot("vm", BootOpts{Append: agentArgs(c)})
	if err != nil {
		return "", err
	}
	end, err := vm.WaitSerial(bootTimeout, 0, "handoff: rescue shell")
	if err != nil {
		return "", fmt.Errorf("boot 1: %w", err)
	}
	m := reSummaryBoot.FindStringSubmatch(vm.Serial()[:end])
	if m == nil {
		return "", fmt.Errorf("boot 1: no summary line")
	}
	boot1 := m[2]
	if err := c.WaitLog(30*time.Second, "handoff: rescue shell"); err != nil {
		return "", fmt.Errorf("boot 1: %w", err)
	}
	// The "hang": the rescue shell sits there; then the reset.
	time.Sleep(time.Second)
	t0 := time.Now()
	if err := vm.Monitor("system_reset"); err != nil {
		return "", err
	}
	var rec *ringRecord
	err = waitFor(bootTimeout, func() (bool, string) {
		var ok bool
		rec, ok = findRingRecord(c, "console-lastgasp-")
		return ok, "no console-lastgasp record stored"
	})
	if err != nil {
		return "", err
	}
	resetToStored := time.Since(t0)
	text := string(rec.data)
	if !strings.Contains(text, "lastgasp: handoff: rescue shell") || !strings.Contains(text, "lastgasp: summary host=") {
		return "", fmt.Errorf("console record lacks the first boot's last agent lines: ...%q", text[max(0, len(text)-300):])
	}
	if rec.meta.RecordBootID != boot1 || rec.meta.BootID == boot1 || rec.meta.Description != "last console lines before an unclean reset" {
		return "", fmt.Errorf("metadata record_boot_id=%q boot_id=%q description=%q, want %s, the next boot's, the description", rec.meta.RecordBootID, rec.meta.BootID, rec.meta.Description, boot1)
	}
	if err := checkFiledBeside(c, rec, boot1); err != nil {
		return "", err
	}
	if _, err := vm.WaitSerial(bootTimeout, end, "previous boot ended without panic: reset (console record shipped)"); err != nil {
		return "", fmt.Errorf("boot 2: %w", err)
	}
	if _, ok := findRingRecord(c, "pmsg-lastgasp-"); ok {
		return "", fmt.Errorf("a pmsg record was shipped though the first boot's agent finished its run")
	}
	return fmt.Sprintf("reset-to-stored=%.1fs record=%d bytes, %d lines, filed beside %s", resetToStored.Seconds(), len(rec.data), strings.Count(text, "\n"), boot1[:8]), nil
}

// pstorePmsg: the kernel panics in the middle of the agent's run
// (lastgasp.test_panic=midrun, after the network stage): the next boot
// ships the agent's stage lines from the ring's pmsg stream, from the boot
// that crashed, beside the dmesg record.
func pstorePmsg(e *Env) (string, error) {
	c, err := e.StartCollector("collector")
	if err != nil {
		return "", err
	}
	vm, err := e.Boot("vm", BootOpts{Append: agentArgs(c, "lastgasp.test_panic=midrun")})
	if err != nil {
		return "", err
	}
	off, err := vm.WaitSerial(bootTimeout, 0, panicLine)
	if err != nil {
		return "", fmt.Errorf("boot 1: %w", err)
	}
	m := reSummaryBoot.FindStringSubmatch(vm.Serial()[:off])
	if m != nil {
		return "", fmt.Errorf("boot 1 reached its summary: the panic was not mid-run")
	}
	mb := regexp.MustCompile(`boot=([0-9a-f-]{36})`).FindStringSubmatch(vm.Serial()[:off])
	if off, err = vm.WaitSerial(bootTimeout, off, "Linux version"); err != nil {
		return "", fmt.Errorf("no reset after the panic: %w", err)
	}
	r, err := waitHandoff(vm, off)
	if err != nil {
		return "", fmt.Errorf("boot 2: %w", err)
	}
	var rec *ringRecord
	err = waitFor(30*time.Second, func() (bool, string) {
		var ok bool
		rec, ok = findRingRecord(c, "pmsg-lastgasp-")
		return ok, "no pmsg-lastgasp record stored"
	})
	if err != nil {
		return "", err
	}
	text := string(rec.data)
	for _, want := range []string{"lastgasp: ring: region", "lastgasp: modules:", "lastgasp: test_panic=midrun: panicking"} {
		if !strings.Contains(text, want) {
			return "", fmt.Errorf("pmsg record lacks %q: %q", want, text)
		}
	}
	if strings.Contains(text, "summary host=") {
		return "", fmt.Errorf("pmsg record holds lines past the panic")
	}
	if mb != nil && rec.meta.RecordBootID != mb[1] {
		return "", fmt.Errorf("pmsg record_boot_id=%q, want the crashed boot %s", rec.meta.RecordBootID, mb[1])
	}
	stored, hasPanic, err := checkStored(c)
	if err != nil {
		return "", err
	}
	if r.produced != 1 || stored != 1 || !hasPanic {
		return "", fmt.Errorf("dmesg record: produced=%d stored=%d panic-line=%v", r.produced, stored, hasPanic)
	}
	return fmt.Sprintf("pmsg record %d bytes, %d agent lines; %s", len(rec.data), strings.Count(text, "\n"), counts(r.produced, stored, r.produced)), nil
}

// hangAfterSwitchRoot: the agent hands off with switch_root; the main
// system (the handoff scenarios' test init) writes its line to /dev/kmsg
// and then "hangs"; the harness resets the guest. The console copier the
// agent left behind kept copying under the main system, so the next boot's
// console record holds the main system's line.
func hangAfterSwitchRoot(e *Env) (string, error) {
	c, err := e.StartCollector("collector")
	if err != nil {
		return "", err
	}
	initBin, err := buildMainInit(e.Dir)
	if err != nil {
		return "", err
	}
	img := filepath.Join(e.Dir, "root.minix")
	if err := writeMinix(img, []minixFile{
		{Path: "/sbin/init", Perm: 0o755, Data: initBin},
		{Path: "/dev"}, {Path: "/proc"}, {Path: "/sys"}, {Path: "/run"},
	}); err != nil {
		return "", err
	}
	vm, err := e.Boot("vm", BootOpts{Initrd: labInitrd(e), Append: agentArgs(c, "lastgasp.handoff=switch_root lastgasp.main_loglevel=7 root=/dev/vda rootfstype=minix ro"),
		NetArgs: diskArgs(img), Timeout: 3 * time.Minute})
	if err != nil {
		return "", err
	}
	end, err := vm.WaitSerial(bootTimeout, 0, mainInitLine+" pid=1 mode=switch_root")
	if err != nil {
		return "", fmt.Errorf("boot 1: %w", err)
	}
	if !strings.Contains(vm.Serial()[:end], "ring: console copier pid") {
		return "", fmt.Errorf("boot 1: no console copier before switch_root")
	}
	time.Sleep(time.Second)
	t0 := time.Now()
	if err := vm.Monitor("system_reset"); err != nil {
		return "", err
	}
	var rec *ringRecord
	err = waitFor(bootTimeout, func() (bool, string) {
		var ok bool
		rec, ok = findRingRecord(c, "console-lastgasp-")
		return ok, "no console-lastgasp record stored"
	})
	if err != nil {
		return "", err
	}
	text := string(rec.data)
	if !strings.Contains(text, mainInitLine+" pid=1 mode=switch_root") {
		return "", fmt.Errorf("console record lacks the main system's line: ...%q", text[max(0, len(text)-400):])
	}
	return fmt.Sprintf("reset-to-stored=%.1fs: the main system's last line was copied by the agent's child after switch_root", time.Since(t0).Seconds()), nil
}
