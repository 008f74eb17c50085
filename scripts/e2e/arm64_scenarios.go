package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/lastgasp/lastgasp/boards"
	"github.com/lastgasp/lastgasp/store"
	"github.com/lastgasp/lastgasp/store/sigindex"
)

// The arm64 board's artefacts (boards/qemu-aarch64.board: QEMU virt under
// TCG, Debian's linux-image-arm64, ramoops from a device-tree node).
// Defaults are next to the main board's: the kernel dir of that package
// beside -kernel's, the image beside -initrd's board dir.
var (
	kernelArm64 = flag.String("kernel-arm64", "", "arm64 Image of linux-image-arm64 (default: <build>/kernel/linux-image-arm64/Image next to -kernel's dir)")
	initrdArm64 = flag.String("initrd-arm64", "", "image of boards/qemu-aarch64.board (default: <build>/qemu-aarch64/initramfs.cpio.xz next to -initrd)")
	boardArm64  = flag.String("board-arm64", "boards/qemu-aarch64.board", "arm64 board profile (kernel.cmdline, arch, the ramoops node)")
)

// envArm64 returns a copy of e that boots the arm64 kernel and image on
// the board's machine (qemu-system-aarch64 -M virt, the device tree with
// the board's ramoops node). Cleanups registered on the copy must be
// handed back (e.cleanups = ee.cleanups) by the caller.
func envArm64(e *Env) (*Env, error) {
	ee := *e
	ee.Kernel, ee.Initrd = *kernelArm64, *initrdArm64
	if ee.Kernel == "" {
		ee.Kernel = filepath.Join(filepath.Dir(filepath.Dir(e.Kernel)), "linux-image-arm64", "Image")
	}
	if ee.Initrd == "" {
		ee.Initrd = filepath.Join(filepath.Dir(filepath.Dir(e.Initrd)), "qemu-aarch64", "initramfs.cpio.xz")
	}
	b, err := boards.Load(*boardArm64)
	if err != nil {
		return nil, err
	}
	if ee.Machine, err = machineFor(b, *boardArm64); err != nil {
		return nil, err
	}
	ee.Cmdline = b.KernelCmdline
	for _, f := range []string{ee.Kernel, ee.Initrd} {
		if _, err := os.Stat(f); err != nil {
			return nil, fmt.Errorf("arm64: %w (make image-arm64)", err)
		}
	}
	return &ee, nil
}

// dtRamoopsLine is the agent's line when ramoops bound to the device
// tree's node at the region the board file (and so the DTB) states.
const dtRamoopsLine = "lastgasp: ramoops: region 0x50000000+0x100000 from the device tree's /reserved-memory/ramoops@50000000"

// arm64PanicRoundtrip is panic-roundtrip on the arm64 board, with its
// trace (panicArm64; after the warm reset, panic=1: PSCI SYSTEM_RESET,
// RAM kept) and its own checks: the region must come from the device
// tree's node, and the collector's signature of the record has arm64's
// frames, "before:<f>" then __handle_sysrq (x86's names
// sysrq_handle_crash).
func arm64PanicRoundtrip(e *Env) (string, error) {
	ee, err := envArm64(e)
	if err != nil {
		return "", err
	}
	defer func() { e.cleanups = ee.cleanups }()
	r, err := panicRoundtripOn(ee, panicArm64)
	if err != nil {
		return "", err
	}
	frames, err := recordFrames(r.c, shortPath(r.stored))
	if err != nil {
		return "", fmt.Errorf("c: %w", err)
	}
	if len(frames) < 2 || !strings.HasPrefix(frames[0], "before:") || frames[1] != "__handle_sysrq" {
		return "", fmt.Errorf("c: the record's signature frames are %q, want before:<f>, __handle_sysrq, ...", frames)
	}
	out := r.vm.Serial()
	for _, want := range []string{"ramoops: using 0x100000@0x50000000", dtRamoopsLine, "ramoops=armed"} {
		if !strings.Contains(out, want) {
			return "", fmt.Errorf("console lacks %q: ramoops did not come from the device tree's node", want)
		}
	}
	t, err := armedTimes([]byte(out))
	if err != nil {
		return "", fmt.Errorf("timing: %w", err)
	}
	return fmt.Sprintf("stored=%s frames=%s armed_wall=%.1fs cycle=%.1fs %s", shortPath(r.stored), strings.Join(frames, ","), r.armed.Seconds(), r.cycle.Seconds(), t), nil
}

// recordFrames returns the signature frames the collector indexed for the
// stored record ref (store/sigindex's journal, one JSON sighting a line).
func recordFrames(c *Collector, ref string) ([]string, error) {
	var frames []string
	err := waitFor(10*time.Second, func() (bool, string) {
		d, _ := os.ReadFile(filepath.Join(c.Store, store.StateDir, sigindex.JournalName))
		for _, l := range strings.Split(string(d), "\n") {
			var s struct {
				Ref       string `json:"ref"`
				Signature struct {
					Frames []string `json:"frames"`
				} `json:"signature"`
			}
			if json.Unmarshal([]byte(l), &s) == nil && s.Ref == ref {
				frames = s.Signature.Frames
				return true, ""
			}
		}
		return false, fmt.Sprintf("no sighting of %s in the signature journal", ref)
	})
	return frames, err
}

// arm64HangConsoleRecord is hang-console-record on the arm64 board: a
// warm reset from QEMU's monitor (system_reset; on virt, as on the PC,
// guest RAM and so the ring survive it) and the next boot ships the ring's
// console record, filed beside the first boot's log.
func arm64HangConsoleRecord(e *Env) (string, error) {
	ee, err := envArm64(e)
	if err != nil {
		return "", err
	}
	d, err := hangConsoleRecord(ee)
	e.cleanups = ee.cleanups
	return d, err
}

// arm64DTNoRamoops: the arm64 board booted with QEMU's own device tree,
// which has no ramoops node. The agent says so in one line, on the console
// and (replayed) through netconsole, loads no ramoops, and netconsole is
// armed all the same.
func arm64DTNoRamoops(e *Env) (string, error) {
	ee, err := envArm64(e)
	if err != nil {
		return "", err
	}
	defer func() { e.cleanups = ee.cleanups }()
	c, err := ee.StartCollector("collector")
	if err != nil {
		return "", err
	}
	vm, err := ee.Boot("vm", BootOpts{Append: agentArgs(c), PlainDT: true})
	if err != nil {
		return "", err
	}
	end, err := vm.WaitSerial(bootTimeout, 0, "handoff: rescue shell")
	if err != nil {
		return "", err
	}
	// Documentation/devicetree/bindings/reserved-memory/ramoops.yaml: the
	// node the board needs; the line must name it and the board's source.
	refusal := `lastgasp: ramoops: FAILED after `
	cause := `refusing to arm: ramoops.source = devicetree: no /reserved-memory: no /reserved-memory node with compatible = "ramoops" in the device tree`
	if err := c.WaitLog(30*time.Second, "lastgasp: netconsole armed", "mac="+gatewayMAC, cause); err != nil {
		return "", err
	}
	out := vm.Serial()[:end]
	for _, want := range []string{refusal, cause, "ramoops=off"} {
		if !strings.Contains(out, want) {
			return "", fmt.Errorf("console lacks %q", want)
		}
	}
	if strings.Contains(out, "ramoops: using ") {
		return "", fmt.Errorf("ramoops bound a region though the device tree has no node")
	}
	line := out[strings.Index(out, cause):]
	line, _, _ = strings.Cut(line, "\n")
	return fmt.Sprintf("netconsole armed; %q", strings.TrimSpace(line)), nil
}

var reArmedTS = regexp.MustCompile(`(?m)^\[\s*(\d+\.\d+)\] lastgasp: netconsole armed .* since_init=(\S+)`)

// armedTimes reads the first boot's kernel-start-to-armed (the armed
// line's kernel timestamp) and /init-to-armed (the agent's since_init=)
// off a console log.
func armedTimes(serial []byte) (string, error) {
	m := reArmedTS.FindSubmatch(serial)
	if m == nil {
		return "", fmt.Errorf("no netconsole armed line on the console")
	}
	ts, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("kernel_to_armed=%.2fs init_to_armed=%s", ts, strings.TrimRight(string(m[2]), "\r")), nil
}
