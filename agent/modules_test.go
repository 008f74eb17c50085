package agent

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// The image's modules.dep for qemu-x86_64, as lastgasp-image wrote it
// (build/qemu-x86_64/work/stage/lib/modules/6.1.0-56-amd64/modules.dep),
// plus a module whose dependency has no line of its own.
const imageDep = `kernel/drivers/virtio/virtio.ko:
kernel/drivers/virtio/virtio_ring.ko:
kernel/drivers/virtio/virtio_pci_legacy_dev.ko:
kernel/drivers/virtio/virtio_pci_modern_dev.ko:
kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio_pci_legacy_dev.ko kernel/drivers/virtio/virtio_pci_modern_dev.ko kernel/drivers/virtio/virtio_ring.ko kernel/drivers/virtio/virtio.ko
kernel/net/core/failover.ko:
kernel/drivers/net/net_failover.ko: kernel/net/core/failover.ko
kernel/drivers/net/virtio_net.ko: kernel/drivers/net/net_failover.ko kernel/net/core/failover.ko kernel/drivers/virtio/virtio_ring.ko kernel/drivers/virtio/virtio.ko
kernel/drivers/net/ethernet/intel/e1000/e1000.ko:
kernel/fs/configfs/configfs.ko:
kernel/drivers/net/netconsole.ko: kernel/fs/configfs/configfs.ko
kernel/lib/reed_solomon/reed_solomon.ko:
kernel/fs/pstore/ramoops.ko: kernel/lib/reed_solomon/reed_solomon.ko
kernel/net/802/stp.ko: kernel/net/llc/llc.ko
kernel/net/llc/llc.ko:
kernel/net/8021q/8021q.ko: kernel/net/802/garp.ko kernel/net/802/mrp.ko kernel/net/802/stp.ko kernel/net/llc/llc.ko
kernel/net/802/garp.ko: kernel/net/802/stp.ko kernel/net/llc/llc.ko
kernel/net/802/mrp.ko:
kernel/drivers/x/orphan.ko: kernel/drivers/x/gone.ko
`

// Lines of Debian 6.1's modules.builtin.
const imageBuiltin = "kernel/fs/pstore/pstore.ko\nkernel/net/packet/af_packet.ko\n"

// loadRecord is one initFile call.
type loadRecord struct {
	mod, params string
	at          time.Time
}

func testLoader(t *testing.T, fail map[string]error) (*modLoader, func() []loadRecord) {
	t.Helper()
	root := t.TempDir()
	dir := filepath.Join(root, "lib", "modules", "6.1.0-56-amd64")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "modules.dep"), []byte(imageDep), 0o644)
	os.WriteFile(filepath.Join(dir, "modules.builtin"), []byte(imageBuiltin), 0o644)
	l, err := newModLoader(root, "6.1.0-56-amd64")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var recs []loadRecord
	l.initFile = func(file, params string) error {
		if !strings.HasPrefix(file, dir+"/") {
			t.Errorf("loaded %s, outside %s", file, dir)
		}
		time.Sleep(time.Millisecond) // a load takes time: ordering must not be luck
		mu.Lock()
		defer mu.Unlock()
		recs = append(recs, loadRecord{modName(file), params, time.Now()})
		return fail[modName(file)]
	}
	return l, func() []loadRecord { mu.Lock(); defer mu.Unlock(); return append([]loadRecord(nil), recs...) }
}

// TestModLoaderOrder: every module loads once, after all its dependencies
// (modules.dep above), with the parameters only on the module asked for.
func TestModLoaderOrder(t *testing.T) {
	for _, tt := range []struct {
		name   string
		load   []string
		params map[string]string
		want   []string // every module loaded, any order
	}{
		{name: "virtio-net chains", load: []string{"virtio_pci", "virtio-net"}, want: []string{"virtio", "virtio_ring", "virtio_pci_legacy_dev", "virtio_pci_modern_dev", "virtio_pci", "failover", "net_failover", "virtio_net"}},
		{name: "ramoops with its region", load: []string{"ramoops", "netconsole"}, params: map[string]string{"ramoops": "mem_address=0x5000000 mem_size=0x100000 record_size=0x10000 ecc=0"}, want: []string{"reed_solomon", "ramoops", "configfs", "netconsole"}},
		{name: "8021q diamond", load: []string{"8021q"}, want: []string{"llc", "stp", "garp", "mrp", "8021q"}},
		{name: "built in: nothing loaded", load: []string{"pstore", "af-packet"}, want: nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			l, recs := testLoader(t, nil)
			var wg sync.WaitGroup
			for _, m := range tt.load {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if err := l.load(m, tt.params[m]); err != nil {
						t.Errorf("load(%s) = %v", m, err)
					}
				}()
			}
			wg.Wait()
			got := recs()
			at := map[string]time.Time{}
			for _, r := range got {
				if _, dup := at[r.mod]; dup {
					t.Errorf("%s loaded twice", r.mod)
				}
				at[r.mod] = r.at
				if r.params != tt.params[r.mod] {
					t.Errorf("%s loaded with params %q, want %q", r.mod, r.params, tt.params[r.mod])
				}
			}
			if len(got) != len(tt.want) {
				t.Errorf("loaded %v, want %v", got, tt.want)
			}
			for _, w := range tt.want {
				if _, ok := at[w]; !ok {
					t.Errorf("%s not loaded", w)
				}
			}
			for p, deps := range l.deps {
				for _, d := range deps {
					if tp, ok := at[modName(p)]; ok && !at[modName(d)].Before(tp) {
						t.Errorf("%s loaded before its dependency %s", modName(p), modName(d))
					}
				}
			}
		})
	}
}

// TestModLoaderErrors: what the kernel lacks, and a dependency that fails,
// are errors naming the module; a failed dependency stops its dependents.
func TestModLoaderErrors(t *testing.T) {
	l, recs := testLoader(t, map[string]error{"configfs": errors.New("finit_module: operation not permitted")})
	if err := l.load("nosuch", ""); !errors.Is(err, errModuleNotInImage) || !strings.Contains(err.Error(), "nosuch") {
		t.Errorf("load(nosuch) = %v, want errModuleNotInImage naming it", err)
	}
	if err := l.load("orphan", ""); !errors.Is(err, errModuleNotInImage) || !strings.Contains(err.Error(), "gone") {
		t.Errorf("load(orphan) = %v, want errModuleNotInImage naming gone", err)
	}
	err := l.load("netconsole", "")
	if err == nil || !strings.Contains(err.Error(), "netconsole") || !strings.Contains(err.Error(), "operation not permitted") {
		t.Errorf("load(netconsole) = %v, want the configfs failure", err)
	}
	for _, r := range recs() {
		if r.mod == "netconsole" || r.mod == "orphan" {
			t.Errorf("%s loaded although a dependency failed", r.mod)
		}
	}
}

// TestParseDepMalformed: a modules.dep line without a colon is an error
// naming the line.
func TestModLoaderMalformed(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "lib", "modules", "r")
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "modules.dep"), []byte("kernel/a.ko:\nkernel/b.ko kernel/a.ko\n"), 0o644)
	if _, err := newModLoader(root, "r"); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("newModLoader() = %v, want an error for line 2", err)
	}
	if _, err := newModLoader(t.TempDir(), "r"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("newModLoader(no modules.dep) = %v, want ErrNotExist", err)
	}
}

func TestAbsentPCI(t *testing.T) {
	e1000 := []string{"pci:v00008086d0000100Esv*sd*bc*sc*i*", "pci:v00008086d0000100Fsv*sd*bc*sc*i*"}
	virtioPCI := []string{"pci:v00001AF4d*sv*sd*bc*sc*i*"}
	// Modaliases in the form QEMU's virtio-net-pci, e1000 and q35 host bridge give.
	virtioDev := "pci:v00001AF4d00001000sv00001AF4sd00000001bc02sc00i00"
	e1000Dev := "pci:v00008086d0000100Esv00001AF4sd00001100bc02sc00i00"
	hostBridge := "pci:v00008086d000029C0sv00001AF4sd00001100bc06sc00i00"
	for _, tt := range []struct {
		name     string
		patterns []string
		devices  []string
		want     bool
	}{
		{"no device of its own", e1000, []string{virtioDev, hostBridge}, true},
		{"its device present", e1000, []string{virtioDev, e1000Dev}, false},
		{"wildcard device id", virtioPCI, []string{hostBridge, virtioDev}, false},
		{"no PCI devices at all", virtioPCI, []string{}, true},
		{"device list unreadable", e1000, nil, false},
		{"no aliases", nil, []string{hostBridge}, false},
		{"not only PCI aliases", append([]string{"of:N*T*Cvendor,nic"}, e1000...), []string{hostBridge}, false},
		{"virtio bus driver", []string{"virtio:d00000001v*"}, []string{hostBridge}, false},
		{"bad pattern is not absent", []string{"pci:v[0000"}, []string{hostBridge}, false},
	} {
		if got := absentPCI(tt.patterns, tt.devices); got != tt.want {
			t.Errorf("%s: absentPCI = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestParseAliasesAndReadPCI(t *testing.T) {
	m := parseAliases("# comment\nalias pci:v00008086d0000100Esv*sd*bc*sc*i* e1000\nalias virtio:d00000001v* virtio-net\nbogus line\nalias pci:v00008086d0000100Fsv*sd*bc*sc*i* e1000\n")
	if len(m["e1000"]) != 2 || len(m["virtio_net"]) != 1 || len(m) != 2 {
		t.Errorf("parseAliases = %v", m)
	}
	dir := t.TempDir()
	for name, alias := range map[string]string{"0000:00:00.0": "pci:v00008086d000029C0sv00001AF4sd00001100bc06sc00i00\n", "0000:00:02.0": "pci:v00001AF4d00001000sv00001AF4sd00000001bc02sc00i00\n"} {
		if err := os.MkdirAll(filepath.Join(dir, name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name, "modalias"), []byte(alias), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	devs := readPCIAliases(dir)
	if len(devs) != 2 || !absentPCI(m["e1000"], devs) {
		t.Errorf("readPCIAliases = %q; e1000 absent = %v", devs, absentPCI(m["e1000"], devs))
	}
	if readPCIAliases(filepath.Join(dir, "missing")) != nil {
		t.Error("a missing device dir gave a list (must be nil: nothing absent)")
	}
}

// TestModLoaderTimes: the step line's per-module figures name every module
// file loaded, once, each with a duration at least as long as its load
// (the fake load sleeps 1 ms), and nothing for built-in modules.
func TestModLoaderTimes(t *testing.T) {
	l, recs := testLoader(t, nil)
	if err := l.load("virtio_net", ""); err != nil {
		t.Fatal(err)
	}
	if err := l.load("pstore", ""); err != nil {
		t.Fatal(err)
	}
	got := strings.Fields(l.times())
	if len(got) != len(recs()) {
		t.Fatalf("times() = %q for %d loads", l.times(), len(recs()))
	}
	seen := map[string]bool{}
	for _, f := range got {
		name, rest, ok := strings.Cut(f, "=")
		dur, start, ok2 := strings.Cut(rest, "@")
		if !ok || !ok2 || seen[name] {
			t.Errorf("times() entry %q: want name=duration@start, each name once", f)
			continue
		}
		seen[name] = true
		d, err := time.ParseDuration(dur)
		if err != nil || d < time.Millisecond {
			t.Errorf("%s took %q (%v), want >= 1ms", name, dur, err)
		}
		if _, err := time.ParseDuration(start); err != nil {
			t.Errorf("%s start %q: %v", name, start, err)
		}
	}
	for _, m := range []string{"virtio_ring", "virtio", "failover", "net_failover", "virtio_net"} {
		if !seen[m] {
			t.Errorf("times() = %q lacks %s", l.times(), m)
		}
	}
}
