package initramfs

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const dep = `kernel/drivers/virtio/virtio.ko:
kernel/drivers/virtio/virtio_ring.ko:
kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio_pci_legacy_dev.ko kernel/drivers/virtio/virtio_pci_modern_dev.ko kernel/drivers/virtio/virtio_ring.ko kernel/drivers/virtio/virtio.ko
kernel/drivers/virtio/virtio_pci_legacy_dev.ko:
kernel/drivers/virtio/virtio_pci_modern_dev.ko:
kernel/drivers/net/net_failover.ko: kernel/net/core/failover.ko
kernel/net/core/failover.ko:
kernel/drivers/net/virtio_net.ko: kernel/drivers/net/net_failover.ko kernel/net/core/failover.ko kernel/drivers/virtio/virtio_ring.ko kernel/drivers/virtio/virtio.ko
kernel/fs/configfs/configfs.ko:
kernel/drivers/net/netconsole.ko: kernel/fs/configfs/configfs.ko
kernel/lib/reed_solomon/reed_solomon.ko:
kernel/fs/pstore/ramoops.ko: kernel/lib/reed_solomon/reed_solomon.ko
kernel/drivers/a.ko: kernel/drivers/b.ko
kernel/drivers/b.ko: kernel/drivers/a.ko
kernel/drivers/c.ko: kernel/drivers/missing.ko
`

func TestClosure(t *testing.T) {
	m, err := ParseDep(strings.NewReader(dep))
	if err != nil {
		t.Fatal(err)
	}
	builtin := map[string]bool{"pstore": true}
	for _, tt := range []struct {
		name    string
		mods    []string
		want    []string
		wantErr bool
	}{
		{name: "netconsole", mods: []string{"netconsole"}, want: []string{"kernel/fs/configfs/configfs.ko", "kernel/drivers/net/netconsole.ko"}},
		{name: "shared deps once", mods: []string{"virtio-net", "virtio_pci"}, want: []string{
			"kernel/net/core/failover.ko", "kernel/drivers/net/net_failover.ko", "kernel/drivers/virtio/virtio_ring.ko",
			"kernel/drivers/virtio/virtio.ko", "kernel/drivers/net/virtio_net.ko",
			"kernel/drivers/virtio/virtio_pci_legacy_dev.ko", "kernel/drivers/virtio/virtio_pci_modern_dev.ko", "kernel/drivers/virtio/virtio_pci.ko"}},
		{name: "builtin skipped", mods: []string{"pstore", "ramoops"}, want: []string{"kernel/lib/reed_solomon/reed_solomon.ko", "kernel/fs/pstore/ramoops.ko"}},
		{name: "unknown", mods: []string{"nosuch"}, wantErr: true},
		{name: "cycle", mods: []string{"a"}, wantErr: true},
		{name: "missing dep", mods: []string{"c"}, wantErr: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := m.Closure(tt.mods, builtin)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("Closure(%v) = %v, want error", tt.mods, got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Closure(%v) (-want +got):\n%s", tt.mods, diff)
			}
		})
	}
	if _, err := m.Closure([]string{"nosuch"}, nil); !errors.Is(err, ErrModuleNotFound) {
		t.Errorf("err = %v, want ErrModuleNotFound", err)
	}
}

func TestParseDepMalformed(t *testing.T) {
	for _, in := range []string{"no colon here", "/abs/path.ko:", "kernel/x.ko: ../../etc/passwd", "kernel/x.ko:\nkernel/x.ko:\n", "notamodule:"} {
		if _, err := ParseDep(strings.NewReader(in)); err == nil {
			t.Errorf("ParseDep(%q) succeeded", in)
		}
	}
}

func FuzzParseDep(f *testing.F) {
	f.Add(dep, "virtio_net,netconsole")
	f.Add("a.ko: b.ko\nb.ko: a.ko\n", "a")
	f.Fuzz(func(t *testing.T, in, names string) {
		m, err := ParseDep(strings.NewReader(in))
		if err != nil {
			return
		}
		got, err := m.Closure(strings.Split(names, ","), nil)
		if err != nil {
			return
		}
		// Every module appears after all its dependencies, and once.
		pos := map[string]int{}
		for i, p := range got {
			if _, dup := pos[p]; dup {
				t.Fatalf("%s twice in %v", p, got)
			}
			pos[p] = i
		}
		for i, p := range got {
			for _, d := range m.deps[p] {
				if j, ok := pos[d]; !ok || j > i {
					t.Fatalf("%s before its dependency %s in %v", p, d, got)
				}
			}
		}
	})
}

func TestWriteDep(t *testing.T) {
	m, err := ParseDep(strings.NewReader(dep))
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := m.WriteDep(&b, []string{"kernel/fs/configfs/configfs.ko", "kernel/drivers/net/netconsole.ko"}); err != nil {
		t.Fatal(err)
	}
	want := "kernel/fs/configfs/configfs.ko:\nkernel/drivers/net/netconsole.ko: kernel/fs/configfs/configfs.ko\n"
	if b.String() != want {
		t.Errorf("WriteDep() = %q, want %q", b.String(), want)
	}
}
