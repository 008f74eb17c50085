package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lastgasp/lastgasp/boards"
	"github.com/lastgasp/lastgasp/netconsole/wire"
	"github.com/lastgasp/lastgasp/store"
)

// The 6.12 board's artefacts (boards/qemu-x86_64-6.12.board, Debian's
// linux-image-6.12-amd64). Defaults are next to the main board's: the kernel
// dir of that package beside -kernel's, the image beside -initrd's board dir.
var (
	kernel612 = flag.String("kernel-612", "", "vmlinux of linux-image-6.12-amd64 (default: <build>/kernel/linux-image-6.12-amd64/vmlinux next to -kernel's dir)")
	initrd612 = flag.String("initrd-612", "", "image of boards/qemu-x86_64-6.12.board (default: <build>/qemu-x86_64-6.12/initramfs.cpio.xz next to -initrd)")
	board612  = flag.String("board-612", "boards/qemu-x86_64-6.12.board", "6.12 board profile (for kernel.cmdline)")
)

// env612 returns a copy of e that boots the 6.12 kernel and image with the
// 6.12 board's command line. Cleanups registered on the copy must be handed
// back (e.cleanups = ee.cleanups) by the caller.
func env612(e *Env) (*Env, error) {
	ee := *e
	ee.Kernel, ee.Initrd = *kernel612, *initrd612
	if ee.Kernel == "" {
		ee.Kernel = filepath.Join(filepath.Dir(filepath.Dir(e.Kernel)), "linux-image-6.12-amd64", "vmlinux")
	}
	if ee.Initrd == "" {
		ee.Initrd = filepath.Join(filepath.Dir(filepath.Dir(e.Initrd)), "qemu-x86_64-6.12", "initramfs.cpio.xz")
	}
	b, err := boards.Load(*board612)
	if err != nil {
		return nil, err
	}
	ee.Cmdline = b.KernelCmdline
	for _, f := range []string{ee.Kernel, ee.Initrd} {
		if _, err := os.Stat(f); err != nil {
			return nil, fmt.Errorf("6.12: %w (make image BOARD=qemu-x86_64-6.12)", err)
		}
	}
	return &ee, nil
}

// panicRoundtrip612 is panic-roundtrip on Debian's 6.12 kernel.
func panicRoundtrip612(e *Env) (string, error) {
	ee, err := env612(e)
	if err != nil {
		return "", err
	}
	d, err := panicRoundtrip(ee)
	e.cleanups = ee.cleanups
	if err != nil {
		return "", err
	}
	t, terr := bootTimes(filepath.Join(e.Dir, "vm-serial.log"))
	if terr != nil {
		return "", fmt.Errorf("timing: %w", terr)
	}
	return d + " " + t.String(), nil
}

// userdataIdentity: on 6.12 the agent's netconsole target carries userdata
// host= and boot=, and the kernel appends them to every message. The
// collector (started without a state file, so a restart forgets every
// sender) is restarted after the guest's announcement; the guest's next
// line, with no announcement after it, is still filed under the guest's
// host and boot. The datagram itself is read off the wire while the
// collector is down. The same steps on 6.1 (no userdata) are the control:
// there the line is filed under the guest's address and boot-unknown.
func userdataIdentity(e *Env) (string, error) {
	ee, err := env612(e)
	if err != nil {
		return "", err
	}
	r612, err := userdataRun(ee, "612", true)
	e.cleanups = ee.cleanups
	if err != nil {
		return "", fmt.Errorf("6.12: %w", err)
	}
	r61, err := userdataRun(e, "61", false)
	if err != nil {
		return "", fmt.Errorf("6.1 control: %w", err)
	}
	return fmt.Sprintf("6.12: filed=%s wire=[%s] %s; 6.1 control: filed=%s wire=[%s] %s",
		r612.filed, r612.dict, r612.times, r61.filed, r61.dict, r61.times), nil
}

type userdataResult struct {
	filed string // host/boot directory the line after the restart went to
	dict  string // the dictionary of the raw datagram
	times bootTiming
}

// userdataRun boots e's kernel and image once and runs the restart steps.
// With userdata the line after the restart must be filed under the
// announced host and boot; without, under the address and boot-unknown.
func userdataRun(e *Env, tag string, userdata bool) (*userdataResult, error) {
	c, err := e.StartCollector("collector-"+tag, "-state", "none")
	if err != nil {
		return nil, err
	}
	vm, err := e.Boot("vm-"+tag, BootOpts{Append: agentArgs(c)})
	if err != nil {
		return nil, err
	}
	defer vm.Kill()
	if err := c.WaitLog(bootTimeout, "lastgasp: netconsole armed"); err != nil {
		return nil, err
	}
	logs, _ := filepath.Glob(filepath.Join(c.Store, "*", "*", "kernel.log"))
	if len(logs) != 1 {
		return nil, fmt.Errorf("want one host/boot log after the announcement, have %v", logs)
	}
	bootDir := filepath.Dir(logs[0])
	host, boot := filepath.Base(filepath.Dir(bootDir)), filepath.Base(bootDir)
	if !strings.Contains(c.Logs(), "netconsole armed host="+host+" boot="+boot) {
		return nil, fmt.Errorf("store dir %s/%s is not the announced host and boot", host, boot)
	}
	off, err := vm.WaitSerial(bootTimeout, 0, "handoff: rescue shell")
	if err != nil {
		return nil, err
	}
	// The target's userdata group, as configfs shows it in the guest.
	if err := vm.Type(`cat /sys/kernel/config/netconsole/lastgasp0/userdata/host/value; echo UD""END`); err != nil {
		return nil, err
	}
	end, err := vm.WaitSerial(30*time.Second, off, "UDEND")
	if err != nil {
		return nil, err
	}
	out := vm.Serial()[off:end]
	if i := strings.Index(out, `UD""END`); i >= 0 {
		out = out[i+len(`UD""END`):] // what the shell printed, not the command's echo
	}
	if got := strings.Contains(out, host); got != userdata {
		return nil, fmt.Errorf("userdata/host/value in configfs: %q, want it to say %s: %v", out, host, userdata)
	}
	off = end
	// Let the collector write the boot's lines so far, then kill it: with
	// -state none the new one knows nothing of this sender.
	time.Sleep(1500 * time.Millisecond)
	c.Stop()

	// While it is down, read one of the guest's datagrams off the wire.
	res := &userdataResult{}
	raw, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", c.UDPPort))
	if err != nil {
		return nil, err
	}
	wireMark := "lastgasp-e2e-wire-" + tag
	if err := vm.Type("echo " + wireMark + " > /dev/kmsg"); err != nil {
		raw.Close()
		return nil, err
	}
	p, err := readDatagram(raw, wireMark, 30*time.Second)
	raw.Close()
	if err != nil {
		return nil, err
	}
	res.dict = strings.Join(p.Dict, " ")
	hasHost, hasBoot := slices.Contains(p.Dict, "host="+host), slices.Contains(p.Dict, "boot="+boot)
	if userdata && (!hasHost || !hasBoot) {
		return nil, fmt.Errorf("datagram %q lacks host=%s boot=%s", p.Text, host, boot)
	}
	if !userdata && (hasHost || hasBoot) {
		return nil, fmt.Errorf("datagram %q carries userdata on a kernel without it: %v", p.Text, p.Dict)
	}

	// The new collector, same ports and store, no announcement to come.
	if err := c.Start(); err != nil {
		return nil, err
	}
	mark := "lastgasp-e2e-after-restart-" + tag
	if err := vm.Type("echo " + mark + " > /dev/kmsg"); err != nil {
		return nil, err
	}
	if _, err := vm.WaitSerial(30*time.Second, off, mark); err != nil {
		return nil, err
	}
	// With userdata: the announced host and boot. Without: the sender's
	// address (QEMU's user network sends from the host's loopback) and
	// boot-unknown, after the collector's announcement wait.
	ok := func(rel string) bool {
		if userdata {
			return rel == filepath.Join(host, boot)
		}
		return filepath.Base(rel) == store.UnknownBoot && filepath.Dir(rel) != host
	}
	err = waitFor(30*time.Second, func() (bool, string) {
		var where []string
		files, _ := filepath.Glob(filepath.Join(c.Store, "*", "*", "kernel.log"))
		for _, f := range files {
			if d, _ := os.ReadFile(f); strings.Contains(string(d), mark) {
				rel, _ := filepath.Rel(c.Store, filepath.Dir(f))
				where = append(where, rel)
			}
		}
		res.filed = strings.Join(where, ",")
		if len(where) == 1 && ok(where[0]) {
			return true, ""
		}
		return false, fmt.Sprintf("line after the restart filed under %v (userdata %v; announced %s/%s)", where, userdata, host, boot)
	})
	if err != nil {
		return nil, err
	}
	if res.times, err = bootTimes(filepath.Join(e.Dir, "vm-"+tag+"-serial.log")); err != nil {
		return nil, fmt.Errorf("timing: %w", err)
	}
	return res, nil
}

// readDatagram reads datagrams from c until one holds a complete message
// whose text contains s.
func readDatagram(c net.PacketConn, s string, timeout time.Duration) (wire.Packet, error) {
	c.SetReadDeadline(time.Now().Add(timeout))
	buf := make([]byte, 64<<10)
	for {
		n, _, err := c.ReadFrom(buf)
		if err != nil {
			return wire.Packet{}, fmt.Errorf("no datagram with %q: %w", s, err)
		}
		p, err := wire.Parse(buf[:n])
		if err == nil && !p.Fragmented() && strings.Contains(p.Text, s) {
			return p, nil
		}
	}
}

// bootTiming is where one boot's time went, from the kernel's timestamps on
// the console: the agent's modules step (its own figure) and /init to
// "netconsole armed".
type bootTiming struct {
	modulesMs, initToArmedMs float64
}

func (t bootTiming) String() string {
	return fmt.Sprintf("modules=%.0fms init_to_armed=%.0fms", t.modulesMs, t.initToArmedMs)
}

var modulesStep = regexp.MustCompile(`lastgasp: modules: loaded .* \(([0-9.]+)(ms|s)\)`)

// bootTimes reads the first boot on a serial log.
func bootTimes(serialLog string) (bootTiming, error) {
	var t bootTiming
	d, err := os.ReadFile(serialLog)
	if err != nil {
		return t, err
	}
	var initTS float64
	for _, l := range strings.Split(string(d), "\n") {
		m := kmsgLine.FindStringSubmatch(strings.TrimRight(l, "\r"))
		if m == nil {
			continue
		}
		ts, _ := strconv.ParseFloat(m[1], 64)
		switch {
		case strings.HasPrefix(m[2], "Run /init as init process") && initTS == 0:
			initTS = ts
		case t.modulesMs == 0 && modulesStep.MatchString(m[2]):
			mm := modulesStep.FindStringSubmatch(m[2])
			v, _ := strconv.ParseFloat(mm[1], 64)
			if mm[2] == "s" {
				v *= 1000
			}
			t.modulesMs = v
		case strings.HasPrefix(m[2], "lastgasp: netconsole armed") && initTS > 0:
			t.initToArmedMs = (ts - initTS) * 1000
			return t, nil
		}
	}
	return t, fmt.Errorf("%s: no /init or no netconsole armed line", serialLog)
}
