package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/lastgasp/lastgasp/pstore/ship"
)

func TestParseConfig(t *testing.T) {
	in := `# lastgaspd.conf
netconsole = :6666

store=/var/lib/lastgasp
forward = "tcp://127.0.0.1:514"
  max-memory   =   1048576  
empty =
`
	got, err := parseConfig(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := []keyValue{
		{2, "netconsole", ":6666"}, {4, "store", "/var/lib/lastgasp"}, {5, "forward", "tcp://127.0.0.1:514"},
		{6, "max-memory", "1048576"}, {7, "empty", ""},
	}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(keyValue{})); diff != "" {
		t.Errorf("parseConfig mismatch (-want +got):\n%s", diff)
	}
	for _, bad := range []string{"novalue", "= x", "two words = x", `"q" = x`} {
		if _, err := parseConfig(strings.NewReader(bad)); err == nil {
			t.Errorf("parseConfig(%q) = nil error, want error", bad)
		}
	}
}

func TestConfigFileAndFlags(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lastgaspd.conf")
	os.WriteFile(path, []byte("store = /from/file\nsockets = 3\nforward = tcp://127.0.0.1:514\n"), 0o644)
	c, err := parseFlags([]string{"-config", path, "-store", "/from/flag"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if c.store != "/from/flag" || c.sockets != 3 || c.forward != "tcp://127.0.0.1:514" {
		t.Errorf("parseFlags = %+v, want store from the flag, sockets and forward from the file", c)
	}
	for _, bad := range []string{"nosuch = 1\n", "sockets = many\n", "config = x\n"} {
		os.WriteFile(path, []byte(bad), 0o644)
		if _, err := parseFlags([]string{"-config", path}, &bytes.Buffer{}); err == nil {
			t.Errorf("config %q: parseFlags = nil error, want error", bad)
		}
	}
	if _, err := parseFlags([]string{"-config", filepath.Join(t.TempDir(), "missing")}, &bytes.Buffer{}); err == nil {
		t.Errorf("missing config file: want error")
	}
}

// FuzzParseConfig checks that every parsed key is usable as a flag name
// lookup and values survive a round trip through a file.
func FuzzParseConfig(f *testing.F) {
	f.Add("a = b\n# c\n\nd=\"e \"\n")
	f.Add("=\n")
	f.Add("k = \"\n")
	f.Fuzz(func(t *testing.T, in string) {
		kvs, err := parseConfig(strings.NewReader(in))
		if err != nil {
			return
		}
		var b strings.Builder
		for _, kv := range kvs {
			if kv.key == "" || strings.ContainsAny(kv.key, " \t\"=\n") {
				t.Fatalf("key %q", kv.key)
			}
			b.WriteString(kv.key + " = \"" + kv.value + "\"\n")
		}
		again, err := parseConfig(strings.NewReader(b.String()))
		if err != nil || len(again) != len(kvs) {
			t.Fatalf("reparse of %q = %v, %v", b.String(), again, err)
		}
		for i := range kvs {
			if again[i].key != kvs[i].key || again[i].value != kvs[i].value {
				t.Fatalf("reparse: %+v, want %+v", again[i], kvs[i])
			}
		}
	})
}

func TestCrashesCommand(t *testing.T) {
	root := t.TempDir()
	write := func(rel, data string) {
		p := filepath.Join(root, rel)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// host a: a live panic in kernel.log, then a record of it uploaded
	// later; both are shown, apart.
	write("a/b1/kernel.log", "2026-11-25T16:00:00Z 6 seq=1 ts=0.100000 booting\n"+
		"2026-11-25T16:00:05Z 0 seq=812 ts=3.163223 Kernel panic - not syncing: sysrq triggered crash\n")
	meta, _ := json.Marshal(ship.Metadata{Host: "a", RecordName: "dmesg-ramoops-0", Received: time.Date(2026, 11, 25, 16, 1, 0, 0, time.UTC)})
	write("a/crash/dmesg-ramoops-0.0123456789abcdef.json", string(meta))
	write("a/crash/dmesg-ramoops-0.0123456789abcdef", "Panic#1 Part1\n<0>[    3.163223] Kernel panic - not syncing: sysrq triggered crash\n")

	var out bytes.Buffer
	if err := run(t.Context(), []string{"crashes", "-store", root}, &out, &out); err != nil {
		t.Fatal(err)
	}
	want := "HOST  FROM                     WHEN                  PANIC" + strings.Repeat(" ", 46) + "SOURCE\n" +
		"a     record                   2026-11-25T16:01:00Z  Kernel panic - not syncing: sysrq triggered crash  crash/dmesg-ramoops-0.0123456789abcdef\n" +
		"a     netconsole (unverified)  2026-11-25T16:00:05Z  Kernel panic - not syncing: sysrq triggered crash  b1/kernel.log seq=812\n"
	if diff := cmp.Diff(want, out.String()); diff != "" {
		t.Errorf("lastgaspd crashes (-want +got):\n%s", diff)
	}
	out.Reset()
	writeCrashes(&out, nil)
	if out.String() != "no crashes\n" {
		t.Errorf("empty listing = %q", out.String())
	}
}
