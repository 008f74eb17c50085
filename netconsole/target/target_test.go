package target

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
)

// fakeConfigfs makes a directory that behaves like configfs for one target:
// the attribute files exist and are truncated on each write by a helper.
func fakeTarget(t *testing.T, root, name string, attrs []string) {
	t.Helper()
	dir := filepath.Join(root, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, a := range attrs {
		if err := os.WriteFile(filepath.Join(dir, a), []byte("0"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

var all = []string{"enabled", "dev_name", "local_ip", "remote_ip", "local_port", "remote_port", "remote_mac", "extended"}

func testTarget() Target {
	mac, _ := net.ParseMAC("52:55:0a:00:02:02")
	return Target{Name: "lg0", Dev: "eth0", LocalIP: netip.MustParseAddr("10.0.2.15"), LocalPort: 6665,
		RemoteIP: netip.MustParseAddr("10.0.2.2"), RemotePort: 6666, RemoteMAC: mac, Extended: true}
}

func TestCreate(t *testing.T) {
	root := t.TempDir()
	fakeTarget(t, root, "lg0", all)
	tg := testTarget()
	if err := Create(root, tg); err != nil {
		t.Fatalf("Create() = %v", err)
	}
	for _, kv := range append(tg.attrs(), [2]string{"enabled", "1"}) {
		b, err := os.ReadFile(filepath.Join(root, "lg0", kv[0]))
		if err != nil || string(b) != kv[1] {
			t.Errorf("%s = %q (%v), want %q", kv[0], b, err, kv[1])
		}
	}
}

func TestCreateMissingAttribute(t *testing.T) {
	root := t.TempDir()
	fakeTarget(t, root, "lg0", all[:5]) // no remote_mac / extended: an old or odd kernel
	err := Create(root, testTarget())
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Create() = %v, want ErrNotExist", err)
	}
}

func TestCreateNoSubsystem(t *testing.T) {
	err := Create(filepath.Join(t.TempDir(), "absent"), testTarget())
	if err == nil {
		t.Fatal("Create() without configfs succeeded")
	}
}

func TestCreateBadName(t *testing.T) {
	tg := testTarget()
	for _, n := range []string{"", "..", "a/b"} {
		tg.Name = n
		if err := Create(t.TempDir(), tg); err == nil {
			t.Errorf("Create(name %q) succeeded", n)
		}
	}
}

func TestParam(t *testing.T) {
	want := "+6665@10.0.2.15/eth0,6666@10.0.2.2/52:55:0a:00:02:02"
	if got := testTarget().Param(); got != want {
		t.Errorf("Param() = %q, want %q", got, want)
	}
}
