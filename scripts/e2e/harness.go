package main

import (
	"bytes"
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
)

// Env is what a scenario gets: the built artefacts and a scratch directory.
type Env struct {
	Kernel    string // vmlinux (PVH) or bzImage
	Initrd    string
	Cmdline   string // the board's kernel.cmdline
	Collector string // lastgaspd binary
	Dir       string // scratch dir for this scenario
	Verbose   bool

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
	cmd               *exec.Cmd
	out               *syncBuf
}

// StartCollector starts lastgaspd on loopback with a fresh store.
func (e *Env) StartCollector(name string) (*Collector, error) {
	c := &Collector{UDPPort: freePort("udp"), HTTPPort: freePort("tcp"), Store: filepath.Join(e.Dir, name+"-store"), out: &syncBuf{}}
	c.cmd = exec.Command(e.Collector,
		"-netconsole", fmt.Sprintf("127.0.0.1:%d", c.UDPPort),
		"-http", fmt.Sprintf("127.0.0.1:%d", c.HTTPPort),
		"-store", c.Store)
	logf, err := os.Create(filepath.Join(e.Dir, name+".log"))
	if err != nil {
		return nil, err
	}
	c.cmd.Stdout = io.MultiWriter(logf, c.out)
	c.cmd.Stderr = c.cmd.Stdout
	if err := c.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start collector: %w", err)
	}
	e.cleanups = append(e.cleanups, func() { c.Stop(); logf.Close() })
	// Wait until the HTTP side answers.
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", c.HTTPPort)); err == nil {
			conn.Close()
			return c, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil, fmt.Errorf("collector did not come up: %s", c.out.String())
}

// Stop kills the collector.
func (c *Collector) Stop() {
	if c.cmd.Process != nil {
		c.cmd.Process.Kill()
		c.cmd.Wait()
	}
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
		if strings.HasSuffix(f, ".json") || strings.Contains(filepath.Base(f), ".tmp") {
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
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	serial *syncBuf
	done   chan struct{}
}

// BootOpts changes how a VM boots.
type BootOpts struct {
	Append  string        // extra kernel arguments
	NetArgs []string      // replaces the default user-mode virtio NIC
	Timeout time.Duration // hard limit for the QEMU process
}

// Boot starts QEMU (TCG, -cpu max: KVM does not work here and the guest RNG
// needs RDRAND) under a hard timeout.
func (e *Env) Boot(name string, o BootOpts) (*VM, error) {
	if o.Timeout == 0 {
		o.Timeout = 5 * time.Minute
	}
	net := o.NetArgs
	if net == nil {
		net = []string{"-netdev", "user,id=n0", "-device", "virtio-net-pci,netdev=n0,romfile="}
	}
	args := []string{"-accel", "tcg", "-cpu", "max", "-m", "512", "-smp", "1", "-nodefaults", "-no-user-config",
		"-display", "none", "-monitor", "none", "-serial", "stdio",
		"-kernel", e.Kernel, "-initrd", e.Initrd,
		"-append", strings.TrimSpace(e.Cmdline + " " + o.Append)}
	args = append(args, net...)
	ctx, cancel := context.WithTimeout(context.Background(), o.Timeout)
	vm := &VM{serial: &syncBuf{}, done: make(chan struct{})}
	vm.cmd = exec.CommandContext(ctx, "qemu-system-x86_64", args...)
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

// Kill stops QEMU.
func (vm *VM) Kill() {
	if vm.cmd.Process != nil {
		vm.cmd.Process.Kill()
	}
	<-vm.done
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
