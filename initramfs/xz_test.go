package initramfs

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestBCJFilter(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	x86 := write("x86", "CONFIG_XZ_DEC=y\nCONFIG_XZ_DEC_X86=y\n# CONFIG_XZ_DEC_ARM is not set\n")
	none := write("none", "CONFIG_XZ_DEC=y\n# CONFIG_XZ_DEC_X86 is not set\nCONFIG_XZ_DEC_X86_64=y\n")
	arm64 := write("arm64", "CONFIG_XZ_DEC_ARM64=y\n")
	for _, tt := range []struct {
		arch, config, want string
	}{
		{"amd64", x86, "x86"},
		{"386", x86, "x86"},
		{"amd64", none, ""},
		{"amd64", filepath.Join(dir, "missing"), ""},
		{"arm64", x86, ""},
		{"arm64", arm64, "arm64"},
		{"riscv64", x86, ""},
	} {
		if got := BCJFilter(tt.arch, tt.config); got != tt.want {
			t.Errorf("BCJFilter(%s, %s) = %q, want %q", tt.arch, filepath.Base(tt.config), got, tt.want)
		}
	}
}

func TestXZArgs(t *testing.T) {
	if got, want := XZArgs("x86", "f"), []string{"--check=crc32", "--x86", "--lzma2=preset=9,lc=4", "-c", "f"}; !slices.Equal(got, want) {
		t.Errorf("XZArgs(x86) = %q, want %q", got, want)
	}
	if got, want := XZArgs("", "f"), []string{"--check=crc32", "--lzma2=preset=9,lc=4", "-c", "f"}; !slices.Equal(got, want) {
		t.Errorf("XZArgs() = %q, want %q", got, want)
	}
}
