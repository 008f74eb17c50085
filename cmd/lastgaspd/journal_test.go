package main

import (
	"context"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/lastgasp/lastgasp/netconsole/journal/journaltest"
)

// TestServeJournal runs lastgaspd with -journal pointing at a real
// systemd-journal-remote on loopback, sends it netconsole datagrams from two
// hosts and reads the entries back with journalctl.
func TestServeJournal(t *testing.T) {
	remote := journaltest.Start(t, "")
	udp, httpAddr := freePort(t, "udp"), freePort(t, "tcp")
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	logs := &syncWriter{w: &strings.Builder{}}
	go func() {
		done <- run(ctx, []string{"-netconsole", udp, "-http", httpAddr, "-store", t.TempDir(), "-sockets", "1",
			"-journal", remote.URL}, io.Discard, logs)
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run = %v, want nil after cancel", err)
		}
	}()
	waitMetrics(t, "http://"+httpAddr+"/metrics")

	// The kernel's extended format, "<prival>,<seq>,<ts usec>,<flags>;<text>",
	// with boot_id as the agent announces it.
	boot1, boot2 := "1b6f0a2e-3d4c-5b6a-7988-0123456789ab", "9f8e7d6c-5b4a-3928-1706-f5e4d3c2b1a0"
	for _, h := range []struct {
		host, boot string
		lines      []string
	}{
		{"box1", boot1, []string{"6,101,3100000,-;sysrq: Trigger a crash", "0,102,3163223,-;Kernel panic - not syncing: sysrq triggered crash"}},
		{"box2", boot2, []string{"4,101,3000900,-;eth0: link down"}},
	} {
		c, err := net.Dial("udp", udp)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.Write([]byte("6,100,3000000,-;lastgasp: netconsole armed host=" + h.host + " boot=" + h.boot))
		for _, l := range h.lines {
			time.Sleep(time.Millisecond)
			c.Write([]byte(l))
		}
	}

	type entry struct{ Host, Boot, BootID, Seq, Priority, Message string }
	want := []entry{
		{"box1", boot1, "1b6f0a2e3d4c5b6a79880123456789ab", "100", "6", "lastgasp: netconsole armed host=box1 boot=" + boot1},
		{"box1", boot1, "1b6f0a2e3d4c5b6a79880123456789ab", "101", "6", "sysrq: Trigger a crash"},
		{"box1", boot1, "1b6f0a2e3d4c5b6a79880123456789ab", "102", "0", "Kernel panic - not syncing: sysrq triggered crash"},
		{"box2", boot2, "9f8e7d6c5b4a39281706f5e4d3c2b1a0", "100", "6", "lastgasp: netconsole armed host=box2 boot=" + boot2},
		{"box2", boot2, "9f8e7d6c5b4a39281706f5e4d3c2b1a0", "101", "4", "eth0: link down"},
	}
	es := remote.WaitEntries(len(want), 20*time.Second)
	got := map[string][]entry{}
	for _, e := range es {
		got[e["_HOSTNAME"]] = append(got[e["_HOSTNAME"]], entry{e["_HOSTNAME"], e["LASTGASP_BOOT"], e["_BOOT_ID"],
			e["LASTGASP_SEQ"], e["PRIORITY"], e["MESSAGE"]})
	}
	// Hosts interleave in the journal; each host's entries are in order.
	if diff := cmp.Diff(want, append(got["box1"], got["box2"]...)); diff != "" {
		t.Errorf("journal entries per host (-want +got):\n%s\nlog:\n%s", diff, logs.w)
	}
	fams, err := scrape("http://" + httpAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	s := samples(fams)
	for name, v := range map[string]float64{"lastgaspd_journal_enqueued_total": 5, "lastgaspd_journal_sent_total": 5,
		"lastgaspd_journal_dropped_total": 0, "lastgaspd_journal_queued": 0, "lastgaspd_netconsole_forwarded_total": 5} {
		if s[name].Value != v {
			t.Errorf("%s = %v, want %v", name, s[name].Value, v)
		}
	}
}

// waitMetrics waits until url answers with a parsable exposition.
func waitMetrics(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := scrape(url)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", url, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
