package initramfs

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
)

// ErrModuleNotFound is wrapped when a board names a module the kernel package
// does not have (as a file or built in).
var ErrModuleNotFound = errors.New("kernel module not found")

// DepMap is a parsed modules.dep: module path (relative to
// lib/modules/<release>) -> the paths it depends on.
type DepMap struct {
	deps   map[string][]string
	byName map[string]string // normalised name -> path
	order  []string          // file order, for deterministic output
}

// ModName normalises a module name or path the way the kernel does: base
// name without .ko[.xz|.gz|.zst], dashes as underscores.
func ModName(p string) string {
	b := path.Base(p)
	if i := strings.Index(b, ".ko"); i >= 0 {
		b = b[:i]
	}
	return strings.ReplaceAll(b, "-", "_")
}

// ParseDep parses modules.dep ("path: dep dep ...").
func ParseDep(r io.Reader) (*DepMap, error) {
	m := &DepMap{deps: map[string][]string{}, byName: map[string]string{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		p, rest, ok := strings.Cut(line, ":")
		p = strings.TrimSpace(p)
		if !ok || p == "" || !strings.Contains(path.Base(p), ".ko") || strings.Contains(p, "..") || strings.HasPrefix(p, "/") {
			return nil, fmt.Errorf("modules.dep line %d: malformed %q", n, line)
		}
		if _, dup := m.deps[p]; dup {
			return nil, fmt.Errorf("modules.dep line %d: %s listed twice", n, p)
		}
		deps := strings.Fields(rest)
		for _, d := range deps {
			if strings.Contains(d, "..") || strings.HasPrefix(d, "/") {
				return nil, fmt.Errorf("modules.dep line %d: bad dependency %q", n, d)
			}
		}
		m.deps[p] = deps
		m.byName[ModName(p)] = p
		m.order = append(m.order, p)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("modules.dep: %w", err)
	}
	return m, nil
}

// Closure returns the paths of the named modules and everything they depend
// on, dependencies first. Names in builtin (normalised) are skipped.
func (m *DepMap) Closure(names []string, builtin map[string]bool) ([]string, error) {
	var out []string
	state := map[string]int{} // 1 visiting, 2 done
	var visit func(p string, chain []string) error
	visit = func(p string, chain []string) error {
		switch state[p] {
		case 1:
			return fmt.Errorf("dependency cycle: %s -> %s", strings.Join(chain, " -> "), p)
		case 2:
			return nil
		}
		deps, ok := m.deps[p]
		if !ok {
			return fmt.Errorf("%s (needed by %s): %w", p, strings.Join(chain, " -> "), ErrModuleNotFound)
		}
		state[p] = 1
		for _, d := range deps {
			if err := visit(d, append(chain, p)); err != nil {
				return err
			}
		}
		state[p] = 2
		out = append(out, p)
		return nil
	}
	for _, n := range names {
		nn := ModName(n)
		if builtin[nn] {
			continue
		}
		p, ok := m.byName[nn]
		if !ok {
			return nil, fmt.Errorf("%s: %w", n, ErrModuleNotFound)
		}
		if err := visit(p, nil); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// WriteDep writes a modules.dep holding only paths (each with its deps),
// under the names the image stores them as (StoredName: decompressed).
func (m *DepMap) WriteDep(w io.Writer, paths []string) error {
	for _, p := range paths {
		// depmod's own format: no space after the colon when there are no
		// dependencies.
		line := StoredName(p) + ":"
		for _, d := range m.deps[p] {
			line += " " + StoredName(d)
		}
		if _, err := fmt.Fprintln(w, line); err != nil {
			return err
		}
	}
	return nil
}

// ParseBuiltin parses modules.builtin into a set of normalised names.
func ParseBuiltin(r io.Reader) (map[string]bool, error) {
	out := map[string]bool{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			out[ModName(l)] = true
		}
	}
	return out, sc.Err()
}
