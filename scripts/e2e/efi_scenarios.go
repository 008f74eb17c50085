package main

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"

	"github.com/lastgasp/lastgasp/boards"
	"github.com/lastgasp/lastgasp/pstore/efivars"
)

// The EFI board's artefacts. Defaults are next to the main board's: the
// bzImage beside -kernel (scripts/fetch-kernel.sh keeps both) and the image
// built from boards/qemu-x86_64-efi.board beside -initrd's board directory.
var (
	efiInitrd = flag.String("initrd-efi", "", "image of boards/qemu-x86_64-efi.board (default: <build>/qemu-x86_64-efi/initramfs.cpio.xz next to -initrd)")
	efiKernel = flag.String("kernel-efi", "", "bzImage for the EFI board: OVMF starts its EFI stub (default: bzImage next to -kernel)")
	efiBoard  = flag.String("board-efi", "boards/qemu-x86_64-efi.board", "EFI board profile (for kernel.cmdline)")
	ovmfCode  = flag.String("ovmf-code", "/usr/share/OVMF/OVMF_CODE_4M.fd", "OVMF firmware code (read-only pflash unit 0)")
	ovmfVars  = flag.String("ovmf-vars", "/usr/share/OVMF/OVMF_VARS_4M.fd", "OVMF variable store template (copied per scenario to pflash unit 1)")
)

// efiVM describes how the EFI scenarios boot: OVMF on pflash, the bzImage,
// the EFI board's image and command line, and this scenario's VARS file.
type efiVM struct {
	kernel, initrd, cmdline, vars string
}

// newEFI copies the OVMF variable store template into the scenario's
// directory: every QEMU process of the scenario boots with that one file,
// which is what survives a power cycle.
func newEFI(e *Env) (*efiVM, error) {
	x := &efiVM{kernel: *efiKernel, initrd: *efiInitrd, vars: filepath.Join(e.Dir, "OVMF_VARS.fd")}
	if x.kernel == "" {
		x.kernel = filepath.Join(filepath.Dir(e.Kernel), "bzImage")
	}
	if x.initrd == "" {
		x.initrd = filepath.Join(filepath.Dir(filepath.Dir(e.Initrd)), "qemu-x86_64-efi", "initramfs.cpio.xz")
	}
	b, err := boards.Load(*efiBoard)
	if err != nil {
		return nil, err
	}
	x.cmdline = b.KernelCmdline
	for _, f := range []string{x.kernel, x.initrd, *ovmfCode, *ovmfVars} {
		if _, err := os.Stat(f); err != nil {
			return nil, fmt.Errorf("efi: %w (make image-efi; apt-get install ovmf)", err)
		}
	}
	return x, copyFile(*ovmfVars, x.vars)
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// boot starts one QEMU process with the firmware and the scenario's VARS
// file. noReboot makes QEMU exit at the guest's reset (after panic=1's
// second): the next boot is then a new process, RAM gone, a cold boot.
func (x *efiVM) boot(e *Env, name string, noReboot bool, o BootOpts) (*VM, error) {
	o.QEMU = append([]string{
		"-drive", "if=pflash,format=raw,unit=0,readonly=on,file=" + *ovmfCode,
		"-drive", "if=pflash,format=raw,unit=1,file=" + x.vars,
	}, o.QEMU...)
	if noReboot {
		o.QEMU = append(o.QEMU, "-no-reboot")
	}
	if o.Initrd == "" {
		o.Initrd = x.initrd
	}
	if o.Cmdline == nil {
		o.Cmdline = &x.cmdline
	}
	// Boot takes the kernel from the Env: a copy with the bzImage, whose
	// cleanups (the QEMU process) are handed back.
	ee := *e
	ee.Kernel = x.kernel
	vm, err := ee.Boot(name, o)
	e.cleanups = ee.cleanups
	return vm, err
}

// exited waits for the QEMU process to end by itself.
func (vm *VM) exited(timeout time.Duration) error {
	select {
	case <-vm.done:
		return nil
	case <-time.After(timeout):
		return fmt.Errorf("qemu still running after %v", timeout)
	}
}

// liveDumps reads the VARS file from the host side and returns pstore's
// variables that are not deleted (deleted ones keep their bytes in the
// store until the firmware reclaims them, so a plain search for the
// UCS-2 names would still find them).
func (x *efiVM) liveDumps() ([]efivars.StoreVar, efivars.Store, error) {
	b, err := os.ReadFile(x.vars)
	if err != nil {
		return nil, efivars.Store{}, err
	}
	s, err := efivars.ParseStore(b)
	if err != nil {
		return nil, s, err
	}
	var out []efivars.StoreVar
	for _, v := range s.Live() {
		if _, err := efivars.ParseDumpName(v.Name); err == nil && v.GUID == efivars.CrashGUID {
			out = append(out, v)
		}
	}
	return out, s, nil
}

func chargeOf(vs []efivars.StoreVar) (n int64) {
	for _, v := range vs {
		n += v.Charge
	}
	return n
}

// guestList runs a command in the guest's rescue shell and returns what it
// printed.
func guestList(vm *VM, from int, cmd string) (string, int, error) {
	time.Sleep(300 * time.Millisecond)
	if err := vm.Type(cmd + `; echo LIST""END`); err != nil {
		return "", from, err
	}
	end, err := vm.WaitSerial(30*time.Second, from, "LISTEND")
	if err != nil {
		return "", from, fmt.Errorf("rescue shell: %w", err)
	}
	return vm.Serial()[from:end], end, nil
}

var reEFIRecord = regexp.MustCompile(`dmesg-efi-\d+`)

// pstoreEFIColdboot: a panic is written to EFI variables; the QEMU process
// exits; a new one starts with the same VARS file (RAM gone): the agent
// ships every dmesg-efi-* record, the collector stores it, the agent
// deletes it, and the VARS file holds no live pstore variable.
func pstoreEFIColdboot(e *Env) (string, error) {
	x, err := newEFI(e)
	if err != nil {
		return "", err
	}
	c, err := e.StartCollector("collector")
	if err != nil {
		return "", err
	}
	t0 := time.Now()
	vm, err := x.boot(e, "vm1", true, BootOpts{Append: agentArgs(c, "lastgasp.test_panic=1")})
	if err != nil {
		return "", err
	}
	if _, err := vm.WaitSerial(bootTimeout, 0, "lastgasp: summary"); err != nil {
		return "", fmt.Errorf("boot 1: %w", err)
	}
	bootToSummary := time.Since(t0)
	if _, err := vm.WaitSerial(bootTimeout, 0, panicLine); err != nil {
		return "", fmt.Errorf("boot 1: %w", err)
	}
	tPanic := time.Now()
	if err := vm.exited(60 * time.Second); err != nil {
		return "", fmt.Errorf("boot 1 after the panic (-no-reboot): %w", err)
	}
	dumps, st, err := x.liveDumps()
	if err != nil {
		return "", fmt.Errorf("VARS after the panic: %w", err)
	}
	copyFile(x.vars, filepath.Join(e.Dir, "OVMF_VARS-after-panic.fd")) // kept for a look
	if len(dumps) == 0 {
		return "", fmt.Errorf("VARS after the panic: no live dump-type variable (store: %d variables)", len(st.Vars))
	}
	var minSize, maxSize int64 = 1 << 30, 0
	for _, d := range dumps {
		minSize, maxSize = min(minSize, d.DataSize), max(maxSize, d.DataSize)
	}

	// The cold boot: a new process, the same VARS file.
	tCold := time.Now()
	vm2, err := x.boot(e, "vm2", true, BootOpts{Append: agentArgs(c, "lastgasp.test_panic=1")})
	if err != nil {
		return "", err
	}
	r, err := waitHandoff(vm2, 0)
	if err != nil {
		return "", fmt.Errorf("boot 2: %w", err)
	}
	var stored int
	if err := waitFor(30*time.Second, func() (bool, string) {
		stored = 0
		for p := range c.CrashRecords() {
			if reEFIRecord.MatchString(filepath.Base(p)) {
				stored++
			}
		}
		return stored >= len(dumps), fmt.Sprintf("collector stored %d dmesg-efi records, want %d", stored, len(dumps))
	}); err != nil {
		return "", err
	}
	roundTrip := time.Since(tPanic)
	coldToShipped := time.Since(tCold)
	n, hasPanic, err := checkStored(c)
	if err != nil {
		return "", err
	}
	if r.produced != len(dumps) || r.shipped != len(dumps) || r.kept != 0 {
		return "", fmt.Errorf("boot 2: produced=%d shipped=%d kept=%d, want %d/%d/0", r.produced, r.shipped, r.kept, len(dumps), len(dumps))
	}
	out, _, err := guestList(vm2, r.end, `ls /sys/fs/pstore; ls /sys/firmware/efi/efivars`)
	if err != nil {
		return "", err
	}
	// The agent mounted efivarfs afresh after shipping (its listing is
	// built at mount time), so the guest's own view counts too.
	if reEFIRecord.MatchString(out) || strings.Contains(out, "dump-type") {
		return "", fmt.Errorf("boot 2: pstore or efivarfs still lists records: %q", out)
	}
	if !strings.Contains(out, "BootOrder-8be4df61") {
		return "", fmt.Errorf("boot 2: efivarfs not mounted (no BootOrder): %q", out)
	}
	// The assembled crash holds the panic line (parts are split text).
	assembled := false
	for p, d := range c.CrashRecords() {
		if strings.HasSuffix(p, ".dmesg.txt") && strings.Contains(string(d), panicLine) {
			assembled = true
		}
	}
	// "quit" flushes the pflash drive and ends QEMU (the monitor closes
	// before it answers).
	vm2.Monitor("quit")
	if err := vm2.exited(30 * time.Second); err != nil {
		return "", err
	}
	left, _, err := x.liveDumps()
	if err != nil {
		return "", fmt.Errorf("VARS after shipping: %w", err)
	}
	if len(left) != 0 {
		return "", fmt.Errorf("VARS after shipping: %d live pstore variables left", len(left))
	}
	return counts(len(dumps), n, len(dumps)-len(left)) + fmt.Sprintf(" panic-line=%v assembled=%v vars=%d of %d-%dB charged=%dB boot-to-summary=%.1fs cold-boot-roundtrip=%.1fs (new process to stored %.1fs)",
		hasPanic, assembled, len(dumps), minSize, maxSize, chargeOf(dumps), bootToSummary.Seconds(), roundTrip.Seconds(), coldToShipped.Seconds()), nil
}

// panicFromShell panics a guest that found records (lastgasp.test_panic
// panics only a boot that found none) through its rescue shell.
func panicFromShell(vm *VM, from int) error {
	time.Sleep(300 * time.Millisecond)
	if err := vm.Type("echo c > /proc/sysrq-trigger"); err != nil {
		return err
	}
	_, err := vm.WaitSerial(bootTimeout, from, panicLine)
	return err
}

var reEFIDropped = regexp.MustCompile(`efi_dropped=(\d+)`)

// pstoreEFINVRAMHygiene: uploads keep failing (nothing listens on the
// upload port) across three panics, each followed by a cold boot. After
// every panic the VARS file is read from the host: pstore's variables never
// take more than the share; the boot that found two crashes deleted the
// oldest parts, kept the newest crash whole, logged what it dropped (also
// through netconsole) and counted it in the summary line.
//
// The share is 11%: of the 262,044 bytes the kernel reports for the store
// (efivarfs statfs, QueryVariableInfo) that is 28,824; less the room kept
// for the next crash (14,351 for kmsg_bytes 10240) it leaves 14,473 for
// records of earlier boots: one crash of 14 parts (about 12.5 KB), not two.
func pstoreEFINVRAMHygiene(e *Env) (string, error) {
	const share, kmsg, storeSize = 11, 10240, 262044
	x, err := newEFI(e)
	if err != nil {
		return "", err
	}
	c, err := e.StartCollector("collector")
	if err != nil {
		return "", err
	}
	down := freePort("tcp") // the collector's upload side is down
	args := fmt.Sprintf("lastgasp.receiver=10.0.2.2:%d lastgasp.upload=http://10.0.2.2:%d lastgasp.efi_max_share=%d%%",
		c.UDPPort, down, share)
	pol := efivars.Policy{StoreSize: storeSize, Share: share, NextCrash: efivars.NextCrash(kmsg, efivars.RecordSize)}
	t0 := time.Now()
	var crashes [][]string // live pstore variable names after each panic
	var maxCharge int64
	afterPanic := func(vm *VM, n int) error {
		if err := vm.exited(60 * time.Second); err != nil {
			return fmt.Errorf("panic %d: %w", n, err)
		}
		live, _, err := x.liveDumps()
		if err != nil {
			return fmt.Errorf("VARS after panic %d: %w", n, err)
		}
		var names []string
		for _, v := range live {
			names = append(names, v.Name)
		}
		crashes = append(crashes, names)
		ch := chargeOf(live)
		maxCharge = max(maxCharge, ch)
		fmt.Fprintf(os.Stderr, "efi: after panic %d: %d pstore variables, %d bytes (limit %d)\n", n, len(live), ch, pol.Limit())
		if ch > pol.Limit() {
			return fmt.Errorf("after panic %d: pstore's variables take %d bytes, over the %d%% share (%d)", n, ch, share, pol.Limit())
		}
		return nil
	}

	// Boot 1: no records; the test panic writes crash A.
	vm, err := x.boot(e, "vm1", true, BootOpts{Append: args + " lastgasp.test_panic=1"})
	if err != nil {
		return "", err
	}
	if _, err := vm.WaitSerial(bootTimeout, 0, panicLine); err != nil {
		return "", fmt.Errorf("boot 1: %w", err)
	}
	if err := afterPanic(vm, 1); err != nil {
		return "", err
	}
	// Boots 2 and 3: records found, uploads fail, hygiene, then a panic
	// from the shell writes crash B, then C.
	var dropped int
	var dropLine string
	for boot := 2; boot <= 3; boot++ {
		vm, err := x.boot(e, fmt.Sprintf("vm%d", boot), true, BootOpts{Append: args})
		if err != nil {
			return "", err
		}
		r, err := waitHandoff(vm, 0)
		if err != nil {
			return "", fmt.Errorf("boot %d: %w", boot, err)
		}
		out := vm.Serial()[:r.end]
		if r.shipped != 0 || r.kept != r.produced || r.produced != len(crashes[len(crashes)-1]) {
			return "", fmt.Errorf("boot %d: produced=%d shipped=%d kept=%d, want all %d kept (uploads down)", boot, r.produced, r.shipped, r.kept, len(crashes[len(crashes)-1]))
		}
		m := reEFIDropped.FindStringSubmatch(out)
		if m == nil {
			return "", fmt.Errorf("boot %d: summary line lacks efi_dropped=", boot)
		}
		n, _ := strconv.Atoi(m[1])
		if boot == 2 && n != 0 {
			return "", fmt.Errorf("boot 2: one crash within the share, but efi_dropped=%d", n)
		}
		if boot == 3 {
			dropped = n
			if i := strings.Index(out, "lastgasp: efi: dropped "); i >= 0 {
				dropLine = out[i:]
				dropLine = dropLine[:strings.IndexByte(dropLine, '\n')]
			}
		}
		if err := panicFromShell(vm, r.end); err != nil {
			return "", fmt.Errorf("boot %d: %w", boot, err)
		}
		if err := afterPanic(vm, boot); err != nil {
			return "", err
		}
	}
	// Crash A (after panic 1), B (new after panic 2), C (new after 3).
	a := crashes[0]
	b := minus(crashes[1], a)
	cNew := minus(crashes[2], crashes[1])
	left := crashes[2]
	if dropped == 0 || dropLine == "" {
		return "", fmt.Errorf("boot 3: two crashes over the share, nothing dropped (efi_dropped=%d)", dropped)
	}
	// The newest crash before boot 3 (B) is kept whole; what went is A's.
	if got := minus(b, left); len(got) != 0 {
		return "", fmt.Errorf("boot 3 dropped %v of the newest crash", got)
	}
	gone := minus(a, left)
	if len(gone) != dropped {
		return "", fmt.Errorf("boot 3 said efi_dropped=%d, but %d of crash A's variables are gone from VARS", dropped, len(gone))
	}
	if err := c.WaitLog(10*time.Second, "lastgasp: efi: dropped "); err != nil {
		return "", fmt.Errorf("the drop line never reached netconsole: %w", err)
	}
	return fmt.Sprintf("crashes=%d/%d/%d vars, dropped=%d (all crash A's oldest) kept-newest=%v max-charged=%dB limit=%dB (%d%% of %d) total=%.1fs",
		len(a), len(b), len(cNew), dropped, len(minus(b, left)) == 0, maxCharge, pol.Limit(), share, storeSize, time.Since(t0).Seconds()), nil
}

// minus returns the names in a that are not in b.
func minus(a, b []string) []string {
	in := map[string]bool{}
	for _, s := range b {
		in[s] = true
	}
	var out []string
	for _, s := range a {
		if !in[s] {
			out = append(out, s)
		}
	}
	return out
}

// fillGUID is the vendor GUID of the harness's filler variables (made up).
const fillGUID = "4c617374-6761-7370-8066-696c6c657273"

// fillStore rewrites a VARS file as the firmware's reclaim would (live
// variables only, copied byte for byte) and appends filler variables of
// another vendor until about leave bytes of variable space remain. It
// returns the fillers' names and their data, to check later that nothing
// of theirs changed.
func fillStore(path string, leave int64) (map[string][]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	s, err := efivars.ParseStore(b)
	if err != nil {
		return nil, err
	}
	hl := int(binary.LittleEndian.Uint16(b[0x30:]))
	start, end := hl+28, hl+int(s.Size)
	out := append([]byte(nil), b[:start]...)
	for _, v := range s.Live() {
		out = append(out, b[v.Offset:v.Offset+int(v.Charge)]...)
	}
	guid := guidBytes(fillGUID)
	fill := map[string][]byte{}
	const dataSize = 4000
	for i := 0; ; i++ {
		name := fmt.Sprintf("LastgaspFill%02d", i)
		charge := int(efivars.Charge(len(name), dataSize))
		if int64(end-len(out)-charge) < leave {
			break
		}
		data := bytes.Repeat([]byte{byte(i)}, dataSize)
		fill[name] = data
		h := make([]byte, efivars.HeaderSize)
		binary.LittleEndian.PutUint16(h[0:], 0x55aa)
		h[2] = 0x3f                             // VAR_ADDED
		binary.LittleEndian.PutUint32(h[4:], 7) // non-volatile, boot and runtime access
		u := utf16.Encode([]rune(name + "\x00"))
		binary.LittleEndian.PutUint32(h[36:], uint32(2*len(u)))
		binary.LittleEndian.PutUint32(h[40:], dataSize)
		copy(h[44:], guid)
		out = append(out, h...)
		for _, c := range u {
			out = binary.LittleEndian.AppendUint16(out, c)
		}
		out = append(out, data...)
		for (len(out)-start)%4 != 0 {
			out = append(out, 0xff)
		}
	}
	for len(out) < end {
		out = append(out, 0xff)
	}
	out = append(out, b[end:]...)
	return fill, os.WriteFile(path, out, 0o644)
}

// guidBytes lays out a GUID string as EFI_GUID in memory.
func guidBytes(g string) []byte {
	h, _ := hex.DecodeString(strings.ReplaceAll(g, "-", ""))
	out := make([]byte, 16)
	binary.LittleEndian.PutUint32(out, binary.BigEndian.Uint32(h[0:]))
	binary.LittleEndian.PutUint16(out[4:], binary.BigEndian.Uint16(h[4:]))
	binary.LittleEndian.PutUint16(out[6:], binary.BigEndian.Uint16(h[6:]))
	copy(out[8:], h[8:])
	return out
}

// pstoreEFIStoreFull: the variable store is already nearly full of another
// vendor's variables (the harness fills the VARS file between two cold
// boots, leaving 12 KiB: less than a crash plus the kernel's 5 KiB
// reserve). The agent says so in one clear line and deletes nothing; every
// filler variable is still there, unchanged.
func pstoreEFIStoreFull(e *Env) (string, error) {
	x, err := newEFI(e)
	if err != nil {
		return "", err
	}
	c, err := e.StartCollector("collector")
	if err != nil {
		return "", err
	}
	// Boot 1 lets OVMF create its own variables; then the store is filled.
	vm, err := x.boot(e, "vm1", true, BootOpts{Append: agentArgs(c)})
	if err != nil {
		return "", err
	}
	if _, err := waitHandoff(vm, 0); err != nil {
		return "", fmt.Errorf("boot 1: %w", err)
	}
	vm.Monitor("quit")
	if err := vm.exited(30 * time.Second); err != nil {
		return "", err
	}
	fill, err := fillStore(x.vars, 12<<10)
	if err != nil {
		return "", fmt.Errorf("fill VARS: %w", err)
	}
	vm2, err := x.boot(e, "vm2", true, BootOpts{Append: agentArgs(c)})
	if err != nil {
		return "", err
	}
	r, err := waitHandoff(vm2, 0)
	if err != nil {
		return "", fmt.Errorf("boot 2 (store full): %w", err)
	}
	out := vm2.Serial()[:r.end]
	i := strings.Index(out, "lastgasp: efi: variable store full")
	if i < 0 || !strings.Contains(out, " efi=full ") {
		return "", fmt.Errorf("boot 2: no clear line about the full store (efi=full)")
	}
	line := out[i:]
	line = strings.TrimSpace(line[:strings.IndexByte(line, '\n')])
	vm2.Monitor("quit")
	if err := vm2.exited(30 * time.Second); err != nil {
		return "", err
	}
	b, err := os.ReadFile(x.vars)
	if err != nil {
		return "", err
	}
	s, err := efivars.ParseStore(b)
	if err != nil {
		return "", err
	}
	found := 0
	for _, v := range s.Live() {
		if want, ok := fill[v.Name]; ok && v.GUID == fillGUID {
			data := b[v.Offset+efivars.HeaderSize+2*(len(v.Name)+1):][:v.DataSize]
			if !bytes.Equal(data, want) {
				return "", fmt.Errorf("filler %s changed", v.Name)
			}
			found++
		}
	}
	if found != len(fill) {
		return "", fmt.Errorf("%d of %d filler variables left after the boot: something not lastgasp's was deleted", found, len(fill))
	}
	return fmt.Sprintf("fillers=%d kept=%d line=%q", len(fill), found, strings.TrimPrefix(line, "lastgasp: ")), nil
}
