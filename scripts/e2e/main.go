// Command e2e runs lastgasp's end-to-end scenarios: real Debian kernels booted
// in QEMU (TCG) with the lastgasp image, a real lastgaspd on loopback, and
// QEMU's user-mode network (the guest reaches the host's loopback at
// 10.0.2.2). It prints one line per scenario, "PASS <name> [details]" or
// "FAIL <name>: <reason>", then "N passed, N failed", and exits non-zero if
// any failed.
//
// With -demo it instead boots the image once with a collector, streams the
// logs that arrive, and shows where the crash record lands (make run).
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/lastgasp/lastgasp/boards"
)

// Scenario is one end-to-end check. It returns details for the PASS line.
type Scenario func(e *Env) (string, error)

var scenarios = map[string]Scenario{
	"panic-roundtrip":           panicRoundtrip,
	"hang-console-record":       hangConsoleRecord,
	"pstore-pmsg":               pstorePmsg,
	"hang-after-switch-root":    hangAfterSwitchRoot,
	"dhcp-silent":               dhcpSilent,
	"arp-silent":                arpSilent,
	"two-receivers":             twoReceivers,
	"nic-e1000":                 nicE1000,
	"nic-by-driver":             nicByDriver,
	"pstore-collector-down":     pstoreCollectorDown,
	"pstore-duplicate":          pstoreDuplicate,
	"pstore-killed-mid-upload":  pstoreKilledMidUpload,
	"pstore-disk-full":          pstoreDiskFull,
	"pstore-corrupt":            pstoreCorrupt,
	"handoff-switch-root":       handoffSwitchRoot,
	"handoff-kexec":             handoffKexec,
	"forward-rsyslog":           forwardRsyslog,
	"ramoops-unsafe":            ramoopsUnsafe,
	"nic-second-gets-lease":     nicSecondGetsLease,
	"receiver-routed":           receiverRouted,
	"receiver-dhcp-option7":     receiverDHCPOption7,
	"ip-static":                 ipStatic,
	"receiver-ipv6":             receiverIPv6,
	"receiver-dhcpv6":           receiverDHCPv6,
	"receiver-ipv6-only":        receiverIPv6Only,
	"receiver-dhcpv6-stateless": receiverDHCPv6Stateless,
	"pstore-tls":                pstoreTLS,
	"nic-vlan":                  nicVLAN,
	"nic-vlan-dracut":           nicVLANDracut,
	"receiver-dhcp-site-option": receiverDHCPSiteOption,
	"fleet-guest-among-many":    fleetGuestAmongMany,
	"fleet-two-collectors":      fleetTwoCollectors,
	"crash-kinds":               crashKinds,
	"crash-signatures":          crashSignatures,
	"crash-alert":               crashAlert,
	"early-boot-complete":       earlyBootComplete,
	"pstore-efi-coldboot":       pstoreEFIColdboot,
	"pstore-efi-nvram-hygiene":  pstoreEFINVRAMHygiene,
	"pstore-efi-store-full":     pstoreEFIStoreFull,
	"pstore-efi-shared-store":   pstoreEFISharedStore,
	"userdata-identity":         userdataIdentity,
	"panic-roundtrip-6.12":      panicRoundtrip612,
	"rescue-shell":              rescueShell,
	"arm64-panic-roundtrip":     arm64PanicRoundtrip,
	"arm64-hang-console-record": arm64HangConsoleRecord,
	"arm64-dt-no-ramoops":       arm64DTNoRamoops,
}

func main() {
	os.Exit(run())
}

func run() int {
	var (
		only      = flag.String("scenario", "", "comma-separated scenarios to run (default: all)")
		kernel    = flag.String("kernel", "build/kernel/linux-image-amd64/vmlinux", "kernel to boot (vmlinux of the main board's package: the Makefile's build/kernel/<package>)")
		initrd    = flag.String("initrd", "build/qemu-x86_64/initramfs.cpio.xz", "lastgasp image")
		initrdTLS = flag.String("initrd-tls", "build/qemu-x86_64-tls/initramfs.cpio.xz", "lastgasp image with TLS (boards/qemu-x86_64-tls.board), for pstore-tls")
		boardFile = flag.String("board", "boards/qemu-x86_64.board", "board profile (for kernel.cmdline)")
		collector = flag.String("collector", "build/bin/lastgaspd", "lastgaspd binary")
		work      = flag.String("work", "build/e2e", "scratch directory (logs of each scenario stay here)")
		verbose   = flag.Bool("v", false, "copy guest consoles to stderr")
		demo      = flag.Bool("demo", false, "boot once, stream the collector's logs, show the stored crash record")
		timing    = flag.Int("timing", 0, "boot N times and print the boot-to-armed breakdown from kernel timestamps")
	)
	flag.Parse()
	b, err := boards.Load(*boardFile)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 2
	}
	for _, f := range []string{*kernel, *initrd, *collector} {
		if _, err := os.Stat(f); err != nil {
			fmt.Fprintf(os.Stderr, "e2e: %v (run make image collector first)\n", err)
			return 2
		}
	}
	newEnv := func(name string) (*Env, error) {
		dir := filepath.Join(*work, name)
		os.RemoveAll(dir)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
		abs, _ := filepath.Abs(dir)
		// The main board's machine: make run and make timing with
		// BOARD=qemu-aarch64 boot the virt machine, with the DT patch.
		m, err := machineFor(b, *boardFile)
		if err != nil {
			return nil, err
		}
		return &Env{Kernel: *kernel, Initrd: *initrd, InitrdTLS: *initrdTLS, Cmdline: b.KernelCmdline, Collector: *collector, Dir: abs, Verbose: *verbose, Machine: m}, nil
	}
	if *timing > 0 {
		e, err := newEnv("timing")
		if err != nil {
			fmt.Fprintln(os.Stderr, "e2e:", err)
			return 2
		}
		defer e.cleanup()
		if err := runTiming(e, *timing); err != nil {
			fmt.Fprintln(os.Stderr, "timing:", err)
			return 1
		}
		return 0
	}
	if *demo {
		e, err := newEnv("demo")
		if err != nil {
			fmt.Fprintln(os.Stderr, "e2e:", err)
			return 2
		}
		defer e.cleanup()
		if err := runDemo(e); err != nil {
			fmt.Fprintln(os.Stderr, "demo:", err)
			return 1
		}
		return 0
	}

	var names []string
	if *only != "" {
		for _, n := range strings.Split(*only, ",") {
			if _, ok := scenarios[n]; !ok {
				fmt.Fprintf(os.Stderr, "e2e: unknown scenario %q\n", n)
				return 2
			}
			names = append(names, n)
		}
	} else {
		for n := range scenarios {
			names = append(names, n)
		}
		sort.Strings(names)
	}
	passed, failed := 0, 0
	for _, n := range names {
		e, err := newEnv(n)
		if err == nil {
			t0 := time.Now()
			var details string
			details, err = scenarios[n](e)
			e.cleanup()
			if err == nil {
				passed++
				fmt.Printf("PASS %s %s(%.1fs)\n", n, strings.TrimSpace(details+" "), time.Since(t0).Seconds())
				continue
			}
		}
		failed++
		fmt.Printf("FAIL %s: %v (logs in %s)\n", n, err, filepath.Join(*work, n))
	}
	fmt.Printf("%d passed, %d failed\n", passed, failed)
	if failed > 0 {
		return 1
	}
	return 0
}
