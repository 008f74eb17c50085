package handoff

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// ErrLoop is wrapped when resolving a path follows too many symbolic links.
var ErrLoop = errors.New("too many levels of symbolic links")

// ResolveIn resolves the absolute path p as seen from inside root (absolute
// symbolic links restart at root, ".." stops at root), the way p resolves
// after a chroot into root. It returns the host path of the result.
// Every component must exist.
func ResolveIn(root, p string) (string, error) {
	if !strings.HasPrefix(p, "/") {
		return "", fmt.Errorf("handoff: resolve %q: not absolute", p)
	}
	cur := "/" // resolved prefix, inside root
	rest := p
	hops := 0
	for {
		rest = strings.TrimLeft(rest, "/")
		if rest == "" {
			return filepath.Join(root, cur), nil
		}
		var comp string
		comp, rest, _ = strings.Cut(rest, "/")
		switch comp {
		case ".":
			continue
		case "..":
			cur = path.Dir(cur)
			continue
		}
		next := path.Join(cur, comp)
		fi, err := os.Lstat(filepath.Join(root, next))
		if err != nil {
			return "", fmt.Errorf("handoff: resolve %s in %s: %w", p, root, err)
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			cur = next
			continue
		}
		if hops++; hops > 40 {
			return "", fmt.Errorf("handoff: resolve %s in %s: %w", p, root, ErrLoop)
		}
		link, err := os.Readlink(filepath.Join(root, next))
		if err != nil {
			return "", fmt.Errorf("handoff: resolve %s in %s: %w", p, root, err)
		}
		if strings.HasPrefix(link, "/") {
			cur = "/"
		}
		rest = link + "/" + rest
	}
}

// FindInit returns the first of inits that resolves inside root to an
// executable regular file.
func FindInit(root string, inits []string) (string, error) {
	var errs []error
	for _, in := range inits {
		hp, err := ResolveIn(root, in)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		fi, err := os.Stat(hp)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
			errs = append(errs, fmt.Errorf("handoff: %s in %s: not an executable file", in, root))
			continue
		}
		return in, nil
	}
	return "", fmt.Errorf("handoff: no init in %s: %w", root, errors.Join(errs...))
}
