package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/lastgasp/lastgasp/netconsole/wire"
	"github.com/lastgasp/lastgasp/pstore/records"
	"github.com/lastgasp/lastgasp/pstore/ship"
)

func TestRotationAndRetentionFlags(t *testing.T) {
	c, err := parseFlags(nil, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if c.rotateSize != 64<<20 || c.rotateKeep != 5 || c.retention != 14*24*time.Hour {
		t.Errorf("defaults: rotate-size %d, rotate-keep %d, retention %v; want 64 MiB, 5, 336h", c.rotateSize, c.rotateKeep, c.retention)
	}
	path := filepath.Join(t.TempDir(), "lastgaspd.conf")
	os.WriteFile(path, []byte("retention = 720h\nrotate-size = 0\n"), 0o644)
	c, err = parseFlags([]string{"-config", path, "-rotate-keep", "0"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if c.rotateSize != 0 || c.rotateKeep != 0 || c.retention != 720*time.Hour {
		t.Errorf("parseFlags = %+v, want rotation off, no rotated logs kept, 30 days", c)
	}
	if orNone(0) != -1 || orNone(5) != 5 {
		t.Errorf("orNone(0), orNone(5) = %d, %d, want -1, 5", orNone(0), orNone(5))
	}
	for _, bad := range [][]string{{"-rotate-size", "-1"}, {"-rotate-keep", "-2"}, {"-retention", "-1h"}, {"-retention", "2 weeks"}} {
		if _, err := parseFlags(bad, &bytes.Buffer{}); err == nil {
			t.Errorf("parseFlags(%q) = nil error, want error", bad)
		}
	}
}

// TestServeLinksRotatesAndSweeps runs the collector: netconsole from two
// boots of a host, then an upload from the second, which must be linked
// into the first boot's directory, announced from the upload's address,
// while a spoofer's announcement never steers a link or the record row of
// /crashes; small logs rotate; an old boot directory
// is removed at start.
func TestServeLinksRotatesAndSweeps(t *testing.T) {
	store := t.TempDir()
	stale := filepath.Join(store, "box1", "b0", "kernel.log")
	os.MkdirAll(filepath.Dir(stale), 0o750)
	os.WriteFile(stale, []byte("old\n"), 0o640)
	old := time.Now().Add(-48 * time.Hour)
	os.Chtimes(stale, old, old)
	os.Chtimes(filepath.Dir(stale), old, old)

	udp, httpAddr := freePort(t, "udp"), freePort(t, "tcp")
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	logs := &syncWriter{w: &strings.Builder{}}
	go func() {
		done <- run(ctx, []string{"-netconsole", udp, "-http", httpAddr, "-store", store, "-sockets", "1",
			"-rotate-size", "300", "-rotate-keep", "2", "-retention", "24h"}, io.Discard, logs)
	}()
	logText := func() string {
		logs.mu.Lock()
		defer logs.mu.Unlock()
		return logs.w.(*strings.Builder).String()
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s; log:\n%s", what, logText())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitFor("the collector", func() bool {
		resp, err := http.Get("http://" + httpAddr + "/metrics")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil
	})
	waitFor("the sweep at start", func() bool { return strings.Contains(logText(), "removed boot directory") })
	if _, err := os.Stat(filepath.Dir(stale)); !os.IsNotExist(err) {
		t.Errorf("stale boot directory: %v, want removed", err)
	}

	// Two boots, each from its own source port (as after a reboot).
	for _, boot := range []string{"b1", "b2"} {
		c, err := net.Dial("udp", udp)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		for i := range 10 {
			text := "lastgasp: netconsole armed host=box1 boot=" + boot
			if i > 0 {
				text = "some kernel line to fill the log"
			}
			c.Write(wire.Format(wire.Packet{Extended: true, Seq: uint64(i), TimestampUsec: uint64(i), Text: text}))
		}
		p := filepath.Join(store, "box1", boot, "kernel.log.1")
		waitFor(boot+" rotated", func() bool { _, err := os.Stat(p); return err == nil })
	}

	// A spoofer elsewhere (127.0.0.2) announces a boot of box1 of its
	// own, with a forged panic.
	spoof, err := net.DialUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2)}, mustUDPAddr(t, udp))
	if err != nil {
		t.Fatal(err)
	}
	defer spoof.Close()
	for i, text := range []string{"lastgasp: netconsole armed host=box1 boot=bX", "Kernel panic - not syncing: forged"} {
		spoof.Write(wire.Format(wire.Packet{Extended: true, Seq: uint64(i), TimestampUsec: uint64(i), Text: text}))
	}
	waitFor("the spoofed boot's log", func() bool {
		b, _ := os.ReadFile(filepath.Join(store, "box1", "bX", "kernel.log"))
		return strings.Contains(string(b), "forged")
	})

	// From box1's address: a record of the boot before b2 (b1, announced
	// from here), and one whose uploading boot never announced itself,
	// whose crashed boot is thus the latest announced: the spoofer's.
	ship1 := func(boot string, data []byte, at time.Time) ship.Ack {
		t.Helper()
		rp := filepath.Join(t.TempDir(), "dmesg-ramoops-0")
		os.WriteFile(rp, data, 0o600)
		cl := &ship.Client{BaseURL: "http://" + httpAddr, Host: "box1", BootID: boot, Attempts: 3, Backoff: time.Millisecond}
		ack, err := cl.Ship(ctx, records.Record{Name: "dmesg-ramoops-0", Path: rp, Data: data, Size: int64(len(data)), ModTime: at})
		if err != nil {
			t.Fatalf("Ship = %v", err)
		}
		return ack
	}
	ack := ship1("b2", []byte("<0>[    3.1] Kernel panic - not syncing: sysrq triggered crash\n"), time.Now().Add(-time.Hour))
	steered := ship1("b3", []byte("<0>[    3.1] Kernel panic - not syncing: the next one\n"), time.Now())

	// Linked into b1, announced from the upload's address; never elsewhere.
	link := filepath.Join(store, "box1", "b1", "crash", filepath.Base(ack.Path))
	for _, p := range []string{link, link + ".json"} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("crash record next to the crashed boot's log: %v", err)
		}
	}
	filepath.WalkDir(store, func(p string, d os.DirEntry, err error) error {
		rel, _ := filepath.Rel(store, p)
		if err == nil && strings.HasPrefix(d.Name(), filepath.Base(steered.Path)) && filepath.Dir(rel) != "box1/crash" {
			t.Errorf("record of an unannounced boot linked at %s: a spoofed announcement steered it", rel)
		}
		return nil
	})
	resp, err := http.Get("http://" + httpAddr + "/crashes")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	// The record row is the latest record's, in box1/crash; the forged
	// panic shows only as an unverified netconsole line.
	recordRow := regexp.MustCompile(`(?m)^box1 +record +\S+ +Kernel panic - not syncing: the next one +crash/` + regexp.QuoteMeta(filepath.Base(steered.Path)) + `$`)
	if !recordRow.Match(body) {
		t.Errorf("/crashes:\n%s\nwant box1's record row for %s", body, steered.Path)
	}
	forged := regexp.MustCompile(`(?m)^box1 +netconsole \(unverified\) +\S+ +Kernel panic - not syncing: forged +bX/kernel.log seq=1$`)
	if !forged.Match(body) || strings.Count(string(body), "forged") != 1 {
		t.Errorf("/crashes:\n%s\nwant the forged panic once, as an unverified netconsole line", body)
	}
	if !strings.Contains(logText(), "not linked into box1/bX/crash: that boot was announced from") {
		t.Errorf("the refused link is not logged; log:\n%s", logText())
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("run = %v, want nil after cancel", err)
	}
}

func mustUDPAddr(t *testing.T, addr string) *net.UDPAddr {
	t.Helper()
	a, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return a
}
