package agent

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/lastgasp/lastgasp/boards"
	"github.com/lastgasp/lastgasp/pstore/efivars"
	"golang.org/x/sys/unix"
)

// efiPaths are the OS paths the EFI hygiene step uses (fields, so that a
// test can point them at a temporary tree).
type efiPaths struct {
	Firmware  string // /sys/firmware/efi: present when booted by UEFI
	Efivars   string // efivarfs mount point
	Pstore    string // pstore mount (records are deleted through it)
	KmsgBytes string // /sys/module/pstore/parameters/kmsg_bytes
	Mount     bool   // mount efivarfs (false: Efivars is a plain directory)
}

func defaultEFIPaths(pstore string) efiPaths {
	return efiPaths{Firmware: "/sys/firmware/efi", Efivars: efivars.DefaultMount, Pstore: pstore,
		KmsgBytes: "/sys/module/pstore/parameters/kmsg_bytes", Mount: true}
}

// efiResult is what the summary line says about EFI variables.
type efiResult struct {
	State        string // "off" (board does not ask), "none" (not booted by UEFI), "ok", "full", "error"
	Records      int    // pstore's variables left
	Bytes, Limit int64  // their charge, and the share's limit
	Dropped      int    // variables deleted by the hygiene rule
	DroppedBytes int64
}

func (r efiResult) String() string {
	if r.State == "off" || r.State == "none" {
		return "efi=" + r.State
	}
	return fmt.Sprintf("efi=%s efi_records=%d efi_bytes=%d/%d efi_dropped=%d", r.State, r.Records, r.Bytes, r.Limit, r.Dropped)
}

// efiHygiene keeps pstore's EFI variables within the board's share of the
// variable store. It runs after shipping, so what is left is what could not
// be shipped; if that (plus room for the next crash) passes the share, the
// oldest records are deleted, newest kept, and the deletion is logged. It
// deletes only pstore's variables (LINUX_EFI_CRASH_GUID, dump-type names),
// through the pstore file system; a store that is full of other variables
// is reported, never cleaned.
func (a *agent) efiHygiene(b *boards.Board, p efiPaths) efiResult {
	if b.EFI.MaxShare == 0 {
		return efiResult{State: "off"}
	}
	t0 := time.Now()
	if _, err := os.Stat(p.Firmware); err != nil {
		a.Log.Step("efi", t0, nil, "not booted by UEFI (%s missing): no EFI variables to account for", p.Firmware)
		return efiResult{State: "none"}
	}
	vars, space, err := a.efiList(p)
	if err != nil {
		a.Log.Step("efi", t0, err, "")
		return efiResult{State: "error"}
	}
	if !space.fromKernel {
		space.total = int64(b.EFI.StoreSize)
	}
	kmsg, _ := strconv.ParseInt(readTrim(p.KmsgBytes), 10, 64)
	if kmsg <= 0 {
		kmsg = 10240 // CONFIG_PSTORE_DEFAULT_KMSG_BYTES
	}
	pol := efivars.Policy{StoreSize: space.total, Share: b.EFI.MaxShare, NextCrash: efivars.NextCrash(kmsg, efivars.RecordSize)}
	res := efiResult{State: "ok", Limit: pol.Limit()}
	crashes := efivars.Crashes(vars)
	if err := pol.Validate(); err != nil {
		a.Log.Step("efi", t0, fmt.Errorf("%w (store size from %s); nothing deleted", err, space.source), "")
		res.State, res.Records, res.Bytes = "error", len(crashes), efivars.Sum(crashes)
		return res
	}
	keep, drop := pol.Plan(crashes)
	var dropped []string
	var failed []error
	for _, c := range drop {
		if err := a.efiDelete(p, c); err != nil {
			failed = append(failed, err)
			keep = append(keep, c)
			continue
		}
		res.Dropped++
		res.DroppedBytes += c.Charge()
		dropped = append(dropped, c.Name)
	}
	res.Records, res.Bytes = len(keep), efivars.Sum(keep)
	if res.Dropped > 0 {
		a.Log.Logf(levelWarn, "efi: dropped %d crash record variables (%d bytes), the oldest beyond the %d%% share (%d of %d bytes, %d kept for the next crash): %s; kept the newest %d (%d bytes)",
			res.Dropped, res.DroppedBytes, b.EFI.MaxShare, pol.Limit(), space.total, pol.NextCrash, strings.Join(dropped, " "), res.Records, res.Bytes)
	}
	// Free space: the kernel's figure if it has one, else the store size
	// less every variable's charge (deleted ones are reclaimed by the
	// firmware). Under the kernel's reserve plus one crash, the next crash
	// may be lost; lastgasp cannot make room without deleting what is not
	// its own, and does not.
	free := space.free
	others := int64(0)
	for _, v := range vars {
		if v.GUID != efivars.CrashGUID {
			others += v.Charge()
		}
	}
	if !space.fromKernel {
		free = space.total - others - res.Bytes
	}
	if need := pol.NextCrash + efivars.KernelReserve; free < need {
		res.State = "full"
		a.Log.Errorf("efi: variable store full: %d of %d bytes free (%s), the next crash needs up to %d plus the kernel's %d-byte reserve and may not be recorded; %d bytes are other variables, not lastgasp's: left alone",
			free, space.total, space.source, pol.NextCrash, efivars.KernelReserve, others)
	}
	a.Log.Step("efi", t0, errors.Join(failed...), "%d pstore variables, %d bytes (limit %d = %d%% of %d bytes, %s); dropped %d; %d other variables, %d bytes; free %d",
		res.Records, res.Bytes, pol.Limit(), b.EFI.MaxShare, space.total, space.source, res.Dropped, len(vars)-len(crashes), others, free)
	return res
}

// efivarfsMagic is EFIVARFS_MAGIC (include/uapi/linux/magic.h).
const efivarfsMagic = 0xde5e81e4

type efiSpace struct {
	total, free int64
	fromKernel  bool
	source      string
}

// efiList mounts efivarfs afresh (its listing is built at mount time, and
// pstore's deletions do not reach a mounted one) and lists every variable.
// It leaves efivarfs mounted for the rescue shell.
func (a *agent) efiList(p efiPaths) ([]efivars.Var, efiSpace, error) {
	var sp efiSpace
	if p.Mount {
		_ = unix.Unmount(p.Efivars, 0)
		if err := unix.Mount("efivarfs", p.Efivars, "efivarfs", unix.MS_NOSUID|unix.MS_NOEXEC|unix.MS_NODEV, ""); err != nil {
			return nil, sp, fmt.Errorf("efi: mount efivarfs on %s: %w", p.Efivars, err)
		}
	}
	vars, err := efivars.List(p.Efivars)
	if err != nil {
		return nil, sp, err
	}
	// efivarfs' statfs reports QueryVariableInfo's figures (Debian's 6.1
	// does: 262044 bytes for OVMF_VARS_4M.fd); a kernel that reports no
	// blocks leaves it to the board. Only efivarfs' own figures count (a
	// directory on another file system reports that one's).
	var st unix.Statfs_t
	if err := unix.Statfs(p.Efivars, &st); err == nil && uint32(st.Type) == efivarfsMagic && st.Blocks > 0 && st.Bsize > 0 {
		sp.total, sp.free = int64(st.Blocks)*st.Bsize, int64(st.Bavail)*st.Bsize
		sp.fromKernel, sp.source = true, "QueryVariableInfo via efivarfs"
		return vars, sp, nil
	}
	sp.source = "board efi.store_size"
	return vars, sp, nil
}

// efiDelete removes one of pstore's variables through the pstore file
// system (unlinking dmesg-efi-<id> erases the variable). Only variables
// Crashes returned reach here, so nothing but pstore's is ever deleted.
func (a *agent) efiDelete(p efiPaths, c efivars.Crash) error {
	for _, n := range c.PstoreNames() {
		err := os.Remove(filepath.Join(p.Pstore, n))
		if err == nil {
			return nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("efi: delete %s (%s): %w", n, c.Name, err)
		}
	}
	return fmt.Errorf("efi: delete %s: no pstore file %s: %w", c.Name, c.PstoreNames()[0], os.ErrNotExist)
}
