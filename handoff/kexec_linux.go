package handoff

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// KexecLoad loads kernel (a bzImage on x86) and initrd ("" for none) with
// kexec_file_load(2), to boot with cmdline on the next KexecReboot.
func KexecLoad(kernel, initrd, cmdline string) error {
	kf, err := os.Open(kernel)
	if err != nil {
		return fmt.Errorf("handoff: kexec: %w", err)
	}
	defer kf.Close()
	ifd, flags := -1, 0
	if initrd == "" {
		flags |= unix.KEXEC_FILE_NO_INITRAMFS
	} else {
		f, err := os.Open(initrd)
		if err != nil {
			return fmt.Errorf("handoff: kexec: %w", err)
		}
		defer f.Close()
		ifd = int(f.Fd())
	}
	if err := unix.KexecFileLoad(int(kf.Fd()), ifd, cmdline, flags); err != nil {
		return fmt.Errorf("handoff: kexec_file_load %s (initrd %q): %w", kernel, initrd, err)
	}
	return nil
}

// KexecReboot syncs the file systems and boots the loaded kernel. It returns
// only on failure.
func KexecReboot() error {
	unix.Sync()
	if err := unix.Reboot(unix.LINUX_REBOOT_CMD_KEXEC); err != nil {
		return fmt.Errorf("handoff: reboot into the kexec kernel: %w", err)
	}
	return nil
}
