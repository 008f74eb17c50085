package agent

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/lastgasp/lastgasp/boards"
	"github.com/lastgasp/lastgasp/pstore/ring"
	"golang.org/x/sys/unix"
)

// mapRegion maps [addr, addr+size) of physical memory from /dev/mem. O_SYNC
// makes the mapping uncached, so that a line is in RAM, not in a CPU cache
// a reset may drop, once the write returns. On a kernel with
// CONFIG_STRICT_DEVMEM and CONFIG_IO_STRICT_DEVMEM (Debian's) this works
// for a memmap= reserved range: e820 "reserved" entries are not marked busy
// (measured on 6.1: mmap of System RAM is refused with EPERM).
func mapRegion(path string, addr, size uint64) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_SYNC, 0)
	if err != nil {
		return nil, fmt.Errorf("ring: %w", err)
	}
	defer f.Close()
	b, err := unix.Mmap(int(f.Fd()), int64(addr), int(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("ring: mmap %s at %#x+%#x: %w", path, addr, size, err)
	}
	return b, nil
}

// sinceBoot is CLOCK_MONOTONIC, the clock of the kernel log's timestamps.
func sinceBoot() time.Duration {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return time.Duration(ts.Nano())
}

func writeSysrq(path string) { os.WriteFile(path, []byte("c"), 0) }

// copyKmsg copies /dev/kmsg records with a sequence number above after into
// r's console stream until stop is closed (or forever when stop is nil).
func copyKmsg(path string, after uint64, r *ring.Ring, last *atomic.Uint64, stop <-chan struct{}, opened func()) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		r.Append(ring.Console, "lastgasp: ring: "+path+": "+err.Error())
		return
	}
	if opened != nil {
		opened()
	}
	// A pollable file: Read waits in the runtime's poller, and a read
	// deadline lets stop interrupt it.
	f := os.NewFile(uintptr(fd), path)
	defer f.Close()
	if stop != nil {
		go func() {
			<-stop
			f.SetReadDeadline(time.Now())
		}()
	}
	buf := make([]byte, 8192)
	for {
		n, err := f.Read(buf)
		switch {
		case errors.Is(err, syscall.EPIPE):
			continue // records overwritten before we read them
		case err != nil:
			return
		}
		seq, line, ok := parseKmsg(string(buf[:n]))
		if !ok || seq <= after && after != 0 {
			continue
		}
		r.Append(ring.Console, line)
		last.Store(seq)
	}
}

// ringHandoff prepares the ring for the handoff: the agent's run is done
// (pmsg marker), and the console stream outlives the agent. For
// switch_root the copying moves to a child process (the agent binary
// re-executed), which the main system inherits; for kexec the boot ends
// cleanly here (console marker); the rescue shell keeps the agent alive,
// and so its goroutine.
func (a *agent) ringHandoff(b *boards.Board) {
	rs := a.ring
	if rs == nil {
		return
	}
	rs.cur.Mark(ring.Pmsg, markDone)
	a.Log.setTee(nil)
	switch b.Handoff {
	case boards.HandoffKexec:
		rs.stopKmsg()
		rs.cur.Mark(ring.Console, markKexec)
	case boards.HandoffSwitchRoot:
		rs.stopKmsg()
		if err := a.spawnCopier(b, rs); err != nil {
			a.Log.Errorf("ring: console copier: %v; copying in the agent until the handoff", err)
			rs.startKmsg(a.Config.Kmsg, rs.lastSeq.Load())
		}
	}
}

// ringHandoffFailed is called when the handoff fell back to the rescue
// shell: the agent copies the kernel log again if nothing else does.
func (a *agent) ringHandoffFailed(b *boards.Board) {
	rs := a.ring
	if rs == nil || b.Handoff != boards.HandoffKexec {
		return
	}
	rs.cur.Append(ring.Console, "lastgasp: ring: kexec failed; copying the kernel log again")
	rs.startKmsg(a.Config.Kmsg, rs.lastSeq.Load())
}

func (a *agent) spawnCopier(b *boards.Board, rs *ringState) error {
	cmd := exec.Command("/proc/self/exe")
	// u-root's busybox picks the command from argv[0].
	cmd.Args = []string{"lastgasp"}
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%#x:%#x:%d:%d", ringEnv, b.Ring.MemAddress, b.Ring.MemSize, rs.curHalf, rs.lastSeq.Load()))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	// The copier says when it has /dev/mem and /dev/kmsg open: after
	// switch_root the initramfs' /dev is gone.
	pr, pw, err := os.Pipe()
	if err != nil {
		return err
	}
	defer pr.Close()
	cmd.ExtraFiles = []*os.File{pw}
	err = cmd.Start()
	pw.Close()
	if err != nil {
		return err
	}
	pr.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := pr.Read(make([]byte, 1)); err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		return fmt.Errorf("pid %d never got ready: %w", cmd.Process.Pid, err)
	}
	a.Log.Infof("ring: console copier pid %d keeps the kernel log's tail in the ring after the handoff", cmd.Process.Pid)
	go cmd.Wait() // reaped by PID 1's successor once we exec it
	return nil
}

// ringCopierMain runs the console copier if the environment asks for it
// and reports whether it did (it returns only if setting up failed).
func ringCopierMain() bool {
	v := os.Getenv(ringEnv)
	if v == "" {
		return false
	}
	f := strings.Split(v, ":")
	if len(f) != 4 {
		return true
	}
	addr, _ := strconv.ParseUint(f[0], 0, 64)
	size, _ := strconv.ParseUint(f[1], 0, 64)
	half, _ := strconv.Atoi(f[2])
	after, _ := strconv.ParseUint(f[3], 0, 64)
	region, err := mapRegion(devMem, addr, size)
	if err != nil {
		return true
	}
	halves, err := ring.Halves(region)
	if err != nil || half < 0 || half > 1 {
		return true
	}
	r, err := ring.Open(halves[half])
	if err != nil {
		return true
	}
	// The main system shutting down sends SIGTERM before SIGKILL: note a
	// clean end, and go on copying what the shutdown logs.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	go func() {
		for s := range sig {
			if s == syscall.SIGTERM {
				r.Mark(ring.Console, markShutdown)
			}
		}
	}()
	var last atomic.Uint64
	ready := os.NewFile(3, "ready")
	copyKmsg("/dev/kmsg", after, r, &last, nil, func() { ready.Write([]byte{1}); ready.Close() })
	return true
}
