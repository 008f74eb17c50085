package agent

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/lastgasp/lastgasp/boards"
	"golang.org/x/sys/unix"
)

// The agent loads kernel modules itself with finit_module(2), from the
// image's modules.dep. The image builder stores every module decompressed
// (initramfs.StoredName), so no decompressor is linked: u-root's
// pkg/kmodule, which this replaces, brings xz, zstd and parallel gzip
// readers (README, "Image budget", for the figures).

// errModuleNotInImage is wrapped when a module is neither in the image's
// modules.dep nor built into the kernel.
var errModuleNotInImage = errors.New("not in the image (neither in its modules.dep nor built in)")

// moduleInitCompressedFile is finit_module's MODULE_INIT_COMPRESSED_FILE
// (Linux 5.17+, CONFIG_MODULE_DECOMPRESS): the kernel decompresses the
// file itself. Used only for a compressed module in an image not made by
// lastgasp-image, which stores modules decompressed.
const moduleInitCompressedFile = 4

// modLoader loads modules and their dependencies, dependencies first;
// independent dependencies load concurrently (under one emulated CPU a
// probe that sleeps, such as virtio_pci's, then overlaps another's work).
// Each module is loaded at most once per loader. It is safe for concurrent
// use.
type modLoader struct {
	dir     string              // lib/modules/<release>
	deps    map[string][]string // path (relative to dir) -> its dependencies
	byName  map[string]string   // normalised name -> path
	builtin map[string]bool     // normalised names built into the kernel
	// aliases are the image's modules.alias patterns per normalised
	// name (none without the file: every module is then loaded).
	aliases map[string][]string
	// initFile loads one module file (finitModule; tests record instead:
	// a test must never load a module into the host's kernel).
	initFile func(file, params string) error

	mu   sync.Mutex
	once map[string]*modLoad
	// took records each finit_module's start (since the loader was made)
	// and duration, in completion order, for the step line: which module's
	// load or init costs what.
	t0   time.Time
	took []modTime
}

// modTime is one module file's load: when it started and how long the
// kernel took (reading, relocating, verifying and its init function).
type modTime struct {
	name       string
	start, dur time.Duration
}

// times formats the per-module figures, "virtio_pci=41ms@3ms ..." (duration
// at start offset; loads of independent chains overlap).
func (l *modLoader) times() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var s []string
	for _, t := range l.took {
		s = append(s, fmt.Sprintf("%s=%v@%v", t.name, t.dur.Round(100*time.Microsecond), t.start.Round(time.Millisecond)))
	}
	return strings.Join(s, " ")
}

// modLoad is one module's load, shared by every chain that needs it.
type modLoad struct {
	done chan struct{}
	err  error
}

// modName normalises a module name or path as the kernel does: base name
// without .ko and a compression suffix, dashes as underscores.
func modName(p string) string {
	b := path.Base(p)
	if i := strings.Index(b, ".ko"); i >= 0 {
		b = b[:i]
	}
	return strings.ReplaceAll(b, "-", "_")
}

// newModLoader reads modules.dep and modules.builtin under
// root/lib/modules/release.
func newModLoader(root, release string) (*modLoader, error) {
	l := &modLoader{dir: filepath.Join(root, "lib", "modules", release), deps: map[string][]string{},
		byName: map[string]string{}, builtin: map[string]bool{}, once: map[string]*modLoad{},
		initFile: finitModule, t0: time.Now()}
	depf := filepath.Join(l.dir, "modules.dep")
	f, err := os.Open(depf)
	if err != nil {
		return nil, fmt.Errorf("modules: %w", err)
	}
	defer f.Close()
	if err := l.parseDep(bufio.NewScanner(f)); err != nil {
		return nil, fmt.Errorf("modules: %s: %w", depf, err)
	}
	// No modules.builtin (a kernel without modules) means nothing is.
	if b, err := os.ReadFile(filepath.Join(l.dir, "modules.builtin")); err == nil {
		for _, line := range strings.Fields(string(b)) {
			l.builtin[modName(line)] = true
		}
	}
	if b, err := os.ReadFile(filepath.Join(l.dir, "modules.alias")); err == nil {
		l.aliases = parseAliases(string(b))
	}
	return l, nil
}

// parseAliases reads modules.alias lines ("alias PATTERN MODULE") into
// patterns per normalised module name; other lines are ignored.
func parseAliases(s string) map[string][]string {
	m := map[string][]string{}
	for _, line := range strings.Split(s, "\n") {
		f := strings.Fields(line)
		if len(f) == 3 && f[0] == "alias" {
			n := modName(f[2])
			m[n] = append(m[n], f[1])
		}
	}
	return m
}

// absentPCI reports whether module name is a PCI driver none of whose
// devices is present: every alias it has is a "pci:" one, and none matches
// a device's modalias (pciAliases, from /sys/bus/pci/devices). The PCI bus
// is enumerated by the kernel before /init, so the list is complete; a
// driver of another bus (virtio, USB, platform, device tree), a module
// without aliases, or an unreadable device list is never absent.
func absentPCI(patterns, pciAliases []string) bool {
	if len(patterns) == 0 || pciAliases == nil {
		return false
	}
	for _, p := range patterns {
		if !strings.HasPrefix(p, "pci:") {
			return false
		}
		for _, dev := range pciAliases {
			// modalias patterns are fnmatch globs over strings without
			// '/', which is what path.Match matches.
			if ok, err := path.Match(p, dev); ok || err != nil {
				return false
			}
		}
	}
	return true
}

// readPCIAliases returns the modalias of every PCI device under dir
// (/sys/bus/pci/devices), or nil if dir cannot be read (no PCI bus:
// nothing is taken as absent).
func readPCIAliases(dir string) []string {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	out := []string{}
	for _, e := range ents {
		if b, err := os.ReadFile(filepath.Join(dir, e.Name(), "modalias")); err == nil {
			out = append(out, strings.TrimSpace(string(b)))
		}
	}
	return out
}

// parseDep reads depmod's format: "path: dep dep ...", paths relative to
// the module directory.
func (l *modLoader) parseDep(sc *bufio.Scanner) error {
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for n := 1; sc.Scan(); n++ {
		p, rest, ok := strings.Cut(sc.Text(), ":")
		p = strings.TrimSpace(p)
		if p == "" && !ok {
			continue
		}
		if !ok || p == "" {
			return fmt.Errorf("line %d: malformed %q", n, sc.Text())
		}
		l.deps[p] = strings.Fields(rest)
		l.byName[modName(p)] = p
	}
	return sc.Err()
}

// load loads the named module (dash or underscore spelling) with params,
// after its dependencies (without parameters). A module the kernel already
// has, loaded or built in, is not an error.
func (l *modLoader) load(name, params string) error {
	n := modName(name)
	p, ok := l.byName[n]
	if !ok {
		if l.builtin[n] {
			return nil
		}
		return fmt.Errorf("module %s: %w", name, errModuleNotInImage)
	}
	return l.loadPath(p, params, nil)
}

func (l *modLoader) loadPath(p, params string, chain []string) error {
	for _, c := range chain {
		if c == p {
			return fmt.Errorf("module %s: dependency cycle %s -> %s", modName(p), strings.Join(chain, " -> "), p)
		}
	}
	l.mu.Lock()
	ml, started := l.once[p]
	if !started {
		ml = &modLoad{done: make(chan struct{})}
		l.once[p] = ml
	}
	l.mu.Unlock()
	if started {
		<-ml.done
		return ml.err
	}
	defer close(ml.done)

	deps, ok := l.deps[p]
	if !ok {
		// Named as a dependency but missing its own line.
		if l.builtin[modName(p)] {
			return nil
		}
		ml.err = fmt.Errorf("module %s (needed by %s): %w", modName(p), strings.Join(chain, " -> "), errModuleNotInImage)
		return ml.err
	}
	chain = append(chain[:len(chain):len(chain)], p)
	errs := make([]error, len(deps))
	var wg sync.WaitGroup
	for i, d := range deps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = l.loadPath(d, "", chain)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		ml.err = fmt.Errorf("module %s: %w", modName(p), err)
		return ml.err
	}
	start := time.Now()
	ml.err = l.initFile(filepath.Join(l.dir, p), params)
	l.mu.Lock()
	l.took = append(l.took, modTime{modName(p), start.Sub(l.t0), time.Since(start)})
	l.mu.Unlock()
	return ml.err
}

// finitModule loads one module file. EEXIST (loaded before, by us or
// anyone) is success; the errors the kernel gives for a module it cannot
// take are spelled out.
func finitModule(file, params string) error {
	f, err := os.Open(file)
	if err != nil {
		return fmt.Errorf("module %s: %w", modName(file), err)
	}
	defer f.Close()
	flags := 0
	if strings.HasSuffix(file, ".xz") || strings.HasSuffix(file, ".zst") || strings.HasSuffix(file, ".gz") {
		flags = moduleInitCompressedFile
	}
	err = unix.FinitModule(int(f.Fd()), params, flags)
	switch {
	case err == nil, errors.Is(err, unix.EEXIST):
		return nil
	case errors.Is(err, unix.ENOEXEC):
		return fmt.Errorf("module %s: finit_module: %w (not a module for this kernel: wrong build or version magic)", modName(file), err)
	case errors.Is(err, unix.ENOENT):
		return fmt.Errorf("module %s: finit_module: %w (unknown symbol: a dependency missing from modules.dep? see dmesg)", modName(file), err)
	case flags != 0 && (errors.Is(err, unix.EINVAL) || errors.Is(err, unix.EOPNOTSUPP)):
		return fmt.Errorf("module %s: finit_module: %w (compressed module and a kernel without CONFIG_MODULE_DECOMPRESS; build the image with lastgasp-image, which stores it decompressed)", modName(file), err)
	default:
		return fmt.Errorf("module %s: finit_module params %q: %w", modName(file), params, err)
	}
}

// loadModule loads one module (and its dependencies) from the image with
// params.
func (a *agent) loadModule(name, params string) error {
	l, err := newModLoader(a.Config.ModulesRoot, kernelRelease())
	if err != nil {
		return err
	}
	return l.load(name, params)
}

// loadModules loads the named board modules (and their dependencies, from
// the image's modules.dep) concurrently; independent chains load in
// parallel. ramoops gets the board's region as parameters: ramoops.*=
// on the kernel command line is applied only by modprobe, never to a
// module loaded with finit_module.
func (a *agent) loadModules(b *boards.Board, names []string, step string) {
	if len(names) == 0 {
		return
	}
	t0 := time.Now()
	l, err := newModLoader(a.Config.ModulesRoot, kernelRelease())
	if err != nil {
		a.Log.Step(step, t0, err, "")
		return
	}
	var unsigned *unsignedLoader
	if skipModuleSig(a.cmdline) {
		unsigned = newUnsignedLoader()
		l.initFile = unsigned.load
	}
	var (
		wg      sync.WaitGroup
		loaded  []string
		skipped []string
		pci     []string
		pciRead bool
	)
	errs := make([]error, len(names))
	for i, m := range names {
		if pats := l.aliases[modName(m)]; len(pats) > 0 && strings.HasPrefix(pats[0], "pci:") {
			if !pciRead {
				pci, pciRead = readPCIAliases(a.Config.SysBusPCI), true
			}
			if absentPCI(pats, pci) {
				skipped = append(skipped, m)
				continue
			}
		}
		loaded = append(loaded, m)
		params := ""
		if m == "ramoops" {
			if !a.ramoopsSafe(b) {
				continue
			}
			params = b.Ramoops.Params()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = l.load(m, params)
		}()
	}
	wg.Wait()
	note := ""
	if len(skipped) > 0 {
		note = fmt.Sprintf("; not loaded, no PCI device for them: %s", strings.Join(skipped, " "))
	}
	if unsigned != nil {
		note += fmt.Sprintf("; %d without their signatures (module.sig_enforce=0)", unsigned.stripped.Load())
		if unsigned.refused.Load() {
			note += ", the kernel refused that: the others signed"
		}
	}
	a.Log.Step(step, t0, errors.Join(errs...), "loaded %s%s; took %s", strings.Join(loaded, " "), note, l.times())
}
