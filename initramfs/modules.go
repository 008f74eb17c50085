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

// BoardModules are the modules a board names, by the key that names them
// (modules, modules.late, modules.ondemand; vlan for the 8021q a VLAN adds).
type BoardModules struct {
	Key   string
	Names []string
}

// MissingModulesError is the image build's refusal of a board that names
// modules its kernel package does not have: neither in modules.dep nor in
// modules.builtin. Each is named with the board key that names it, so a
// typo or a driver the kernel flavour leaves out is found at build time,
// not as a NIC that never shows up at boot.
type MissingModulesError struct {
	Board   string // board name
	Release string // kernel release, e.g. 6.12.117+deb12-amd64
	Missing []MissingModule
}

// MissingModule is one module a board names that its kernel lacks.
type MissingModule struct {
	Name string // as the board writes it
	Key  string // the board key naming it
}

// Error implements error.
func (e *MissingModulesError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "board %s: kernel %s lacks %d module(s) the board names (not in modules.dep, not built in):", e.Board, e.Release, len(e.Missing))
	for i, m := range e.Missing {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, " %s (%s)", m.Name, m.Key)
	}
	b.WriteString(": " + ErrModuleNotFound.Error())
	return b.String()
}

// Unwrap makes errors.Is(err, ErrModuleNotFound) hold.
func (e *MissingModulesError) Unwrap() error { return ErrModuleNotFound }

// CheckModules reports, as a *MissingModulesError, every module of lists
// that is neither a module of m nor in builtin (normalised names, as
// ParseBuiltin returns). Dependencies are checked by Closure.
func (m *DepMap) CheckModules(board, release string, lists []BoardModules, builtin map[string]bool) error {
	e := &MissingModulesError{Board: board, Release: release}
	seen := map[string]bool{}
	for _, l := range lists {
		for _, n := range l.Names {
			nn := ModName(n)
			if seen[nn] {
				continue
			}
			seen[nn] = true
			if _, ok := m.byName[nn]; !ok && !builtin[nn] {
				e.Missing = append(e.Missing, MissingModule{Name: n, Key: l.Key})
			}
		}
	}
	if len(e.Missing) > 0 {
		return e
	}
	return nil
}
