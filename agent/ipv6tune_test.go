package agent

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

func TestTuneIPv6(t *testing.T) {
	dir := t.TempDir()
	set := func(ifn, knob, v string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Join(dir, ifn), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, ifn, knob), []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	check := func(ifn, knob, want string) {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(dir, ifn, knob))
		if err != nil || string(b) != want {
			t.Errorf("%s/%s = %q, %v; want %q", ifn, knob, b, err, want)
		}
	}
	for _, ifn := range []string{"default", "eth0", "eth1"} {
		for _, k := range ipv6Fast {
			set(ifn, k.knob, "7\n")
		}
	}
	restore, err := tuneIPv6(dir, []string{"eth0", "eth1"})
	if err != nil {
		t.Fatal(err)
	}
	for _, ifn := range []string{"default", "eth0", "eth1"} {
		for _, k := range ipv6Fast {
			check(ifn, k.knob, k.value+"\n")
		}
	}
	// A VLAN interface created after the tuning starts from default's
	// tuned values; restore gives it default's old ones.
	for _, k := range ipv6Fast {
		set("eth0.100", k.knob, k.value+"\n")
	}
	if err := restore([]string{"eth0.100"}); err != nil {
		t.Fatal(err)
	}
	for _, ifn := range []string{"default", "eth0", "eth1", "eth0.100"} {
		for _, k := range ipv6Fast {
			check(ifn, k.knob, "7\n")
		}
	}

	// No such interface directory (a kernel without IPv6): an error that
	// names the file, and the other interfaces are still set.
	for _, k := range ipv6Fast {
		set("eth0", k.knob, "7\n")
	}
	restore, err = tuneIPv6(dir, []string{"eth9", "eth0"})
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("tuneIPv6 with a missing interface = %v, want ErrNotExist", err)
	}
	for _, k := range ipv6Fast {
		check("eth0", k.knob, k.value+"\n")
	}
	if err := restore(nil); err != nil {
		t.Errorf("restore after a partial tune: %v", err)
	}
	for _, k := range ipv6Fast {
		check("eth0", k.knob, "7\n")
	}
}
