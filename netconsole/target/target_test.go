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

// TestCreateFeatures: the optional attributes of newer kernels are used where
// the directory has them and skipped where it does not (6.1).
func TestCreateFeatures(t *testing.T) {
	for _, tt := range []struct {
		name     string
		release  bool // directory has "release"
		userdata bool // directory has "userdata/"
		want     Features
		param    string
	}{
		{name: "6.1", want: Features{}, param: "+6665@10.0.2.15/eth0,6666@10.0.2.2/52:55:0a:00:02:02"},
		{name: "6.6", release: true, want: Features{Release: true}, param: "+r6665@10.0.2.15/eth0,6666@10.0.2.2/52:55:0a:00:02:02"},
		{name: "6.9", release: true, userdata: true, want: Features{Release: true, Userdata: true}, param: "+r6665@10.0.2.15/eth0,6666@10.0.2.2/52:55:0a:00:02:02"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			attrs := all
			if tt.release {
				attrs = append(append([]string(nil), all...), "release")
			}
			fakeTarget(t, root, "lg0", attrs)
			tg := testTarget()
			tg.Userdata = map[string]string{"host": "box-1", "boot": "0d5c-11"}
			if tt.userdata {
				// configfs makes userdata/<key>/value on mkdir; a temp dir
				// needs them made in advance.
				for k := range tg.Userdata {
					fakeTarget(t, filepath.Join(root, "lg0", "userdata"), k, []string{"value"})
				}
			}
			if err := Create(root, tg); err != nil {
				t.Fatalf("Create() = %v", err)
			}
			st, err := Inspect(root, "lg0")
			if err != nil {
				t.Fatalf("Inspect() = %v", err)
			}
			if st.Features != tt.want || !st.Enabled || st.Release != tt.release || st.TransmitErrors != -1 {
				t.Errorf("Inspect() = %+v, want features %+v, enabled, release=%v, transmit_errors -1", st, tt.want, tt.release)
			}
			tg.Release = st.Release
			if got := tg.Param(); got != tt.param {
				t.Errorf("Param() = %q, want %q", got, tt.param)
			}
			for k, v := range tg.Userdata {
				b, err := os.ReadFile(filepath.Join(root, "lg0", "userdata", k, "value"))
				if tt.userdata && (err != nil || string(b) != v) {
					t.Errorf("userdata %s = %q (%v), want %q", k, b, err, v)
				}
				if !tt.userdata && err == nil {
					t.Errorf("userdata %s written on a kernel without userdata/", k)
				}
			}
		})
	}
}

func TestInspectTransmitErrors(t *testing.T) {
	root := t.TempDir()
	fakeTarget(t, root, "lg0", append(append([]string(nil), all...), "transmit_errors"))
	os.WriteFile(filepath.Join(root, "lg0", "transmit_errors"), []byte("3\n"), 0o644)
	st, err := Inspect(root, "lg0")
	if err != nil || st.TransmitErrors != 3 || !st.Features.TransmitErrors {
		t.Errorf("Inspect() = %+v, %v; want transmit_errors 3", st, err)
	}
	if _, err := Inspect(root, "absent"); err == nil {
		t.Error("Inspect(absent) succeeded")
	}
}

func TestCreateBadUserdata(t *testing.T) {
	root := t.TempDir()
	fakeTarget(t, root, "lg0", all)
	fakeTarget(t, filepath.Join(root, "lg0"), "userdata", nil)
	tg := testTarget()
	tg.Userdata = map[string]string{"a/b": "x"}
	if err := Create(root, tg); !errors.Is(err, ErrUserdata) {
		t.Errorf("Create(userdata a/b) = %v, want ErrUserdata", err)
	}
}

func TestFeaturesString(t *testing.T) {
	if got := (Features{}).String(); got != "none" {
		t.Errorf("String() = %q", got)
	}
	if got := (Features{Release: true, Userdata: true}).String(); got != "release,userdata" {
		t.Errorf("String() = %q", got)
	}
}

func TestModuleParam(t *testing.T) {
	a, b := testTarget(), testTarget()
	b.RemotePort, b.LocalPort = 7777, 6664
	want := "netconsole=+6665@10.0.2.15/eth0,6666@10.0.2.2/52:55:0a:00:02:02;+6664@10.0.2.15/eth0,7777@10.0.2.2/52:55:0a:00:02:02"
	if got := ModuleParam([]Target{a, b}); got != want {
		t.Errorf("ModuleParam() = %q, want %q", got, want)
	}
	if Dynamic(filepath.Join(t.TempDir(), "netconsole")) {
		t.Error("Dynamic(missing dir) = true")
	}
	if !Dynamic(t.TempDir()) {
		t.Error("Dynamic(dir) = false")
	}
}

// TestSameIPv6: an IPv6 address the kernel reads back in its own notation
// (%pI6c, or uncompressed) is the one written; a different one is not.
func TestSameIPv6(t *testing.T) {
	for _, tt := range []struct {
		got, want string
		same      bool
	}{
		{"fd00:66::5054:ff:fe66:10", "fd00:66::5054:ff:fe66:10", true},
		{"fd00:0066:0000:0000:5054:00ff:fe66:0010", "fd00:66::5054:ff:fe66:10", true},
		{"fd00:66::1", "fd00:66::2", false},
		{"0.0.0.0", "fd00:66::1", false},
		{"10.0.2.2", "10.0.2.2", true},
	} {
		if got := same("remote_ip", tt.got, tt.want); got != tt.same {
			t.Errorf("same(remote_ip, %q, %q) = %v, want %v", tt.got, tt.want, got, tt.same)
		}
	}
	tg := testTarget()
	tg.LocalIP, tg.RemoteIP = netip.MustParseAddr("fd00:66::5054:ff:fe66:10"), netip.MustParseAddr("fd00:66::1")
	if got, want := tg.Param(), "+6665@fd00:66::5054:ff:fe66:10/eth0,6666@fd00:66::1/52:55:0a:00:02:02"; got != want {
		t.Errorf("Param() = %q, want %q", got, want)
	}
	root := t.TempDir()
	fakeTarget(t, root, "lg0", all)
	if err := Create(root, tg); err != nil {
		t.Fatalf("Create(IPv6) = %v", err)
	}
}
