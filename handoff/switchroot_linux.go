package handoff

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// MovedMounts are the mounts SwitchRoot carries into the new root when they
// are mount points. Moving a mount moves the mounts below it too, so
// configfs (/sys/kernel/config) and pstore (/sys/fs/pstore) go with /sys.
var MovedMounts = []string{"/dev", "/proc", "/sys", "/run"}

// ErrNotInitramfs is returned by SwitchRoot when the current root is not a
// ramfs or tmpfs: SwitchRoot deletes the old root's files, which must only
// ever happen to an initramfs.
var ErrNotInitramfs = errors.New("handoff: switch_root: / is not an initramfs (ramfs/tmpfs)")

// SwitchRoot makes newRoot (a mount point) the root directory, deletes the
// initramfs's files to free their memory, and executes init (a path inside
// newRoot, checked with FindInit) as the calling process, with argv and env.
// It must run as PID 1 from an initramfs. It returns only on failure; a
// failure before the root moved leaves the mounts where they were.
func SwitchRoot(newRoot, init string, argv, env []string) error {
	if os.Getpid() != 1 {
		return errors.New("handoff: switch_root: not PID 1")
	}
	var sfs unix.Statfs_t
	if err := unix.Statfs("/", &sfs); err != nil {
		return fmt.Errorf("handoff: switch_root: statfs /: %w", err)
	}
	if uint32(sfs.Type) != unix.RAMFS_MAGIC && uint32(sfs.Type) != unix.TMPFS_MAGIC {
		return ErrNotInitramfs
	}
	if same, err := sameFS("/", newRoot); err != nil || same {
		return fmt.Errorf("handoff: switch_root: %s is not a mount point (%v)", newRoot, err)
	}
	// Check every mount point before moving anything: a read-only root
	// cannot grow a missing directory.
	var move []string
	for _, m := range MovedMounts {
		if same, err := sameFS("/", m); err != nil || same {
			continue // absent or not a mount
		}
		dst := filepath.Join(newRoot, m)
		if err := os.MkdirAll(dst, 0o755); err != nil {
			return fmt.Errorf("handoff: switch_root: no mount point for %s: %w", m, err)
		}
		move = append(move, m)
	}
	for i, m := range move {
		if err := unix.Mount(m, filepath.Join(newRoot, m), "", unix.MS_MOVE, ""); err != nil {
			for _, back := range move[:i] {
				unix.Mount(filepath.Join(newRoot, back), back, "", unix.MS_MOVE, "")
			}
			return fmt.Errorf("handoff: switch_root: move %s: %w", m, err)
		}
	}
	oldRoot, err := unix.Open("/", unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return fmt.Errorf("handoff: switch_root: open /: %w", err)
	}
	if err := unix.Chdir(newRoot); err != nil {
		return fmt.Errorf("handoff: switch_root: chdir %s: %w", newRoot, err)
	}
	if err := unix.Mount(".", "/", "", unix.MS_MOVE, ""); err != nil {
		return fmt.Errorf("handoff: switch_root: move %s to /: %w", newRoot, err)
	}
	if err := unix.Chroot("."); err != nil {
		return fmt.Errorf("handoff: switch_root: chroot: %w", err)
	}
	if err := unix.Chdir("/"); err != nil {
		return fmt.Errorf("handoff: switch_root: chdir /: %w", err)
	}
	// Past the point of no return: free the initramfs (best effort; it
	// never descends into other file systems) and exec.
	deleteTree(oldRoot)
	unix.Close(oldRoot)
	if err := unix.Exec(init, argv, env); err != nil {
		return fmt.Errorf("handoff: switch_root: exec %s: %w", init, err)
	}
	return nil
}

func sameFS(a, b string) (bool, error) {
	var sa, sb unix.Stat_t
	if err := unix.Stat(a, &sa); err != nil {
		return false, err
	}
	if err := unix.Stat(b, &sb); err != nil {
		return false, err
	}
	return sa.Dev == sb.Dev, nil
}

// deleteTree removes everything below the directory fd that is on fd's file
// system.
func deleteTree(fd int) {
	var st unix.Stat_t
	if unix.Fstat(fd, &st) != nil {
		return
	}
	dup, err := unix.Dup(fd)
	if err != nil {
		return
	}
	d := os.NewFile(uintptr(dup), "")
	names, _ := d.Readdirnames(-1)
	d.Close()
	for _, n := range names {
		child, err := unix.Openat(fd, n, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW, 0)
		if err != nil {
			unix.Unlinkat(fd, n, 0) // a file or a symbolic link
			continue
		}
		var cst unix.Stat_t
		if unix.Fstat(child, &cst) == nil && cst.Dev == st.Dev {
			deleteTree(child)
			unix.Unlinkat(fd, n, unix.AT_REMOVEDIR)
		}
		unix.Close(child)
	}
}
