package main

import (
	"fmt"
	"os"
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
	shown := 0
	deadline := time.Now().Add(4 * time.Minute)
	for time.Now().Before(deadline) {
		l := c.Logs()
		if len(l) > shown {
			os.Stdout.WriteString(l[shown:])
			shown = len(l)
		}
		if recs := c.CrashRecords(); len(recs) > 0 && strings.Contains(l, "handoff: rescue shell") && strings.Contains(l, "shipped=") {
			time.Sleep(time.Second)
			fmt.Print(c.Logs()[shown:])
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
