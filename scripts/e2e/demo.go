package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// runDemo boots the image with a collector on loopback, triggers a test
// panic, streams what the collector stores, and shows the crash record.
func runDemo(e *Env) error {
	c, err := e.StartCollector("collector")
	if err != nil {
		return err
	}
	fmt.Printf("collector: netconsole udp 127.0.0.1:%d, uploads http://127.0.0.1:%d, store %s\n", c.UDPPort, c.HTTPPort, c.Store)
	fmt.Printf("booting %s + %s in QEMU (TCG); the guest panics once on purpose (lastgasp.test_panic=1)\n", e.Kernel, e.Initrd)
	_, err = e.Boot("vm", BootOpts{Append: agentArgs(c, "lastgasp.test_panic=1")})
	if err != nil {
		return err
	}
	fmt.Printf("guest console: %s/vm-serial.log\n\n--- lines as the collector stores them ---\n", e.Dir)
	t := newLogTail(c.Store)
	deadline := time.Now().Add(4 * time.Minute)
	for time.Now().Before(deadline) {
		t.print(os.Stdout)
		l := c.Logs()
		if recs := c.CrashRecords(); len(recs) > 0 && strings.Contains(l, "handoff: rescue shell") && strings.Contains(l, "shipped=") {
			time.Sleep(time.Second)
			t.print(os.Stdout)
			fmt.Println("\n--- crash records stored by the collector ---")
			for p, d := range recs {
				fmt.Printf("%s (%d bytes)\n", p, len(d))
			}
			fmt.Printf("\nstore: %s (per host, per boot: kernel.log; crash records under <host>/crash/)\n", c.Store)
			return nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("no crash record stored in time; see %s", e.Dir)
}

// logTail prints the whole lines of every boot's kernel.log in the store
// as they arrive, each line once: a line still being written is left for
// the next round, and lines the collector merges into a boot's log later
// (backfilled by the printk replay, older sequence numbers) are printed
// when they appear, not the file's tail again.
type logTail struct {
	store string
	files []string                   // in the order first seen
	seen  map[string]map[string]bool // file -> lines printed
	last  string                     // the file printed from last
}

func newLogTail(store string) *logTail {
	return &logTail{store: store, seen: map[string]map[string]bool{}}
}

func (t *logTail) print(w io.Writer) {
	files, _ := filepath.Glob(filepath.Join(t.store, "*", "*", "kernel.log"))
	for _, f := range files {
		if t.seen[f] == nil {
			t.seen[f] = map[string]bool{}
			t.files = append(t.files, f)
		}
	}
	for _, f := range t.files {
		d, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		if i := bytes.LastIndexByte(d, '\n'); i >= 0 {
			d = d[:i+1]
		} else {
			continue
		}
		seen := t.seen[f]
		for _, line := range strings.SplitAfter(string(d), "\n") {
			if line == "" || seen[line] {
				continue
			}
			if t.last != f {
				rel, _ := filepath.Rel(t.store, filepath.Dir(f))
				fmt.Fprintf(w, "== %s (host/boot) ==\n", rel)
				t.last = f
			}
			seen[line] = true
			io.WriteString(w, line)
		}
	}
}
