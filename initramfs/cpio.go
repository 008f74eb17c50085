package initramfs

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/u-root/u-root/pkg/cpio"
)

// WriteTreeCPIO writes the tree under root as a newc archive at out, with
// names relative to root's parent prefixed by prefix (e.g. the stage's lib
// as "lib/..."), directories before what they hold, owned by root, with
// zero times (reproducible).
func WriteTreeCPIO(root, prefix, out string) error {
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	w := cpio.Newc.Writer(f)
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		name := prefix
		if rel != "." {
			name = prefix + "/" + filepath.ToSlash(rel)
		}
		switch {
		case d.IsDir():
			return w.WriteRecord(cpio.Directory(name, 0o755))
		case d.Type().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			return w.WriteRecord(cpio.StaticFile(name, string(b), 0o644))
		}
		return fmt.Errorf("%s: not a file or directory", p)
	})
	if err == nil {
		err = cpio.WriteTrailer(w)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
