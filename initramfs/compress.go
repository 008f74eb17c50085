package initramfs

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"strings"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// maxModuleSize bounds a decompressed module (the largest in Debian's 6.12
// package, amdgpu, is about 20 MB), so that a broken file cannot fill the
// disk.
const maxModuleSize = 256 << 20

// moduleCompressions are the suffixes depmod and kmod know for compressed
// modules (CONFIG_MODULE_COMPRESS_*), with their magic numbers.
var moduleCompressions = []struct {
	suffix string
	magic  []byte
}{
	{".xz", []byte{0xfd, '7', 'z', 'X', 'Z', 0}},
	{".zst", []byte{0x28, 0xb5, 0x2f, 0xfd}},
	{".gz", []byte{0x1f, 0x8b}},
}

// StoredName is the name a module has in the image: compressed modules
// (.ko.xz, .ko.zst, .ko.gz, as Debian's 6.12 ships them) are stored
// decompressed as .ko. The image is compressed as a whole, and a
// decompressed module loads with a plain finit_module, without a
// decompressor in the agent or CONFIG_MODULE_DECOMPRESS in the kernel.
func StoredName(p string) string {
	for _, c := range moduleCompressions {
		if strings.HasSuffix(p, ".ko"+c.suffix) {
			return strings.TrimSuffix(p, c.suffix)
		}
	}
	return p
}

// decompressModule returns a module file's ELF object: data itself for a
// plain .ko, else data decompressed by its suffix.
func decompressModule(name string, data []byte) ([]byte, error) {
	var r io.Reader
	for _, c := range moduleCompressions {
		if !strings.HasSuffix(name, ".ko"+c.suffix) {
			continue
		}
		if !bytes.HasPrefix(data, c.magic) {
			return nil, fmt.Errorf("module %s: no %s magic", name, c.suffix)
		}
		var err error
		switch c.suffix {
		case ".xz":
			r, err = xz.NewReader(bytes.NewReader(data))
		case ".zst":
			var d *zstd.Decoder
			d, err = zstd.NewReader(bytes.NewReader(data), zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(maxModuleSize))
			if err == nil {
				defer d.Close()
				r = d
			}
		case ".gz":
			r, err = gzip.NewReader(bytes.NewReader(data))
		}
		if err != nil {
			return nil, fmt.Errorf("module %s: %w", name, err)
		}
		break
	}
	if r != nil {
		out, err := io.ReadAll(io.LimitReader(r, maxModuleSize+1))
		if err != nil {
			return nil, fmt.Errorf("module %s: decompress: %w", name, err)
		}
		if len(out) > maxModuleSize {
			return nil, fmt.Errorf("module %s: decompressed size over %d bytes", name, maxModuleSize)
		}
		data = out
	}
	// Every module is an ELF relocatable object; anything else would be
	// refused by the kernel at boot, far from its cause.
	if !bytes.HasPrefix(data, []byte("\x7fELF")) {
		return nil, fmt.Errorf("module %s: not an ELF object", name)
	}
	return data, nil
}
