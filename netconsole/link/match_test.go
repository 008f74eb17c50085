package link

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeNet builds a /sys/class/net-like tree: name -> (mac, driver).
func fakeNet(t *testing.T, nics map[string][2]string) string {
	t.Helper()
	root := t.TempDir()
	drivers := filepath.Join(root, "..", filepath.Base(root)+"-drivers")
	for name, v := range nics {
		dir := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Join(dir, "device"), 0o755); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, "address"), []byte(v[0]+"\n"), 0o644)
		if v[1] != "" {
			drv := filepath.Join(drivers, v[1])
			os.MkdirAll(drv, 0o755)
			if err := os.Symlink(drv, filepath.Join(dir, "device", "driver")); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Cleanup(func() { os.RemoveAll(drivers) })
	return root
}

func TestCandidatesRules(t *testing.T) {
	root := fakeNet(t, map[string][2]string{
		"lo":   {"00:00:00:00:00:00", ""},
		"eth0": {"52:54:00:12:00:01", "virtio_net"},
		"eth1": {"52:54:00:12:00:02", "e1000"},
		"enp3": {"AA:BB:CC:00:00:03", "igb"},
	})
	for _, tt := range []struct {
		patterns []string
		want     string
	}{
		{[]string{"eth*"}, "eth0,eth1"},
		{[]string{"driver:e1000"}, "eth1"},
		{[]string{"driver:e1000", "eth*"}, "eth1,eth0"},
		{[]string{"mac:52:54:00:12:00:0[2-9]"}, "eth1"},
		{[]string{"mac:aa:bb:cc:*"}, "enp3"},
		{[]string{"driver:none"}, ""},
		{[]string{"*"}, "enp3,eth0,eth1"},
	} {
		got, err := Candidates(root, tt.patterns)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Join(got, ",") != tt.want {
			t.Errorf("Candidates(%q) = %q, want %q", tt.patterns, got, tt.want)
		}
	}
}
