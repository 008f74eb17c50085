package boards

import (
	"fmt"
	"path"
	"strconv"
	"strings"
)

// Handoff modes: what the agent does once logging is armed and crash records
// are shipped.
const (
	HandoffRescue     = "rescue"      // shell on the console
	HandoffSwitchRoot = "switch_root" // mount root= and exec its init as PID 1
	HandoffKexec      = "kexec"       // kexec_file_load the main kernel and boot it
)

// Kexec names the main kernel the kexec handoff boots. Paths are absolute
// paths inside the root file system named by root= (mounted read-only for
// the load), or inside the initramfs when the command line names no root=.
type Kexec struct {
	Kernel  string // bzImage (kexec_file_load wants the bzImage, not a vmlinux)
	Initrd  string // optional
	Cmdline string // extra arguments for the main kernel, after the board's
}

// handoffKey sets a board key of the handoff and log level policy; ok is
// false when k is not one of them.
func (b *Board) handoffKey(k, v string) (ok bool, err error) {
	switch k {
	case "handoff":
		b.Handoff = v
	case "kexec.kernel":
		b.Kexec.Kernel = v
	case "kexec.initrd":
		b.Kexec.Initrd = v
	case "kexec.cmdline":
		b.Kexec.Cmdline = v
	case "console.main_loglevel":
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 8 {
			return true, fmt.Errorf("want 0-8, got %q: %w", v, ErrInvalid)
		}
		b.MainLogLevel = n
	case "console.ignore_loglevel":
		on, err := parseBool(v)
		if err != nil {
			return true, err
		}
		b.IgnoreLoglevel = on
	default:
		return false, nil
	}
	return true, nil
}

// handoffArg applies one lastgasp.* command line argument of the handoff and
// log level policy (key without the "lastgasp." prefix); ok is false when
// key is not one of them.
//
//	lastgasp.handoff=rescue|switch_root|kexec
//	lastgasp.kexec_kernel=/boot/vmlinuz
//	lastgasp.kexec_initrd=/boot/initrd.img
//	lastgasp.kexec_cmdline="root=/dev/vda1 rw"
//	lastgasp.main_loglevel=0-8
//	lastgasp.ignore_loglevel=1
func (b *Board) handoffArg(key, v string) (ok bool, err error) {
	switch key {
	case "handoff":
		if err := checkHandoff(v); err != nil {
			return true, err
		}
		b.Handoff = v
	case "kexec_kernel", "kexec_initrd":
		if err := checkKexecPath(v); err != nil {
			return true, err
		}
		if key == "kexec_kernel" {
			b.Kexec.Kernel = v
		} else {
			b.Kexec.Initrd = v
		}
	case "kexec_cmdline":
		b.Kexec.Cmdline = v
	case "main_loglevel", "ignore_loglevel":
		// Same values as the board's console.* keys.
		return b.handoffKey("console."+key, v)
	default:
		return false, nil
	}
	return true, nil
}

// validateHandoff checks the handoff keys of a board profile.
func (b *Board) validateHandoff() error {
	if err := checkHandoff(b.Handoff); err != nil {
		return err
	}
	for _, p := range []string{b.Kexec.Kernel, b.Kexec.Initrd} {
		if p == "" {
			continue
		}
		if err := checkKexecPath(p); err != nil {
			return err
		}
	}
	// handoff = kexec without kexec.kernel is not an error here: the command
	// line may name the kernel (lastgasp.kexec_kernel=); the agent reports a
	// kexec handoff without a kernel and falls back to the rescue shell.
	return nil
}

func checkHandoff(v string) error {
	switch v {
	case HandoffRescue, HandoffSwitchRoot, HandoffKexec:
		return nil
	}
	return fmt.Errorf("handoff %q: want rescue, switch_root or kexec: %w", v, ErrInvalid)
}

func checkKexecPath(p string) error {
	if !strings.HasPrefix(p, "/") || path.Clean(p) != p || strings.ContainsAny(p, "\x00") {
		return fmt.Errorf("kexec path %q: want a clean absolute path: %w", p, ErrInvalid)
	}
	return nil
}

func parseBool(v string) (bool, error) {
	if v == "" {
		return true, nil // a bare flag ("lastgasp.ignore_loglevel") means on
	}
	on, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("want 0 or 1, got %q: %w", v, ErrInvalid)
	}
	return on, nil
}

// CmdlineArgs splits a kernel command line into arguments the way the kernel
// does (spaces separate, double quotes group and are removed).
func CmdlineArgs(cmdline string) []string { return splitCmdline(cmdline) }
