package initramfs

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// elfSample is real ELF bytes (the start of this test binary), standing in
// for a module: what StageModules stores must equal it byte for byte.
func elfSample(t *testing.T) []byte {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > 200_000 {
		b = b[:200_000]
	}
	return b
}

// compressWith compresses data with the named tool's own binary (as
// Debian's kernel build does), falling back to klauspost's encoder for zstd
// where the zstd binary is not installed.
func compressWith(t *testing.T, tool string, data []byte) []byte {
	t.Helper()
	args := map[string][]string{
		"xz":   {"--check=crc32", "--lzma2=dict=1MiB", "-c"}, // Kbuild's flags for .ko.xz
		"zstd": {"-q", "-19", "-c"},
		"gzip": {"-9", "-n", "-c"},
	}[tool]
	if _, err := exec.LookPath(tool); err != nil {
		if tool != "zstd" {
			t.Fatalf("%s: %v", tool, err)
		}
		enc, err := zstd.NewWriter(nil)
		if err != nil {
			t.Fatal(err)
		}
		return enc.EncodeAll(data, nil)
	}
	cmd := exec.Command(tool, args...)
	cmd.Stdin = bytes.NewReader(data)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v", tool, err)
	}
	return out
}

func TestStoredName(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"kernel/drivers/net/netconsole.ko", "kernel/drivers/net/netconsole.ko"},
		{"kernel/drivers/net/netconsole.ko.xz", "kernel/drivers/net/netconsole.ko"},
		{"kernel/fs/pstore/ramoops.ko.zst", "kernel/fs/pstore/ramoops.ko"},
		{"kernel/fs/configfs/configfs.ko.gz", "kernel/fs/configfs/configfs.ko"},
		{"kernel/x.ko.bz2", "kernel/x.ko.bz2"}, // not a module compression kmod knows
	} {
		if got := StoredName(tt.in); got != tt.want {
			t.Errorf("StoredName(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestStageModulesDecompresses: modules compressed by xz, zstd and gzip
// (and a plain one) are stored decompressed, identical to the original, and
// the staged modules.dep names the stored files, dependencies included.
func TestStageModulesDecompresses(t *testing.T) {
	orig := elfSample(t)
	src, dst := t.TempDir(), t.TempDir()
	files := map[string][]byte{
		"kernel/fs/configfs/configfs.ko.xz":          compressWith(t, "xz", orig),
		"kernel/drivers/net/netconsole.ko.zst":       compressWith(t, "zstd", orig),
		"kernel/lib/reed_solomon/reed_solomon.ko.gz": compressWith(t, "gzip", orig),
		"kernel/fs/pstore/ramoops.ko":                orig,
	}
	for p, b := range files {
		if err := os.MkdirAll(filepath.Join(src, filepath.Dir(p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(src, p), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	const depIn = `kernel/fs/configfs/configfs.ko.xz:
kernel/drivers/net/netconsole.ko.zst: kernel/fs/configfs/configfs.ko.xz
kernel/lib/reed_solomon/reed_solomon.ko.gz:
kernel/fs/pstore/ramoops.ko: kernel/lib/reed_solomon/reed_solomon.ko.gz
`
	dm, err := ParseDep(strings.NewReader(depIn))
	if err != nil {
		t.Fatal(err)
	}
	paths, err := dm.Closure([]string{"netconsole", "ramoops"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	stored, err := StageModules(src, dst, dm, paths)
	if err != nil {
		t.Fatal(err)
	}
	wantStored := []string{"kernel/fs/configfs/configfs.ko", "kernel/drivers/net/netconsole.ko",
		"kernel/lib/reed_solomon/reed_solomon.ko", "kernel/fs/pstore/ramoops.ko"}
	if strings.Join(stored, " ") != strings.Join(wantStored, " ") {
		t.Errorf("stored = %v, want %v", stored, wantStored)
	}
	for _, p := range wantStored {
		got, err := os.ReadFile(filepath.Join(dst, p))
		if err != nil {
			t.Error(err)
			continue
		}
		if !bytes.Equal(got, orig) {
			t.Errorf("%s: %d bytes differ from the original's %d", p, len(got), len(orig))
		}
	}
	for p := range files {
		if p != StoredName(p) {
			if _, err := os.Stat(filepath.Join(dst, p)); err == nil {
				t.Errorf("%s: the compressed file is in the image too", p)
			}
		}
	}
	dep, err := os.ReadFile(filepath.Join(dst, "modules.dep"))
	if err != nil {
		t.Fatal(err)
	}
	const wantDep = `kernel/fs/configfs/configfs.ko:
kernel/drivers/net/netconsole.ko: kernel/fs/configfs/configfs.ko
kernel/lib/reed_solomon/reed_solomon.ko:
kernel/fs/pstore/ramoops.ko: kernel/lib/reed_solomon/reed_solomon.ko
`
	if string(dep) != wantDep {
		t.Errorf("modules.dep =\n%s\nwant\n%s", dep, wantDep)
	}
}

// TestStageModulesBad: a truncated or mislabelled file is a build-time
// error naming the module, not a module the kernel refuses at boot.
func TestStageModulesBad(t *testing.T) {
	orig := elfSample(t)
	xzed := compressWith(t, "xz", orig)
	for _, tt := range []struct {
		name string
		path string
		data []byte
	}{
		{"truncated xz", "kernel/a.ko.xz", xzed[:len(xzed)/2]},
		{"gzip named xz", "kernel/a.ko.xz", compressWith(t, "gzip", orig)},
		{"not ELF", "kernel/a.ko", []byte("hello, not a module")},
		{"xz of not ELF", "kernel/a.ko.xz", compressWith(t, "xz", []byte("hello, not a module"))},
	} {
		t.Run(tt.name, func(t *testing.T) {
			src := t.TempDir()
			os.MkdirAll(filepath.Join(src, "kernel"), 0o755)
			if err := os.WriteFile(filepath.Join(src, tt.path), tt.data, 0o644); err != nil {
				t.Fatal(err)
			}
			dm, err := ParseDep(strings.NewReader(tt.path + ":\n"))
			if err != nil {
				t.Fatal(err)
			}
			_, err = StageModules(src, t.TempDir(), dm, []string{tt.path})
			if err == nil || !strings.Contains(err.Error(), tt.path) {
				t.Errorf("StageModules(%s) err = %v, want an error naming it", tt.path, err)
			}
		})
	}
}
