package rescue

import (
	"bufio"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"syscall"
)

// dmesg prints the kernel log buffer from /dev/kmsg (one record per read;
// Documentation/ABI/testing/dev-kmsg) without waiting for new records. The
// descriptor is used raw: through os.File, Go's poller would wait for the
// next record instead of returning EAGAIN at the end of the buffer.
func dmesg(s *Shell, f stdio, _ []string) int {
	fd, err := syscall.Open("/dev/kmsg", syscall.O_RDONLY|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if err != nil {
		return failf(f, "dmesg: /dev/kmsg: %v", err)
	}
	defer syscall.Close(fd)
	w := bufio.NewWriter(f[1])
	defer w.Flush()
	buf := make([]byte, 8192)
	n0 := s.intr.Load()
	for s.intr.Load() == n0 {
		n, err := syscall.Read(fd, buf)
		switch {
		case errors.Is(err, syscall.EAGAIN):
			return 0
		case errors.Is(err, syscall.EPIPE), errors.Is(err, syscall.EINTR):
			continue // EPIPE: overwritten while reading; the next read goes on
		case err != nil:
			return failf(f, "dmesg: %v", err)
		case n == 0:
			return 0
		}
		if _, err := w.WriteString(formatKmsg(string(buf[:n]))); err != nil {
			return failf(f, "dmesg: %v", err)
		}
	}
	return 0
}

// formatKmsg turns "pri,seq,usec,flags;text\n KEY=v\n" into
// "[sec.usec] text\n" (continuation lines dropped).
func formatKmsg(rec string) string {
	hdr, text, ok := strings.Cut(rec, ";")
	if !ok {
		return rec
	}
	text, _, _ = strings.Cut(text, "\n")
	fs := strings.Split(hdr, ",")
	if len(fs) < 3 {
		return text + "\n"
	}
	us, _ := strconv.ParseUint(fs[2], 10, 64)
	return fmt.Sprintf("[%5d.%06d] %s\n", us/1e6, us%1e6, text)
}

// mountCmd: mount [-t TYPE] [-o ro] DEVICE DIR.
func mountCmd(s *Shell, f stdio, args []string) int {
	fstype, flags, a := "", uintptr(0), args[1:]
	var pos []string
	for len(a) > 0 {
		switch {
		case a[0] == "-t" && len(a) > 1:
			fstype, a = a[1], a[2:]
		case a[0] == "-o" && len(a) > 1:
			for _, o := range strings.Split(a[1], ",") {
				if o == "ro" {
					flags |= syscall.MS_RDONLY
				}
			}
			a = a[2:]
		default:
			pos, a = append(pos, a[0]), a[1:]
		}
	}
	if len(pos) != 2 {
		return failf(f, "usage: mount [-t TYPE] [-o ro] DEVICE DIR")
	}
	if fstype == "" {
		fstype = pos[0] // proc, sysfs, tmpfs, ...
	}
	if err := syscall.Mount(pos[0], s.path(pos[1]), fstype, flags, ""); err != nil {
		return failf(f, "mount: %s on %s: %v", pos[0], pos[1], err)
	}
	return 0
}

func umountCmd(s *Shell, f stdio, args []string) int {
	if len(args) != 2 {
		return failf(f, "usage: umount DIR")
	}
	if err := syscall.Unmount(s.path(args[1]), 0); err != nil {
		return failf(f, "umount: %s: %v", args[1], err)
	}
	return 0
}

func syncCmd(*Shell, stdio, []string) int { syscall.Sync(); return 0 }

func rebootCmd(_ *Shell, f stdio, _ []string) int {
	syscall.Sync()
	return failf(f, "reboot: %v", syscall.Reboot(syscall.LINUX_REBOOT_CMD_RESTART))
}

func poweroffCmd(_ *Shell, f stdio, _ []string) int {
	syscall.Sync()
	return failf(f, "poweroff: %v", syscall.Reboot(syscall.LINUX_REBOOT_CMD_POWER_OFF))
}
