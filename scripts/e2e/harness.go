package main

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/lastgasp/lastgasp/boards"
)

// Env is what a scenario gets: the built artefacts and a scratch directory.
type Env struct {
	Kernel    string // vmlinux (PVH) or bzImage
	Initrd    string
	InitrdTLS string // the TLS variant of the image (boards/qemu-x86_64-tls.board)
	Cmdline   string // the board's kernel.cmdline
	Collector string // lastgaspd binary
	Dir       string // scratch dir for this scenario
	Verbose   bool
	// Machine is how QEMU runs the board; the zero value is the x86 PC
	// (x86Machine), so that an Env copied for another x86 board needs no
	// change.
	Machine Machine

	cleanups []func()
}

func (e *Env) cleanup() {
	for i := len(e.cleanups) - 1; i >= 0; i-- {
		e.cleanups[i]()
	}
}

// freePort returns a loopback port that was free a moment ago.
func freePort(network string) int {
	if network == "udp" {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			panic(err)
		}
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Collector is a running lastgaspd.
type Collector struct {
	UDPPort, HTTPPort int
	Store             string
	Wrap              []string // command prefix, e.g. to run it in its own mount namespace

	bin, logPath string
	extra        []string
	cmd          *exec.Cmd
	done         chan struct{}
	out          *syncBuf
}

// StartCollector starts lastgaspd on loopback with a fresh store.
func (e *Env) StartCollector(name string, extra ...string) (*Collector, error) {
	c := &Collector{UDPPort: freePort("udp"), HTTPPort: freePort("tcp"), Store: filepath.Join(e.Dir, name+"-store"),
		bin: e.Collector, extra: extra, logPath: filepath.Join(e.Dir, name+".log")}
	if err := c.Start(); err != nil {
		return nil, err
	}
	e.cleanups = append(e.cleanups, c.Stop)
	return c, nil
}

// StartCollectorWrapped starts lastgaspd under a command prefix; the store
// directory is passed to the prefix as its first argument after the prefix.
func (e *Env) StartCollectorWrapped(name string, wrap []string, extra ...string) (*Collector, error) {
	c := &Collector{UDPPort: freePort("udp"), HTTPPort: freePort("tcp"), Store: filepath.Join(e.Dir, name+"-store"),
		bin: e.Collector, extra: extra, logPath: filepath.Join(e.Dir, name+".log")}
	c.Wrap = append(append([]string(nil), wrap...), c.Store)
	if err := c.Start(); err != nil {
		return nil, err
	}
	e.cleanups = append(e.cleanups, c.Stop)
	return c, nil
}

// Start (re)starts the collector on its ports and store.
func (c *Collector) Start() error {
	c.out = &syncBuf{}
	args := append([]string{
		"-netconsole", fmt.Sprintf("127.0.0.1:%d", c.UDPPort),
		"-http", fmt.Sprintf("127.0.0.1:%d", c.HTTPPort),
		"-store", c.Store}, c.extra...)
	c.cmd = exec.Command(c.bin, args...)
	if len(c.Wrap) > 0 {
		c.cmd = exec.Command(c.Wrap[0], append(append(c.Wrap[1:], c.bin), args...)...)
	}
	logf, err := os.OpenFile(c.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	c.cmd.Stdout = io.MultiWriter(logf, c.out)
	c.cmd.Stderr = c.cmd.Stdout
	if err := c.cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start collector: %w", err)
	}
	done := make(chan struct{})
	c.done = done
	go func() { c.cmd.Wait(); logf.Close(); close(done) }()
	// Wait until the HTTP side answers.
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", c.HTTPPort)); err == nil {
			conn.Close()
			return nil
		}
		select {
		case <-done:
			return fmt.Errorf("collector exited: %s", c.out.String())
		default:
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("collector did not come up: %s", c.out.String())
}

// Stop kills the collector (SIGKILL: no chance to tidy up).
func (c *Collector) Stop() {
	if c.cmd != nil && c.cmd.Process != nil {
		c.cmd.Process.Kill()
		<-c.done
	}
}

// Metric returns the value of a counter from the collector's /metrics.
func (c *Collector) Metric(name string) (float64, error) {
	conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", c.HTTPPort), 5*time.Second)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(conn, "GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n")
	b, _ := io.ReadAll(conn)
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) == 2 && f[0] == name {
			var v float64
			_, err := fmt.Sscan(f[1], &v)
			return v, err
		}
	}
	return 0, fmt.Errorf("metric %s not found", name)
}

// Logs returns the concatenation of every host's kernel.log.
func (c *Collector) Logs() string {
	var b strings.Builder
	files, _ := filepath.Glob(filepath.Join(c.Store, "*", "*", "kernel.log"))
	for _, f := range files {
		d, _ := os.ReadFile(f)
		b.Write(d)
	}
	return b.String()
}

// WaitLog waits until every substring appears in the collector's stored logs.
func (c *Collector) WaitLog(timeout time.Duration, subs ...string) error {
	return waitFor(timeout, func() (bool, string) {
		l := c.Logs()
		for _, s := range subs {
			if !strings.Contains(l, s) {
				return false, fmt.Sprintf("collector never stored %q", s)
			}
		}
		return true, ""
	})
}

// CrashRecords returns the stored crash record data files (not metadata).
func (c *Collector) CrashRecords() map[string][]byte {
	out := map[string][]byte{}
	files, _ := filepath.Glob(filepath.Join(c.Store, "*", "crash", "*"))
	for _, f := range files {
		// Hidden files are the collector's temporary files, never records.
		if strings.HasSuffix(f, ".json") || strings.HasPrefix(filepath.Base(f), ".") {
			continue
		}
		d, _ := os.ReadFile(f)
		out[f] = d
	}
	return out
}

func waitFor(timeout time.Duration, f func() (bool, string)) error {
	deadline := time.Now().Add(timeout)
	for {
		ok, why := f()
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s (after %v)", why, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// VM is a QEMU guest with its serial console on a pipe.
type VM struct {
	monitor string // QEMU monitor socket path
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	serial  *syncBuf
	done    chan struct{}
}

// BootOpts changes how a VM boots.
type BootOpts struct {
	Append  string        // extra kernel arguments
	Initrd  string        // replaces e.Initrd if set
	Cmdline *string       // replaces the board's kernel.cmdline if set
	NetArgs []string      // replaces the machine's default user-mode NIC
	QEMU    []string      // extra QEMU arguments
	Timeout time.Duration // hard limit for the QEMU process
	// PlainDT boots a device-tree machine with QEMU's own device tree,
	// without the board's ramoops nodes (a board whose DTB lacks them).
	PlainDT bool
}

// Machine is how QEMU runs one architecture's board: the emulator, the
// machine, accelerator, CPU and memory options, and the default NIC. On a
// device-tree machine the ramoops region is not reserved on the kernel
// command line but by a /reserved-memory node: Boot then dumps the device
// tree QEMU makes for these very options and devices (-machine dumpdtb=),
// adds the board's nodes (scripts/dtb-ramoops.sh) and boots it with -dtb.
type Machine struct {
	QEMU string   // emulator binary
	Args []string // machine, accelerator, CPU, memory, SMP
	NIC  []string // default NIC on QEMU's user-mode network
	// DTBoard is the board file whose ramoops and ring regions go into the
	// device tree; empty on a machine without one (the x86 PC).
	DTBoard string
}

// x86Machine is the QEMU PC the x86_64 boards boot on: TCG (KVM does not
// work here) with -cpu max, whose RDRAND the guest's RNG needs to
// initialise (else crypto/rand, and so DHCP, blocks). Two vCPUs, as the
// smallest real server has at least: the agent's module chains then load
// (and have their signatures checked) side by side, as they do on
// hardware; with one, /init to armed is ~25% longer (README, Boot timing).
var x86Machine = Machine{
	QEMU: "qemu-system-x86_64",
	Args: []string{"-accel", "tcg", "-cpu", "max", "-m", "512", "-smp", "2"},
	NIC:  []string{"-netdev", "user,id=n0", "-device", "virtio-net-pci,netdev=n0,romfile="},
}

// arm64Machine is QEMU's "virt" board under TCG. -cpu max has FEAT_RNG
// (RNDR) for the guest's RNG, as RDRAND on x86; pauth-impdef=on swaps its
// pointer-authentication cipher (QARMA5, computed in software on every
// signed return) for QEMU's cheap one: measured here, Run /init came at
// 32.2 s of guest time with plain -cpu max and at 2.3 s with it
// (cortex-a57, no pointer authentication: 2.8 s). The NIC is
// virtio-net-pci, as on x86 (virt has a PCIe host; virtio_mmio is not
// needed). The console is the PL011, ttyAMA0, on -serial.
var arm64Machine = Machine{
	QEMU: "qemu-system-aarch64",
	Args: []string{"-M", "virt", "-accel", "tcg", "-cpu", "max,pauth-impdef=on", "-m", "512", "-smp", "1"},
	NIC:  []string{"-netdev", "user,id=n0", "-device", "virtio-net-pci,netdev=n0,romfile="},
}

// machineFor returns the machine a board boots on: by its architecture,
// and with the device-tree ramoops nodes if the board takes its region
// from the device tree (ramoops.source = devicetree).
func machineFor(b *boards.Board, boardFile string) (Machine, error) {
	var m Machine
	switch b.Arch {
	case "amd64":
		m = x86Machine
	case "arm64":
		m = arm64Machine
	default:
		return Machine{}, fmt.Errorf("board %s: no QEMU machine for arch %q", boardFile, b.Arch)
	}
	if b.Ramoops.FromDT {
		m.DTBoard = boardFile
	}
	return m, nil
}

// Boot starts QEMU under a hard timeout, on e.Machine (x86Machine if unset).
func (e *Env) Boot(name string, o BootOpts) (*VM, error) {
	if o.Timeout == 0 {
		o.Timeout = 5 * time.Minute
	}
	m := e.Machine
	if m.QEMU == "" {
		m = x86Machine
	}
	net := o.NetArgs
	if net == nil {
		net = m.NIC
	}
	base := e.Cmdline
	if o.Cmdline != nil {
		base = *o.Cmdline
	}
	args := append(append([]string(nil), m.Args...), "-nodefaults", "-no-user-config",
		"-display", "none",
		"-kernel", e.Kernel, "-initrd", cmp.Or(o.Initrd, e.Initrd),
		"-append", strings.TrimSpace(base+" "+o.Append))
	args = append(args, net...)
	args = append(args, o.QEMU...)
	if m.DTBoard != "" && !o.PlainDT {
		dtb, err := e.ramoopsDTB(name, m, args)
		if err != nil {
			return nil, err
		}
		args = append(args, "-dtb", dtb)
	}
	args = append(args, "-serial", "stdio")
	vm := &VM{serial: &syncBuf{}, done: make(chan struct{}), monitor: filepath.Join(e.Dir, name+".monitor")}
	args = append(args, "-monitor", "unix:"+vm.monitor+",server=on,wait=off")
	ctx, cancel := context.WithTimeout(context.Background(), o.Timeout)
	vm.cmd = exec.CommandContext(ctx, m.QEMU, args...)
	logf, err := os.Create(filepath.Join(e.Dir, name+"-serial.log"))
	if err != nil {
		cancel()
		return nil, err
	}
	var w io.Writer = io.MultiWriter(logf, vm.serial)
	if e.Verbose {
		w = io.MultiWriter(w, os.Stderr)
	}
	vm.cmd.Stdout, vm.cmd.Stderr = w, w
	if vm.stdin, err = vm.cmd.StdinPipe(); err != nil {
		cancel()
		return nil, err
	}
	if err := vm.cmd.Start(); err != nil {
		cancel()
		return nil, fmt.Errorf("start qemu: %w", err)
	}
	go func() { vm.cmd.Wait(); cancel(); logf.Close(); close(vm.done) }()
	e.cleanups = append(e.cleanups, vm.Kill)
	return vm, nil
}

// ramoopsDTB writes <name>.dtb, the device tree QEMU makes for args (the
// same machine, memory, CPUs and devices the guest boots with: QEMU dumps
// it and exits), and <name>-ramoops.dtb, that tree with the board's
// ramoops and ring nodes (scripts/dtb-ramoops.sh), and returns the latter.
// At boot QEMU still writes /chosen (command line, initrd) into it.
func (e *Env) ramoopsDTB(name string, m Machine, args []string) (string, error) {
	plain := filepath.Join(e.Dir, name+".dtb")
	patched := filepath.Join(e.Dir, name+"-ramoops.dtb")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// The console is there as at boot (the UART's node is made either
	// way), on a null backend: QEMU exits before the guest runs.
	dump := exec.CommandContext(ctx, m.QEMU, append(append([]string(nil), args...), "-serial", "null", "-machine", "dumpdtb="+plain)...)
	if out, err := dump.CombinedOutput(); err != nil {
		return "", fmt.Errorf("%s -machine dumpdtb: %w: %s", m.QEMU, err, out)
	}
	const script = "scripts/dtb-ramoops.sh"
	if out, err := exec.CommandContext(ctx, script, m.DTBoard, plain, patched).CombinedOutput(); err != nil {
		return "", fmt.Errorf("%s %s: %w: %s", script, m.DTBoard, err, out)
	}
	return patched, nil
}

// Kill stops QEMU.
func (vm *VM) Kill() {
	if vm.cmd.Process != nil {
		vm.cmd.Process.Kill()
	}
	<-vm.done
}

// Monitor sends one command to the QEMU monitor (e.g. "system_reset": a
// reset keeps guest RAM, so ramoops records survive it).
func (vm *VM) Monitor(cmd string) error {
	c, err := net.DialTimeout("unix", vm.monitor, 5*time.Second)
	if err != nil {
		return fmt.Errorf("qemu monitor: %w", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	// Wait for the prompt, send the command, and wait for the next prompt:
	// the monitor reads its input a character at a time, and closing early
	// drops what it has not read yet.
	readPrompt := func() error {
		var got []byte
		buf := make([]byte, 4096)
		for !bytes.Contains(got, []byte("(qemu) ")) {
			n, err := c.Read(buf)
			if err != nil {
				return fmt.Errorf("qemu monitor: %w", err)
			}
			got = append(got, buf[:n]...)
			if i := bytes.LastIndex(got, []byte("\n")); i >= 0 {
				got = got[i+1:]
			}
		}
		return nil
	}
	if err := readPrompt(); err != nil {
		return err
	}
	if _, err := io.WriteString(c, cmd+"\n"); err != nil {
		return fmt.Errorf("qemu monitor: %w", err)
	}
	return readPrompt()
}

// Serial returns everything the guest printed so far.
func (vm *VM) Serial() string { return vm.serial.String() }

// WaitSerial waits until the console shows s, counting from byte offset from.
// It returns the offset just past the match.
func (vm *VM) WaitSerial(timeout time.Duration, from int, s string) (int, error) {
	var at int
	err := waitFor(timeout, func() (bool, string) {
		out := vm.Serial()
		if from > len(out) {
			from = len(out)
		}
		if i := strings.Index(out[from:], s); i >= 0 {
			at = from + i + len(s)
			return true, ""
		}
		select {
		case <-vm.done:
			return false, fmt.Sprintf("qemu exited before the console showed %q", s)
		default:
		}
		return false, fmt.Sprintf("console never showed %q", s)
	})
	return at, err
}

// Type sends a line to the guest's console.
func (vm *VM) Type(line string) error {
	_, err := io.WriteString(vm.stdin, line+"\n")
	return err
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func dialOK(port int) bool {
	c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}
