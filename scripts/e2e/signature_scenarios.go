package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/chromedp/chromedp"
)

// crashCause is one way to crash the stock Debian guest kernel from its
// rescue shell (the Debian kernel has no lkdtm), and the title the kernel
// prints for it.
type crashCause struct {
	// QEMU are extra QEMU arguments the cause needs at boot.
	QEMU func(dir string) ([]string, error)
	// Trigger crashes the running guest.
	Trigger func(vm *VM) error
	// Title is a substring of the report's title line.
	Title string
}

// slowDisk is a virtio disk, throttled to 2 KB/s by the trigger: writing a few MB to it and
// closing it leaves the closing task in uninterruptible sleep (D) in
// sync_blockdev for minutes, which the hung-task detector reports.
func slowDisk(dir string) ([]string, error) {
	img := filepath.Join(dir, "slow.img")
	if err := os.WriteFile(img, nil, 0o644); err != nil {
		return nil, err
	}
	if err := os.Truncate(img, 16<<20); err != nil {
		return nil, err
	}
	return []string{"-drive", "file=" + img + ",format=raw,if=none,id=slow",
		"-device", "virtio-blk-pci,drive=slow"}, nil
}

var crashCauses = map[string]crashCause{
	// sysrq: kernel/sysrq.c sysrq_handle_crash panics.
	"sysrq": {Trigger: func(vm *VM) error { return vm.Type(`echo c > /proc/sysrq-trigger`) },
		Title: "Kernel panic - not syncing: sysrq triggered crash"},
	// nmi: an NMI with no reason (QEMU's monitor "nmi"), and
	// kernel.unknown_nmi_panic (arch/x86/kernel/nmi.c unknown_nmi_error).
	"nmi": {Trigger: func(vm *VM) error {
		if err := vm.Type(`echo 1 > /proc/sys/kernel/unknown_nmi_panic; echo NMI""ARMED`); err != nil {
			return err
		}
		if _, err := vm.WaitSerial(20*time.Second, 0, "NMIARMED"); err != nil {
			return err
		}
		return vm.Monitor("nmi")
	}, Title: "Kernel panic - not syncing: NMI: Not continuing"},
	// oom: vm.panic_on_oom and a shell reading /dev/zero into a variable
	// (overcommit on, so the allocation succeeds and the pages run out).
	"oom": {Trigger: func(vm *VM) error {
		return vm.Type(`echo 1 > /proc/sys/vm/overcommit_memory; echo 1 > /proc/sys/vm/panic_on_oom; x=$(cat /dev/zero)`)
	}, Title: "Kernel panic - not syncing: Out of memory"},
	// hung: kernel.hung_task_panic with a 2 s timeout, and a task stuck
	// writing back to the throttled disk.
	"hung": {QEMU: slowDisk, Trigger: func(vm *VM) error {
		// Throttled only now: the partition scan at boot reads it too.
		if err := vm.Monitor("block_set_io_throttle slow 2048 0 0 0 0 0"); err != nil {
			return err
		}
		from := len(vm.Serial())
		if err := vm.Type(`echo 2 > /proc/sys/kernel/hung_task_timeout_secs; echo 1 > /proc/sys/kernel/hung_task_panic; cat /bbin/bb > /dev/vda`); err != nil {
			return err
		}
		// The throttle outlives the reset: lift it once the kernel has
		// panicked, or the next boot's partition scan crawls.
		if _, err := vm.WaitSerial(time.Minute, from, "Kernel panic - not syncing: hung_task"); err != nil {
			return err
		}
		return vm.Monitor("block_set_io_throttle slow 0 0 0 0 0 0")
	}, Title: "blocked for more than"},
}

// crashGuest is a guest that is crashed on purpose, again and again: each
// crash reboots it (panic=1), and the boot after ships the record.
type crashGuest struct {
	vm   *VM
	c    *Collector
	host string
	off  int // serial offset of the last "rescue shell" line
}

// bootCrashGuest boots a guest named host (lastgasp.host=) that reports to
// c, with the QEMU arguments the causes need, up to its rescue shell.
func bootCrashGuest(e *Env, c *Collector, host string, causes ...string) (*crashGuest, error) {
	var qemu []string
	for _, name := range causes {
		if cc := crashCauses[name]; cc.QEMU != nil {
			a, err := cc.QEMU(e.Dir)
			if err != nil {
				return nil, err
			}
			qemu = append(qemu, a...)
		}
	}
	// The lab image: the hung cause writes to a virtio disk (virtio_blk).
	vm, err := e.Boot(host, BootOpts{Initrd: labInitrd(e), Append: agentArgs(c, "lastgasp.host="+host), QEMU: qemu, Timeout: 10 * time.Minute})
	if err != nil {
		return nil, err
	}
	g := &crashGuest{vm: vm, c: c, host: host}
	if g.off, err = vm.WaitSerial(bootTimeout, 0, "handoff: rescue shell"); err != nil {
		return nil, fmt.Errorf("%s: first boot: %w", host, err)
	}
	return g, nil
}

// crash crashes the guest with cause, and waits for the reboot, the
// record's upload and the next rescue shell. It returns the stored
// record's path.
func (g *crashGuest) crash(cause string) (string, error) {
	cc, ok := crashCauses[cause]
	if !ok {
		return "", fmt.Errorf("unknown crash cause %q", cause)
	}
	before := g.c.CrashRecords()
	time.Sleep(500 * time.Millisecond) // the shell reads its first line
	if err := cc.Trigger(g.vm); err != nil {
		return "", fmt.Errorf("%s: %s: %w", g.host, cause, err)
	}
	// The offset is past the last shell line: the next one is the next boot's.
	off, err := g.vm.WaitSerial(3*time.Minute, g.off, "lastgasp: summary")
	if err != nil {
		return "", fmt.Errorf("%s: %s: no reboot: %w", g.host, cause, err)
	}
	if g.off, err = g.vm.WaitSerial(time.Minute, off, "handoff: rescue shell"); err != nil {
		return "", fmt.Errorf("%s: %s: no rescue shell after the reboot: %w", g.host, cause, err)
	}
	var stored string
	err = waitFor(30*time.Second, func() (bool, string) {
		for p, data := range g.c.CrashRecords() {
			if _, old := before[p]; !old && strings.Contains(p, "/"+g.host+"/") && strings.Contains(string(data), cc.Title) {
				stored = p
				return true, ""
			}
		}
		return false, fmt.Sprintf("%s: %s: no new record with %q", g.host, cause, cc.Title)
	})
	return stored, err
}

// crashKinds crashes one guest once with each cause and keeps the records
// (the signature package's testdata is captured this way): each kind has
// its own signature.
func crashKinds(e *Env) (string, error) {
	c, err := e.StartCollector("collector")
	if err != nil {
		return "", err
	}
	kinds := []string{"sysrq", "nmi", "oom", "hung"}
	g, err := bootCrashGuest(e, c, "kinds", kinds...)
	if err != nil {
		return "", err
	}
	var got []string
	for _, k := range kinds {
		p, err := g.crash(k)
		if err != nil {
			return strings.Join(got, " "), err
		}
		dst := filepath.Join(e.Dir, "reports", k)
		os.MkdirAll(filepath.Dir(dst), 0o755)
		data, _ := os.ReadFile(p)
		os.WriteFile(dst, data, 0o644)
		got = append(got, k+"="+shortPath(p))
	}
	return strings.Join(got, " "), nil
}

// browser is a headless Debian chromium driven over the DevTools protocol
// (chromedp), saving its screenshots under dir.
type browser struct {
	ctx    context.Context
	cancel func()
	dir    string
}

func newBrowser(dir string) (*browser, error) {
	path, err := exec.LookPath("chromium")
	if err != nil {
		return nil, fmt.Errorf("chromium not installed (scripts/setup-deps.sh): %w", err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox,
		chromedp.Flag("disable-gpu", true), chromedp.WindowSize(1280, 900))
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	ctx, tcancel := context.WithTimeout(ctx, 2*time.Minute)
	if err := chromedp.Do(ctx); err != nil {
		tcancel()
		cancel()
		acancel()
		return nil, fmt.Errorf("start chromium: %w", err)
	}
	os.MkdirAll(dir, 0o755)
	return &browser{ctx: ctx, cancel: func() { tcancel(); cancel(); acancel() }, dir: dir}, nil
}

// page loads url, evaluates js (which returns a string) once sel is
// there, and saves a full-page PNG as name.png.
func (b *browser) page(url, sel, js, name string) (string, error) {
	if err := chromedp.Do(b.ctx, chromedp.Navigate(url), chromedp.WaitReady(chromedp.CSS(sel))); err != nil {
		return "", fmt.Errorf("chromium %s: %w", url, err)
	}
	out, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](js))
	if err != nil {
		return "", fmt.Errorf("chromium %s: %w", url, err)
	}
	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		return "", fmt.Errorf("chromium %s: screenshot: %w", url, err)
	}
	return out, os.WriteFile(filepath.Join(b.dir, name+".png"), png, 0o644)
}

// crashSignatures: guest alpha crashes twice with sysrq, guest beta once
// with an NMI. The overview, read in Chromium, shows 2 signatures with
// counts 2 and 1; each crash has both its live and its record copy and
// counts once.
func crashSignatures(e *Env) (string, error) {
	c, err := e.StartCollector("collector")
	if err != nil {
		return "", err
	}
	a, err := bootCrashGuest(e, c, "alpha")
	if err != nil {
		return "", err
	}
	for i := 0; i < 2; i++ {
		if _, err := a.crash("sysrq"); err != nil {
			return "", err
		}
	}
	a.vm.Kill()
	b, err := bootCrashGuest(e, c, "beta")
	if err != nil {
		return "", err
	}
	if _, err := b.crash("nmi"); err != nil {
		return "", err
	}
	b.vm.Kill()

	br, err := newBrowser(filepath.Join(e.Dir, "screenshots"))
	if err != nil {
		return "", err
	}
	defer br.cancel()
	base := fmt.Sprintf("http://127.0.0.1:%d/ui/", c.HTTPPort)
	var rows string
	err = waitFor(20*time.Second, func() (bool, string) {
		rows, err = br.page(base, "#signatures",
			`Array.from(document.querySelectorAll("tr.sig")).map(r => r.dataset.id + "=" + r.querySelector(".count").textContent).join(" ")`, "overview")
		if err != nil {
			return false, err.Error()
		}
		return len(strings.Fields(rows)) == 2, "overview rows: " + rows
	})
	if err != nil {
		return "", err
	}
	counts := map[string]string{}
	for _, f := range strings.Fields(rows) {
		id, n, _ := strings.Cut(f, "=")
		counts[n] = id
	}
	if counts["2"] == "" || counts["1"] == "" {
		return "", fmt.Errorf("overview counts %q, want one signature with 2 crashes and one with 1", rows)
	}
	// alpha's signature: 2 crashes, each seen live and as a record.
	sig, err := br.page(base+"sig/"+counts["2"], "#crashes",
		`document.querySelector("#title").textContent + "|" + document.querySelector("#count").textContent + "|" +
		 Array.from(document.querySelectorAll("tr.crash")).map(r => Array.from(r.querySelectorAll(".sighting")).map(s => s.textContent.split(":")[0]).sort().join("+")).join(" ")`, "signature")
	if err != nil {
		return "", err
	}
	if want := "Kernel panic - not syncing: sysrq triggered crash|2|netconsole+record netconsole+record"; sig != want {
		return "", fmt.Errorf("signature page says %q, want %q", sig, want)
	}
	host, err := br.page(base+"host/beta", "#boots",
		`document.querySelectorAll("tr.boot").length + "|" + document.querySelectorAll("a.download").length + "|" + (document.querySelector("pre.before") || {}).textContent`, "host-beta")
	if err != nil {
		return "", err
	}
	if f := strings.SplitN(host, "|", 3); len(f) < 3 || f[0] == "0" || f[1] != "1" || !strings.Contains(f[2], "NMI") && !strings.Contains(f[2], "lastgasp") {
		return "", fmt.Errorf("host page of beta: %q, want boots, one record download and the lines before the crash", host)
	}
	return fmt.Sprintf("signatures %s screenshots=%s", rows, shortPath(br.dir)), nil
}

// crashAlert: a guest's first crash is a new signature and fires exactly
// one webhook, though the collector sees it twice (live and record).
func crashAlert(e *Env) (string, error) {
	var mu sync.Mutex
	var hooks []string
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		hooks = append(hooks, string(b))
		mu.Unlock()
	})}
	go srv.Serve(ln)
	defer srv.Close()
	c, err := e.StartCollector("collector", "-alert-webhook", "http://"+ln.Addr().String()+"/hook")
	if err != nil {
		return "", err
	}
	g, err := bootCrashGuest(e, c, "gamma")
	if err != nil {
		return "", err
	}
	if _, err := g.crash("sysrq"); err != nil {
		return "", err
	}
	time.Sleep(3 * time.Second) // time for a second, wrong, webhook
	mu.Lock()
	defer mu.Unlock()
	if len(hooks) != 1 || !strings.Contains(hooks[0], `"reason":"new-signature"`) || !strings.Contains(hooks[0], "sysrq triggered crash") {
		return "", fmt.Errorf("webhooks %q, want exactly one new-signature alert for the sysrq panic", hooks)
	}
	if v, err := c.Metric(`lastgaspd_alerts_total{outcome="sent"}`); err != nil || v != 1 {
		return "", fmt.Errorf("lastgaspd_alerts_total{outcome=\"sent\"} = %v, %v; want 1", v, err)
	}
	return "webhooks=1", nil
}
