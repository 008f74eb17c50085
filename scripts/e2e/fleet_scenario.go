package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/lastgasp/lastgasp/store"
)

// The simulated fleet of fleet-guest-among-many: lastgasp-load in raw mode,
// host i named load-%05d sending from 127.1.0.0+i:6665 (the guest arrives
// from 127.0.0.1 through QEMU's user network).
const (
	fleetHosts = 16384
	fleetRate  = 5000 // msg/s in all: each host about every 3 s, so most send a few lines while the guest boots
	fleetBoot  = "fleet-load-boot"
	// fleetFor bounds the load; it is stopped once the guest's panic is
	// stored, which keeps the scenario well under it.
	fleetFor = 80 * time.Second
)

var (
	reArmed     = regexp.MustCompile(`lastgasp: netconsole armed host=(\S+) boot=(\S+)`)
	reLoadHost  = regexp.MustCompile(`^load-\d{5}$`)
	reLoadText  = regexp.MustCompile(`^(load-\d{5}) `)
	reAnnounced = regexp.MustCompile(`^lastgasp: \S.* host=(\S+)`)
)

// fleetGuestAmongMany: one guest boots and panics while 16,384 simulated
// hosts send to the same collector. The guest's panic is filed under its
// own host and boot, no guest line is in another host's directory, and
// every simulated host's line is under its own name.
func fleetGuestAmongMany(e *Env) (string, error) {
	load, err := buildLoad(e.Dir)
	if err != nil {
		return "", err
	}
	c, err := e.StartCollector("collector")
	if err != nil {
		return "", err
	}
	lg, err := startLoad(e, load, c)
	if err != nil {
		return "", err
	}
	// The whole fleet announces itself within its first round (3.3 s at
	// fleetRate); wait for that before the guest boots, so that a lost
	// announcement shows as itself, not as misfiled lines later.
	err = waitFor(20*time.Second, func() (bool, string) {
		n, err := c.Metric("lastgaspd_netconsole_announcements_total")
		if err != nil {
			n, err = c.Metric("lastgasp_netconsole_announcements_total")
		}
		if err != nil {
			return false, fmt.Sprintf("no announcement count in /metrics: %v", err)
		}
		return n >= fleetHosts, fmt.Sprintf("the collector counted %.0f of %d simulated hosts' announcements", n, fleetHosts)
	})
	if err != nil {
		return "", fmt.Errorf("a: %w", err)
	}
	t0 := time.Now()
	vm, err := e.Boot("vm", BootOpts{Append: agentArgs(c, "lastgasp.test_panic=1"), Timeout: fleetFor})
	if err != nil {
		return "", err
	}
	// The guest's own view of its host name and boot id (the agent logs its
	// announcement to the console too).
	if _, err := vm.WaitSerial(bootTimeout, 0, "lastgasp: netconsole armed host="); err != nil {
		return "", fmt.Errorf("b: %w", err)
	}
	m := reArmed.FindStringSubmatch(vm.Serial())
	if m == nil {
		return "", fmt.Errorf("b: no host= boot= in the guest's announcement")
	}
	host, boot := m[1], m[2]
	rel, err := store.BootDir(host, boot)
	if err != nil {
		return "", fmt.Errorf("b: guest announced %s boot %s: %w", host, boot, err)
	}
	guestLog := filepath.Join(c.Store, filepath.FromSlash(rel), "kernel.log")
	err = waitFor(bootTimeout, func() (bool, string) {
		b, _ := os.ReadFile(guestLog)
		return strings.Contains(string(b), panicLine), fmt.Sprintf("%s never held %q", shortPath(guestLog), panicLine)
	})
	if err != nil {
		return "", fmt.Errorf("c: %w", err)
	}
	took := time.Since(t0)
	sent, err := lg.stop()
	if err != nil {
		return "", err
	}
	vm.Kill()
	time.Sleep(time.Second) // the collector's flush tick and reorder waits
	s, err := scanFleetStore(c.Store, store.HostDir(host), boot)
	if err != nil {
		return "", err
	}
	switch {
	case s.guestLines == 0:
		return "", fmt.Errorf("d: no guest lines in %s", shortPath(guestLog))
	case len(s.panicElsewhere) > 0:
		return "", fmt.Errorf("d: the panic line is also in %q", s.panicElsewhere)
	case len(s.guestElsewhere) > 0:
		return "", fmt.Errorf("d: %d guest lines outside %s, e.g. %q", s.guestCount, rel, s.guestElsewhere)
	case len(s.loadMisfiled) > 0:
		return "", fmt.Errorf("e: %d of %d simulated hosts' lines not under their own host and boot, e.g. %q", s.loadMisfiledCount, s.loadLines, s.loadMisfiled)
	case s.loadHosts < fleetHosts:
		return "", fmt.Errorf("e: lines of only %d of %d simulated hosts stored", s.loadHosts, fleetHosts)
	}
	return fmt.Sprintf("guest=%s/%s lines=%d panic-after=%.1fs; fleet hosts=%d %s stored=%d", host, boot, s.guestLines, took.Seconds(),
		s.loadHosts, sent, s.loadLines), nil
}

// buildLoad builds the load generator into dir.
func buildLoad(dir string) (string, error) {
	bin := filepath.Join(dir, "lastgasp-load")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/lastgasp/lastgasp/cmd/lastgasp-load").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("build lastgasp-load: %v: %s", err, out)
	}
	return bin, nil
}

// loadRun is a running lastgasp-load.
type loadRun struct {
	cmd    *exec.Cmd
	cancel context.CancelFunc
	out    *syncBuf
	done   chan struct{}
}

func startLoad(e *Env, bin string, c *Collector) (*loadRun, error) {
	ctx, cancel := context.WithTimeout(context.Background(), fleetFor+10*time.Second)
	cmd := exec.CommandContext(ctx, bin, "-addr", fmt.Sprintf("127.0.0.1:%d", c.UDPPort), "-sources", "raw",
		"-hosts", fmt.Sprint(fleetHosts), "-host-format", "load-%05d", "-rate", fmt.Sprint(fleetRate),
		"-duration", fleetFor.String(), "-boot", fleetBoot, "-frag-every", "5", "-gap-every", "0", "-trailer", "0")
	lg := &loadRun{cmd: cmd, cancel: cancel, out: &syncBuf{}, done: make(chan struct{})}
	logf, err := os.Create(filepath.Join(e.Dir, "lastgasp-load.log"))
	if err != nil {
		cancel()
		return nil, err
	}
	cmd.Stdout = lg.out
	cmd.Stderr = logf
	if err := cmd.Start(); err != nil {
		cancel()
		logf.Close()
		return nil, fmt.Errorf("start lastgasp-load: %w", err)
	}
	go func() { cmd.Wait(); logf.Close(); close(lg.done) }()
	e.cleanups = append(e.cleanups, func() { cancel(); <-lg.done })
	return lg, nil
}

// stop ends the load (SIGTERM: it prints what it sent) and returns its
// summary without the "sent: " prefix.
func (lg *loadRun) stop() (string, error) {
	lg.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-lg.done:
	case <-time.After(10 * time.Second):
		lg.cancel()
		<-lg.done
	}
	out := strings.TrimSpace(lg.out.String())
	if !strings.HasPrefix(out, "sent: ") {
		return "", fmt.Errorf("lastgasp-load: %q (see lastgasp-load.log)", out)
	}
	f := strings.Fields(out)
	keep := []string{}
	for _, kv := range f[1:] {
		if strings.HasPrefix(kv, "messages=") || strings.HasPrefix(kv, "rate=") || strings.HasPrefix(kv, "seconds=") {
			keep = append(keep, kv)
		}
	}
	return "sent " + strings.Join(keep, " "), nil
}

// fleetStore is what scanFleetStore found.
type fleetStore struct {
	guestLines        int // message lines in the guest's boot log
	guestCount        int // guest lines found elsewhere
	guestElsewhere    []string
	panicElsewhere    []string // logs other than the guest's boot log with the panic line
	loadLines         int      // simulated hosts' message lines, anywhere
	loadHosts         int      // simulated hosts with lines under their own name
	loadMisfiledCount int
	loadMisfiled      []string
}

// scanFleetStore reads every stored log. A message line under the guest's
// host is the guest's; elsewhere, a line is a simulated host's if its
// text starts with a simulated host's name or is its announcement (the
// load generator writes them so), and it must be in that host's own
// directory and boot; any other line elsewhere is the guest's, misfiled.
func scanFleetStore(root, guestDir, guestBoot string) (fleetStore, error) {
	var s fleetStore
	hosts, err := os.ReadDir(root)
	if err != nil {
		return s, err
	}
	const examples = 3
	example := func(where, text string) string {
		if len(text) > 60 {
			text = text[:60] + "..."
		}
		return where + ": " + text
	}
	for _, h := range hosts {
		if !h.IsDir() || strings.HasPrefix(h.Name(), ".") {
			continue
		}
		boots, _ := os.ReadDir(filepath.Join(root, h.Name()))
		own := false
		for _, b := range boots {
			if !b.IsDir() || b.Name() == store.CrashDir {
				continue
			}
			logs, _ := filepath.Glob(filepath.Join(root, h.Name(), b.Name(), "kernel.log*"))
			for _, path := range logs {
				f, err := os.Open(path)
				if err != nil {
					return s, err
				}
				sc := bufio.NewScanner(f)
				sc.Buffer(make([]byte, 64<<10), 1<<20)
				for sc.Scan() {
					m := storedLine.FindStringSubmatch(sc.Text())
					if m == nil {
						continue // the collector's own notes
					}
					text, where := m[4], h.Name()+"/"+b.Name()
					if strings.Contains(text, panicLine) && (h.Name() != guestDir || b.Name() != guestBoot) {
						s.panicElsewhere = append(s.panicElsewhere, where)
					}
					if h.Name() == guestDir {
						// The guest's host; a boot after the panic's (the
						// reset) may have begun before the guest was killed.
						if b.Name() == guestBoot {
							s.guestLines++
						}
						if reLoadText.MatchString(text) {
							s.loadLines++
							s.loadMisfiledCount++
							if len(s.loadMisfiled) < examples {
								s.loadMisfiled = append(s.loadMisfiled, example(where, text))
							}
						}
						continue
					}
					name := ""
					if lm := reLoadText.FindStringSubmatch(text); lm != nil {
						name = lm[1]
					} else if am := reAnnounced.FindStringSubmatch(text); am != nil && reLoadHost.MatchString(am[1]) {
						name = am[1]
					}
					switch {
					case name == "":
						s.guestCount++
						if len(s.guestElsewhere) < examples {
							s.guestElsewhere = append(s.guestElsewhere, example(where, text))
						}
					case name == h.Name() && b.Name() == fleetBoot:
						s.loadLines++
						own = true
					default:
						s.loadLines++
						s.loadMisfiledCount++
						if len(s.loadMisfiled) < examples {
							s.loadMisfiled = append(s.loadMisfiled, example(where, text))
						}
					}
				}
				f.Close()
				if err := sc.Err(); err != nil {
					return s, fmt.Errorf("%s: %w", path, err)
				}
			}
		}
		if own {
			s.loadHosts++
		}
	}
	return s, nil
}
