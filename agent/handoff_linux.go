package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/lastgasp/lastgasp/boards"
	"github.com/lastgasp/lastgasp/handoff"
	"github.com/lastgasp/lastgasp/netconsole/target"
)

// handoffConfig holds the paths and limits of the handoff.
type handoffConfig struct {
	NewRoot        string        // where root= is mounted: /newroot in the initramfs
	Filesystems    string        // /proc/filesystems
	IgnoreLoglevel string        // /sys/module/printk/parameters/ignore_loglevel
	RootTimeout    time.Duration // wait for the root= device to appear
	RootWait       time.Duration // ... with rootwait on the command line
}

func defaultHandoffConfig() handoffConfig {
	return handoffConfig{
		NewRoot:        "/newroot",
		Filesystems:    "/proc/filesystems",
		IgnoreLoglevel: "/sys/module/printk/parameters/ignore_loglevel",
		RootTimeout:    10 * time.Second,
		RootWait:       60 * time.Second,
	}
}

// handoff passes the machine to the main system the board (or
// lastgasp.handoff=) chose. If switch_root or kexec fails before the point
// of no return it logs why and falls back to the rescue shell, with logging
// still armed. As PID 1 it never returns.
func (a *agent) handoff(ctx context.Context, b *boards.Board, targets []armed) {
	a.ringHandoff(b)
	var err error
	switch b.Handoff {
	case boards.HandoffSwitchRoot:
		err = a.switchRoot(ctx, b, targets)
	case boards.HandoffKexec:
		err = a.kexec(ctx, b, targets)
	}
	if err != nil {
		a.Log.Errorf("handoff %s: FAILED after %v: %v; rescue shell instead", b.Handoff, time.Since(a.start).Round(time.Millisecond), err)
		a.ringHandoffFailed(b)
	}
	a.rescue()
}

// inspectTargets reads the armed targets back from configfs: their optional
// features, whether release prepending is on, the kernel's transmit error
// count where it keeps one. It returns one description per target and the
// targets with Release as the kernel has it.
func (a *agent) inspectTargets(targets []armed) ([]string, []target.Target) {
	root := filepath.Join(a.Config.ConfigfsMount, "netconsole")
	var desc []string
	var out []target.Target
	for _, t := range targets {
		tg := t.target
		st, err := target.Inspect(root, tg.Name)
		if err != nil {
			desc = append(desc, fmt.Sprintf("%s[%v]", tg.Name, err))
			continue
		}
		if !st.Enabled {
			desc = append(desc, fmt.Sprintf("%s[disabled]", tg.Name))
			continue
		}
		tg.Release = st.Release
		txe := "n/a"
		if st.TransmitErrors >= 0 {
			txe = fmt.Sprint(st.TransmitErrors)
		}
		desc = append(desc, fmt.Sprintf("%s[mac=%s features=%s transmit_errors=%s]", tg.Name, tg.RemoteMAC, st.Features, txe))
		out = append(out, tg)
	}
	return desc, out
}

// mountRoot mounts the root file system named by the kernel command line at
// the handoff's NewRoot, waiting for its device first.
func (a *agent) mountRoot(ctx context.Context, hc handoffConfig, readOnly bool) (handoff.Root, string, error) {
	if a.cmdlineErr != nil {
		return handoff.Root{}, "", fmt.Errorf("cmdline: %w", a.cmdlineErr)
	}
	r, err := handoff.ParseRoot(a.cmdline)
	if err != nil {
		return r, "", err
	}
	if readOnly {
		r.ReadOnly = true
	}
	t0 := time.Now()
	wait := hc.RootTimeout
	if r.Wait {
		wait = hc.RootWait
	}
	wctx, cancel := context.WithTimeout(ctx, wait)
	err = handoff.WaitDevice(wctx, r.Device)
	cancel()
	if err != nil {
		return r, "", err
	}
	time.Sleep(r.Delay)
	var avail []string
	if fsl, err := os.ReadFile(hc.Filesystems); err == nil {
		avail, _ = handoff.ParseFilesystems(bytes.NewReader(fsl))
	}
	fstype, err := handoff.Mount(r, hc.NewRoot, avail)
	if a.Log.Step("root", t0, err, "%s mounted on %s as %s", r, hc.NewRoot, fstype) != nil {
		return r, "", err
	}
	return r, fstype, nil
}

// switchRoot mounts root=, checks its init, and switches to it. Netconsole
// targets and ramoops live in the kernel and stay armed; configfs and pstore
// move along with /sys.
func (a *agent) switchRoot(ctx context.Context, b *boards.Board, targets []armed) error {
	if !a.Config.PID1 {
		return errors.New("switch_root needs PID 1")
	}
	hc := defaultHandoffConfig()
	r, _, err := a.mountRoot(ctx, hc, false)
	if err != nil {
		return err
	}
	init, err := handoff.FindInit(hc.NewRoot, r.Inits())
	if err != nil {
		handoff.Unmount(hc.NewRoot)
		return err
	}
	desc, _ := a.inspectTargets(targets)
	argv := append([]string{init}, r.InitArgs...)
	a.Log.Logf(levelNotice, "handoff: switch_root to %s exec %s targets=%d %s main_loglevel=%d (%v since init)",
		r.Device, strings.Join(argv, " "), len(desc), strings.Join(desc, " "), b.MainLogLevel, time.Since(a.start).Round(time.Millisecond))
	// The main system keeps the kernel's console loglevel: hand it the
	// policy's (warnings and worse), not the agent's verbose one.
	if werr := os.WriteFile(a.Config.Printk, []byte(fmt.Sprint(b.MainLogLevel)), 0); werr != nil {
		a.Log.Errorf("console loglevel %d for the main system: %v", b.MainLogLevel, werr)
	}
	// The main system gets the kernel's IPv6 defaults back (DAD as usual).
	if a.restoreIPv6 != nil {
		a.vlanMu.Lock()
		devs := append([]string(nil), a.vlanDevs...)
		a.vlanMu.Unlock()
		if rerr := a.restoreIPv6(devs); rerr != nil {
			a.Log.Errorf("ipv6 settings for the main system: %v", rerr)
		}
	}
	err = handoff.SwitchRoot(hc.NewRoot, init, argv, os.Environ())
	if err != nil {
		os.WriteFile(a.Config.Printk, []byte(fmt.Sprint(b.LogLevel)), 0)
	}
	// Only a failure comes back. Before the move the initramfs is intact;
	// after it the rescue shell may be gone with it.
	handoff.Unmount(hc.NewRoot)
	return err
}

// kexec loads the main kernel with a command line that re-arms every target
// (netconsole=, with the MAC the agent resolved) and ramoops, disables the
// targets (a NIC shut down under an armed target floods the console with
// transmit errors), and boots it.
func (a *agent) kexec(ctx context.Context, b *boards.Board, targets []armed) error {
	if b.Kexec.Kernel == "" {
		return errors.New("kexec: no kernel (kexec.kernel in the board or lastgasp.kexec_kernel=)")
	}
	hc := defaultHandoffConfig()
	// Kernel and initrd are read from root= when there is one, as a boot
	// loader reads /boot; without root= they are files in the initramfs.
	from := "/"
	var unmount func()
	if _, err := handoff.ParseRoot(a.cmdline); !errors.Is(err, handoff.ErrNoRoot) {
		if _, _, err := a.mountRoot(ctx, hc, true); err != nil {
			return err
		}
		from = hc.NewRoot
		unmount = func() { handoff.Unmount(hc.NewRoot) }
	}
	resolve := func(p string) (string, error) {
		if p == "" {
			return "", nil
		}
		return handoff.ResolveIn(from, p)
	}
	kernel, err := resolve(b.Kexec.Kernel)
	if err != nil {
		return err
	}
	initrd, err := resolve(b.Kexec.Initrd)
	if err != nil {
		return err
	}
	desc, tgs := a.inspectTargets(targets)
	var params []string
	for _, t := range tgs {
		params = append(params, t.Param())
		if b.VLAN != 0 {
			a.Log.Logf(levelWarn, "kexec: netconsole= names VLAN interface %s, which the agent created: the main kernel's netconsole finds it only if the main system creates it before netconsole loads", t.Dev)
		}
	}
	cmdline, err := handoff.KexecCmdline(handoff.KexecParams{
		Base: b.KernelCmdline, Netconsole: params, Ramoops: b.Ramoops.Params(),
		LogLevel: b.MainLogLevel, IgnoreLoglevel: b.IgnoreLoglevel, Extra: b.Kexec.Cmdline,
	})
	if err != nil {
		return err
	}
	t0 := time.Now()
	err = handoff.KexecLoad(kernel, initrd, cmdline)
	if unmount != nil {
		unmount()
	}
	if a.Log.Step("kexec", t0, err, "loaded %s initrd=%q from %s", b.Kexec.Kernel, b.Kexec.Initrd, from) != nil {
		return err
	}
	a.Log.Logf(levelNotice, "handoff: kexec %s targets=%d %s cmdline=%q (%v since init)",
		b.Kexec.Kernel, len(desc), strings.Join(desc, " "), cmdline, time.Since(a.start).Round(time.Millisecond))
	// The kernel sends a console line before write(2) returns; a short
	// pause still lets the NIC drain its queue before it is shut down.
	time.Sleep(50 * time.Millisecond)
	root := filepath.Join(a.Config.ConfigfsMount, "netconsole")
	for _, t := range tgs {
		if err := target.Disable(root, t.Name); err != nil {
			a.Log.Errorf("%v", err)
		}
	}
	err = handoff.KexecReboot()
	for _, t := range tgs {
		if cerr := target.Create(root, t); cerr != nil {
			a.Log.Errorf("re-arm after failed kexec: %v", cerr)
		}
	}
	return err
}
