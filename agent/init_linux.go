package agent

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// mountEarly mounts what PID 1 needs before anything else: /proc, /sys and
// /dev (the Debian kernel does not mount devtmpfs by itself).
func mountEarly(l *logger) {
	for _, m := range []struct{ fs, dir string }{{"proc", "/proc"}, {"sysfs", "/sys"}, {"devtmpfs", "/dev"}} {
		if err := mount(m.fs, m.dir); err != nil {
			l.Errorf("%v", err)
		}
	}
}

func mount(fstype, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("mount %s: %w", dir, err)
	}
	flags := uintptr(unix.MS_NOSUID)
	if fstype != "devtmpfs" {
		flags |= unix.MS_NOEXEC
	}
	err := unix.Mount(fstype, dir, fstype, flags, "")
	if err != nil && !errors.Is(err, unix.EBUSY) {
		return fmt.Errorf("mount %s on %s: %w", fstype, dir, err)
	}
	return nil
}

// attachConsole points stdin, stdout and stderr at the console, in case the
// kernel started init without one.
func attachConsole(path string) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return
	}
	for fd := 0; fd < 3; fd++ {
		unix.Dup2(int(f.Fd()), fd)
	}
}

// rescue runs the rescue shell on the console; as PID 1 it restarts it
// whenever it exits, and never returns.
func (a *agent) rescue() {
	c := a.Config
	a.Log.Logf(levelNotice, "handoff: rescue shell %s on %s (%v since init)", c.Shell, c.Console, time.Since(a.start).Round(time.Millisecond))
	for {
		con, err := os.OpenFile(c.Console, os.O_RDWR, 0)
		if err != nil {
			a.Log.Errorf("rescue: console %s: %v", c.Console, err)
		} else {
			cmd := exec.Command(c.Shell)
			cmd.Stdin, cmd.Stdout, cmd.Stderr = con, con, con
			cmd.Env = append(os.Environ(), "PATH=/bbin:/bin:/ubin", "HOME=/")
			cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
			if err := cmd.Run(); err != nil {
				a.Log.Errorf("rescue: %s: %v", c.Shell, err)
			}
			con.Close()
		}
		if !c.PID1 {
			return
		}
		time.Sleep(time.Second)
	}
}
