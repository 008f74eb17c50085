package initramfs

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lastgasp/lastgasp/boards"
)

func TestCheckModules(t *testing.T) {
	m, err := ParseDep(strings.NewReader(dep))
	if err != nil {
		t.Fatal(err)
	}
	builtin := map[string]bool{"virtio_pci": true}
	lists := []BoardModules{
		{"modules", []string{"virtio-pci", "virtio_net", "netconsole", "igb"}},
		{"modules.late", []string{"ramoops", "ext4"}},
		{"modules.ondemand", []string{"igb"}}, // reported once, under its first key
	}
	err = m.CheckModules("srv", "6.12.0-test", lists, builtin)
	var me *MissingModulesError
	if !errors.As(err, &me) || !errors.Is(err, ErrModuleNotFound) {
		t.Fatalf("CheckModules = %v, want a *MissingModulesError wrapping ErrModuleNotFound", err)
	}
	want := []MissingModule{{"igb", "modules"}, {"ext4", "modules.late"}}
	if len(me.Missing) != len(want) || me.Missing[0] != want[0] || me.Missing[1] != want[1] {
		t.Errorf("Missing = %v, want %v", me.Missing, want)
	}
	for _, s := range []string{"board srv", "kernel 6.12.0-test", "igb (modules)", "ext4 (modules.late)"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q lacks %q", err, s)
		}
	}
	if err := m.CheckModules("srv", "6.12.0-test", nil, builtin); err != nil {
		t.Errorf("no modules: %v", err)
	}
	ok := []BoardModules{{"modules", []string{"virtio_pci", "netconsole"}}, {"modules.late", []string{"ramoops"}}}
	if err := m.CheckModules("srv", "6.12.0-test", ok, builtin); err != nil {
		t.Errorf("all present: %v", err)
	}
}

// TestBuildRefusesMissingModule: the image build stops with the module, the
// board key and the kernel release before it builds anything (the CI guard:
// make images-hw builds every board's image against its kernel package).
func TestBuildRefusesMissingModule(t *testing.T) {
	root := t.TempDir()
	const rel = "6.12.0-test-amd64"
	md := filepath.Join(root, "lib", "modules", rel)
	if err := os.MkdirAll(md, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(md, "modules.dep"), []byte(dep), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(md, "modules.builtin"), []byte("kernel/fs/pstore/pstore.ko\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		board, want string
	}{
		{"name = srv\narch = amd64\nkernel.package = linux-image-amd64\nmodules = configfs netconsole bnxt_en\n", "bnxt_en (modules)"},
		{"name = srv\narch = amd64\nkernel.package = linux-image-amd64\nmodules = netconsole\nmodules.late = ramoops efi_pstore\n", "efi_pstore (modules.late)"},
		{"name = srv\narch = amd64\nkernel.package = linux-image-amd64\nmodules = netconsole\nvlan = 100\n", "8021q (vlan)"},
	} {
		b, err := boards.Parse(strings.NewReader(tt.board))
		if err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(t.TempDir(), "initramfs.cpio.xz")
		_, err = Build(context.Background(), Options{Board: b, BoardFile: "/nonexistent", KernelRoot: root, KernelRelease: rel,
			WorkDir: t.TempDir(), Output: out})
		if !errors.Is(err, ErrModuleNotFound) || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), rel) {
			t.Errorf("Build(%q) = %v, want the missing %s on kernel %s", tt.board, err, tt.want, rel)
		}
		if _, serr := os.Stat(out); serr == nil {
			t.Errorf("Build(%q) wrote %s", tt.board, out)
		}
	}
}
