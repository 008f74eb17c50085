package initramfs

import (
	"bufio"
	"os"
	"strings"
)

// bcjFilters maps a Go architecture to the xz branch/call/jump filter for
// its machine code and the kernel option that lets the kernel's own xz
// decompressor undo it. The filter rewrites relative branch targets as
// absolute ones, which repeat and so compress better: about 4% of the QEMU
// image (84 KB), most of it the agent's machine code.
var bcjFilters = map[string]struct{ filter, config string }{
	"amd64": {"x86", "CONFIG_XZ_DEC_X86"},
	"386":   {"x86", "CONFIG_XZ_DEC_X86"},
	"arm64": {"arm64", "CONFIG_XZ_DEC_ARM64"},
	"arm":   {"arm", "CONFIG_XZ_DEC_ARM"},
}

// BCJFilter returns the xz branch filter to use for arch ("x86", ...), or ""
// when the kernel whose configuration is at kconfig (boot/config-<release>
// of the kernel package) cannot decompress it, or the configuration cannot
// be read: an initramfs the kernel cannot unpack does not boot, so the
// filter is used only when the kernel says it has the decoder.
func BCJFilter(arch, kconfig string) string {
	f, ok := bcjFilters[arch]
	if !ok {
		return ""
	}
	cf, err := os.Open(kconfig)
	if err != nil {
		return ""
	}
	defer cf.Close()
	sc := bufio.NewScanner(cf)
	for sc.Scan() {
		if strings.TrimSpace(sc.Text()) == f.config+"=y" {
			return f.filter
		}
	}
	return ""
}

// XZArgs is the xz command line that compresses file to standard output for
// the kernel: CRC32 checks (the kernel's decoder knows no other), the
// branch filter bcj if not empty, then LZMA2 at preset 9 with 4 literal
// context bits (lc=4: 4 KB less on the 2 MB image than the default 3).
func XZArgs(bcj, file string) []string {
	args := []string{"--check=crc32"}
	if bcj != "" {
		args = append(args, "--"+bcj)
	}
	return append(args, "--lzma2=preset=9,lc=4", "-c", file)
}
