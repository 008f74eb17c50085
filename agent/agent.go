package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/lastgasp/lastgasp/boards"
	"github.com/lastgasp/lastgasp/netconsole/nexthop"
	"github.com/lastgasp/lastgasp/netconsole/target"
	"github.com/lastgasp/lastgasp/pstore/ramoops"
	"github.com/lastgasp/lastgasp/pstore/records"
	"github.com/lastgasp/lastgasp/pstore/ship"
	"golang.org/x/sys/unix"
)

// config holds every OS path the agent touches, so that tests and developers
// can point them elsewhere.
type config struct {
	BoardFile     string // embedded board profile
	Cmdline       string // /proc/cmdline
	Kmsg          string // /dev/kmsg
	ModulesRoot   string // root holding lib/modules/<release>
	SysClassNet   string // /sys/class/net
	ConfigfsMount string // /sys/kernel/config
	PstoreMount   string // /sys/fs/pstore
	Printk        string // /proc/sys/kernel/printk
	PrintkDevkmsg string // /proc/sys/kernel/printk_devkmsg
	BootID        string // /proc/sys/kernel/random/boot_id
	SysrqTrigger  string // /proc/sysrq-trigger
	RamoopsParams string // /sys/module/ramoops/parameters
	PstoreParams  string // /sys/module/pstore/parameters
	SysModule     string // /sys/module (which modules are loaded or built in)
	SysBusPCI     string // /sys/bus/pci/devices (which PCI drivers have a device)
	IPv6Conf      string // /proc/sys/net/ipv6/conf
	Iomem         string // /proc/iomem
	DeviceTree    string // /sys/firmware/devicetree/base
	Console       string // /dev/console
	Shell         string // rescue shell
	PID1          bool   // mount /proc, /sys, /dev and never return
	MaxRecordSize int64  // larger pstore records are reported, kept, not shipped
	// ClientCert and ClientKey are this host's credential for https://
	// uploads (PEM). They are not in the image, which a whole fleet boots:
	// each host supplies them at boot, e.g. in a second initrd (README,
	// "Credentials"). The collector's CA is at the board's upload.ca.
	ClientCert string // /etc/lastgasp/client.pem
	ClientKey  string // /etc/lastgasp/client.key
}

// defaultConfig returns the paths of a booted initramfs.
func defaultConfig() config {
	return config{
		BoardFile:     "/etc/lastgasp/board",
		Cmdline:       "/proc/cmdline",
		Kmsg:          "/dev/kmsg",
		ModulesRoot:   "/",
		SysClassNet:   "/sys/class/net",
		ConfigfsMount: "/sys/kernel/config",
		PstoreMount:   "/sys/fs/pstore",
		Printk:        "/proc/sys/kernel/printk",
		PrintkDevkmsg: "/proc/sys/kernel/printk_devkmsg",
		BootID:        "/proc/sys/kernel/random/boot_id",
		SysrqTrigger:  "/proc/sysrq-trigger",
		RamoopsParams: "/sys/module/ramoops/parameters",
		PstoreParams:  "/sys/module/pstore/parameters",
		SysModule:     "/sys/module",
		SysBusPCI:     "/sys/bus/pci/devices",
		IPv6Conf:      "/proc/sys/net/ipv6/conf",
		Iomem:         "/proc/iomem",
		DeviceTree:    "/sys/firmware/devicetree/base",
		Console:       "/dev/console",
		Shell:         "/bin/sh",
		PID1:          os.Getpid() == 1,
		MaxRecordSize: 4 << 20,
		ClientCert:    "/etc/lastgasp/client.pem",
		ClientKey:     "/etc/lastgasp/client.key",
	}
}

// agent sequences the boot-time stages. Each stage logs what it did and how
// long it took; a failed stage is logged in one line and the agent goes on to
// the stages that do not depend on it, then to the rescue shell.
type agent struct {
	Config config
	Log    *logger

	start time.Time
	// restoreIPv6 puts back the IPv6 settings tuneIPv6 changed; the
	// switch_root handoff calls it (sysctls outlive the initramfs).
	restoreIPv6 func(also []string) error
	// vlanDevs are the VLAN interfaces the agent created.
	vlanMu   sync.Mutex
	vlanDevs []string
	// ring is lastgasp's own RAM log (ring.go), nil without one.
	ring *ringState

	// The kernel command line, read once by loadBoard (cmdlineErr if it
	// could not be), and its lastgasp.* arguments that are not board
	// settings; every later stage uses these instead of reading it again.
	cmdline    string
	cmdlineErr error
	args       boards.Cmdline
}

// armed describes one enabled netconsole target.
type armed struct {
	target target.Target
	hop    nexthop.Hop
}

// lateModulesGrace is how long the board's modules.late wait for the network
// stage before loading anyway.
const lateModulesGrace = time.Second

// Run runs every stage, then the handoff. As PID 1 it never returns.
func (a *agent) Run(ctx context.Context) {
	a.start = time.Now()
	c := a.Config
	if c.PID1 {
		mountEarly(a.Log)
		a.Log.Reopen(c.Kmsg)
		attachConsole(c.Console)
	}
	// Writes to /dev/kmsg are rate limited to 10 per 5 s by default; the
	// agent's step lines would be silently dropped after the tenth.
	// The sysctl wants the trailing newline.
	if err := os.WriteFile(c.PrintkDevkmsg, []byte("on\n"), 0); err != nil {
		a.Log.Errorf("printk_devkmsg: %v (some agent lines may be rate limited)", err)
	}
	a.Log.Infof("start pid=%d", os.Getpid())

	b, test := a.loadBoard()
	if b == nil {
		a.rescue()
		return
	}
	// Raise the console loglevel first: the agent's own info lines must
	// reach the console now and netconsole once armed.
	if err := os.WriteFile(c.Printk, []byte(fmt.Sprint(b.LogLevel)), 0); err != nil {
		a.Log.Errorf("console loglevel %d: %v", b.LogLevel, err)
	}
	if b.IgnoreLoglevel {
		a.setIgnoreLoglevel()
	}
	a.startRing(b, readTrim(c.BootID))

	// Under one (emulated) CPU every module init competes with the network
	// bring-up: load what netconsole needs first. (Loading configfs,
	// netconsole and ramoops alongside the bring-up instead was measured:
	// no gain, the NIC step and carrier wait grew by what the modules took.)
	a.loadModules(b, b.Modules, "modules")
	a.mountFS("configfs", c.ConfigfsMount)

	// The rest (storage, and ramoops on boards that list it there) loads
	// once the network stage is done (loading it alongside costs ~120 ms
	// of time-to-armed under TCG), or after lateModulesGrace if the
	// network is slow. The QEMU boards list ramoops in "modules": armed
	// before the network, a crash in the bring-up is kept.
	late, netDone := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(late)
		select {
		case <-netDone:
		case <-time.After(lateModulesGrace):
		}
		a.loadModules(b, b.ModulesLate, "modules.late")
	}()

	bootID := readTrim(c.BootID)
	release := kernelRelease()
	targets, host := a.network(ctx, b, bootID)
	a.ringTestPanic(test)
	close(netDone)
	a.replayKmsg(ctx, targets)
	<-late
	a.mountFS("pstore", c.PstoreMount)

	ramoops := a.checkRamoops(b)

	recs, readErrs := a.readRecords()
	shipped, kept := a.shipRecords(ctx, b, host, bootID, release, recs)
	ringSum := a.shipRing(ctx, b, host, bootID, release, recs)
	// What could not be shipped stays in NVRAM: within the board's share.
	efi := a.efiHygiene(b, defaultEFIPaths(c.PstoreMount))

	var tl []string
	for _, t := range targets {
		tl = append(tl, fmt.Sprintf("%s->%s:%d/%s", t.target.Name, t.target.RemoteIP, t.target.RemotePort, t.target.RemoteMAC))
	}
	a.Log.Logf(levelNotice, "summary host=%s boot=%s targets=%d [%s] ramoops=%s records=%d shipped=%d kept=%d unreadable=%d %s handoff=%s total=%v %s",
		host, bootID, len(targets), strings.Join(tl, " "), ramoops, len(recs), shipped, kept, len(readErrs), efi, b.Handoff, time.Since(a.start).Round(time.Millisecond), ringSum)

	if test.TestPanic {
		if len(recs) == 0 && len(readErrs) == 0 {
			a.Log.Logf(levelWarn, "test_panic: no crash record on this boot; panicking the kernel via sysrq")
			time.Sleep(100 * time.Millisecond)
			if err := os.WriteFile(c.SysrqTrigger, []byte("c"), 0); err != nil {
				a.Log.Errorf("test_panic: %v", err)
			}
		} else {
			a.Log.Infof("test_panic: this boot found crash records; not panicking")
		}
	}
	a.handoff(ctx, b, targets)
}

func (a *agent) loadBoard() (*boards.Board, boards.Cmdline) {
	t0 := time.Now()
	b, err := boards.Load(a.Config.BoardFile)
	if err != nil {
		a.Log.Step("board", t0, err, "")
		return nil, boards.Cmdline{}
	}
	cl, err := os.ReadFile(a.Config.Cmdline)
	if err != nil {
		a.Log.Errorf("cmdline: %v", err)
		a.cmdlineErr = err
	}
	a.cmdline = string(cl)
	test, err := boards.ApplyCmdline(b, a.cmdline)
	if err != nil {
		// The board's own values stay; a bad override is not fatal.
		a.Log.Errorf("cmdline: ignoring lastgasp arguments: %v", err)
		b, _ = boards.Load(a.Config.BoardFile)
		test = boards.Cmdline{}
	}
	if test.VLANProblem != nil {
		a.Log.Errorf("cmdline: ignoring dracut's vlan=: %v", test.VLANProblem)
	}
	a.args = test
	a.Log.Step("board", t0, nil, "%s receivers=%v upload=%s nic=%v", b.Name, b.Receivers, b.Upload, b.NIC)
	return b, test
}

// ramoopsSafe decides whether to load ramoops with the board's region: not
// when another pstore backend is already registered (the kernel takes one),
// and never over RAM the kernel uses.
func (a *agent) ramoopsSafe(b *boards.Board) bool {
	t0 := time.Now()
	if be := ramoops.Backend(a.Config.PstoreParams); be != "" {
		a.Log.Step("ramoops", t0, nil, "pstore backend %s already registered (kernel command line or firmware); not loading ramoops", be)
		return false
	}
	if !b.Ramoops.Enabled() {
		return false
	}
	addr, size := b.Ramoops.MemAddress, b.Ramoops.MemSize
	if b.Ramoops.FromDT {
		var ok bool
		if addr, size, ok = a.dtRamoopsRegion(b, t0); !ok {
			return false
		}
	}
	if err := ramoops.Check(a.Config.Iomem, addr, size); err != nil {
		a.Log.Step("ramoops", t0, fmt.Errorf("refusing to arm: %w", err), "")
		return false
	}
	return true
}

func (a *agent) mountFS(fstype, dir string) {
	t0 := time.Now()
	a.Log.Step("mount", t0, mount(fstype, dir), "%s at %s", fstype, dir)
}

// checkRamoops reports the ramoops region the kernel actually armed.
func (a *agent) checkRamoops(b *boards.Board) string {
	t0 := time.Now()
	if !b.Ramoops.Enabled() {
		a.Log.Step("ramoops", t0, nil, "not configured for this board")
		return "off"
	}
	addr := readTrim(filepath.Join(a.Config.RamoopsParams, "mem_address"))
	size := readTrim(filepath.Join(a.Config.RamoopsParams, "mem_size"))
	if addr == "" || size == "" || size == "0" {
		want := b.Ramoops.Params()
		if b.Ramoops.FromDT {
			want = "the device tree's ramoops node"
		}
		a.Log.Step("ramoops", t0, fmt.Errorf("ramoops not loaded or no region (want %s)", want), "")
		return "off"
	}
	a.Log.Step("ramoops", t0, nil, "armed mem_address=%s mem_size=%s record_size=%s", addr, size, readTrim(filepath.Join(a.Config.RamoopsParams, "record_size")))
	return "armed"
}

func (a *agent) readRecords() ([]records.Record, []error) {
	t0 := time.Now()
	recs, errs := records.Read(a.Config.PstoreMount, a.Config.MaxRecordSize)
	for _, err := range errs {
		a.Log.Errorf("pstore: %v (record kept)", err)
	}
	// ".enc.z": data the kernel could not decompress. Inflate it here
	// (bounded); if it is not a valid stream it is shipped raw and
	// flagged corrupt, never dropped.
	for i, r := range recs {
		nr, err := records.Inflate(r, a.Config.MaxRecordSize)
		switch {
		case err != nil && nr.Corrupt:
			a.Log.Errorf("pstore: %v (shipping the compressed data raw, flagged corrupt)", err)
		case err != nil:
			a.Log.Errorf("pstore: %v (shipping the compressed data raw)", err)
		case nr.Decompressed:
			a.Log.Infof("pstore: %s: decompressed %d -> %d bytes", r.Name, r.Size, nr.Size)
		}
		recs[i] = nr
	}
	var names []string
	for _, r := range recs {
		names = append(names, fmt.Sprintf("%s(%d)", r.Name, len(r.Data)))
	}
	a.Log.Step("pstore", t0, nil, "%d records: %s", len(recs), strings.Join(names, " "))

	// Multi-part dmesg records of one crash: each still ships (and is
	// removed) on its own, carrying its crash id and part number; the
	// crash line comes from the parts put back together.
	crashes, skipped := records.Crashes(recs)
	for _, s := range skipped {
		a.Log.Logf(levelWarn, "pstore: %s; shipping them as single records", s)
	}
	inCrash := map[int]bool{}
	for _, c := range crashes {
		if len(c.Records) == 1 {
			continue // a crash in one record is just that record
		}
		parts := make([][]byte, len(c.Records))
		for p, i := range c.Records {
			recs[i].CrashID, recs[i].Part, recs[i].Parts = c.ID, p+1, len(c.Records)
			parts[p] = recs[i].Data
			inCrash[i] = true
		}
		a.Log.Infof("pstore: crash %s: %d parts", c.ID, len(c.Records))
		a.crashLine(c.ID, records.Assemble(parts))
	}
	for i, r := range recs {
		if !inCrash[i] {
			a.crashLine(r.Name, r.Data)
		}
	}
	return recs, errs
}

// crashLine logs one line per crash, through netconsole too: a live
// receiver sees what happened even if the upload fails.
func (a *agent) crashLine(name string, data []byte) {
	line := records.PanicLine(data)
	if line == "" {
		return
	}
	trace := ""
	if f := records.CallTrace(data, 4); len(f) > 0 {
		trace = " | " + strings.Join(f, " < ")
	}
	a.Log.Logf(levelWarn, "crash record %s: %s%s", name, line, trace)
}

func (a *agent) shipRecords(ctx context.Context, b *boards.Board, host, bootID, release string, all []records.Record) (shipped, kept int) {
	// A record not read in full (too large, unreadable) was reported by
	// readRecords and stays; it must not hold up the others.
	var recs []records.Record
	for _, r := range all {
		if r.Complete() {
			recs = append(recs, r)
		}
	}
	kept = len(all) - len(recs)
	if len(recs) == 0 {
		return 0, kept
	}
	t0 := time.Now()
	c, desc, insecure, err := a.uploadClient(b, host, bootID, release)
	if err != nil {
		a.Log.Step("ship", t0, err, "")
		return 0, len(all)
	}
	if insecure {
		a.Log.Logf(levelWarn, "ship: %d records to %s over plain http: INSECURE (not encrypted, not authenticated; for labs and QEMU only)", len(recs), desc)
	} else {
		a.Log.Infof("ship: %d records to %s", len(recs), desc)
	}
	sctx, cancel := context.WithTimeout(ctx, b.UploadTimeout)
	defer cancel()
	shipped, notShipped, err := ship.ShipAll(sctx, c, recs, records.Remove, a.Log.Infof)
	kept += notShipped
	left, _ := os.ReadDir(a.Config.PstoreMount)
	a.Log.Step("ship", t0, err, "shipped=%d kept=%d to %s; %d files left in %s", shipped, kept, b.Upload, len(left), a.Config.PstoreMount)
	return shipped, kept
}

// uploadTLS reads what an https:// upload needs: the collector's CA at the
// board's upload.ca (pinned: the only root trusted), and this host's client
// certificate and key, supplied per host at boot. Without a CA it refuses;
// without a credential it goes on, and a collector that checks identities
// will refuse the upload.
func (a *agent) uploadTLS(b *boards.Board) (*ship.TLSConfig, string, error) {
	if !ship.TLSBuilt {
		return nil, "", fmt.Errorf("upload %s: %w", b.Upload, ship.ErrTLSNotBuilt)
	}
	ca, err := os.ReadFile(b.UploadCA)
	if err != nil {
		return nil, "", fmt.Errorf("collector CA (upload.ca): %w; refusing https without a pinned CA", err)
	}
	tc := &ship.TLSConfig{CA: ca}
	desc := "collector CA " + b.UploadCA + " pinned"
	cert, cerr := os.ReadFile(a.Config.ClientCert)
	key, kerr := os.ReadFile(a.Config.ClientKey)
	switch {
	case cerr == nil && kerr == nil:
		tc.Cert, tc.Key = cert, key
		desc += ", client certificate " + a.Config.ClientCert
	case errors.Is(cerr, os.ErrNotExist) && errors.Is(kerr, os.ErrNotExist):
		desc += ", NO client certificate (none supplied at boot: " + a.Config.ClientCert + ")"
	default:
		return nil, "", fmt.Errorf("client credential: %w", errors.Join(cerr, kerr))
	}
	if err := tc.Check(); err != nil {
		return nil, "", err
	}
	return tc, desc, nil
}

func orHost(h, def string) string {
	if h != "" {
		return h
	}
	return def
}

// macHost names a host after its NIC's MAC address ("52-54-00-12-34-56").
func macHost(ifname string) string {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil || len(ifi.HardwareAddr) == 0 {
		return "unknown"
	}
	return strings.ReplaceAll(ifi.HardwareAddr.String(), ":", "-")
}

func readTrim(path string) string {
	b, _ := os.ReadFile(path)
	return strings.TrimSpace(string(b))
}

func kernelRelease() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return ""
	}
	return unix.ByteSliceToString(u.Release[:])
}
