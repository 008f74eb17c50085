package main

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

func TestTuneIPv6(t *testing.T) {
	dir := t.TempDir()
	for _, ifn := range []string{"default", "eth0", "eth1"} {
		if err := os.MkdirAll(filepath.Join(dir, ifn), 0o755); err != nil {
			t.Fatal(err)
		}
		for _, k := range ipv6Fast {
			if err := os.WriteFile(filepath.Join(dir, ifn, k.knob), []byte("1\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tuneIPv6(dir, []string{"eth0", "eth1"}); err != nil {
		t.Fatal(err)
	}
	for _, ifn := range []string{"default", "eth0", "eth1"} {
		for _, k := range ipv6Fast {
			b, err := os.ReadFile(filepath.Join(dir, ifn, k.knob))
			if err != nil || string(b) != k.value+"\n" {
				t.Errorf("%s/%s = %q, %v; want %q", ifn, k.knob, b, err, k.value)
			}
		}
	}
	// No such interface directory (a kernel without IPv6): an error that
	// names the file, and the other interfaces are still set.
	err := tuneIPv6(dir, []string{"eth9", "eth0"})
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("tuneIPv6 with a missing interface = %v, want ErrNotExist", err)
	}
}
