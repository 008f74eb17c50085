package initramfs

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/lastgasp/lastgasp/boards"
)

// DefaultCommands are the commands baked into the busybox next to the
// agent: lastgasp's rescue shell (package handoff/rescue), whose builtins
// (ls, cat, dmesg, mount, ...) are what it takes to look around a crashed
// box. It replaced u-root's gosh, ls and cat: 215 KB of xz, and ls's
// go-humanize cost ~12 ms of package init at every boot.
var DefaultCommands = []string{
	"github.com/lastgasp/lastgasp/cmd/lastgasp-sh",
}

// DefaultShell is the command /bin/sh links to (u-root's -defaultsh).
const DefaultShell = "lastgasp-sh"

// AgentPackage is the Go package of the agent; it becomes /init.
const AgentPackage = "github.com/lastgasp/lastgasp/cmd/lastgasp"

// Options describes one image build.
type Options struct {
	Board         *boards.Board
	BoardFile     string   // embedded as /etc/lastgasp/board
	KernelRoot    string   // unpacked kernel package (holds lib/modules/<release>)
	KernelRelease string   // e.g. 6.1.0-56-amd64
	WorkDir       string   // staging and intermediate files
	Output        string   // the .cpio.xz to write
	Commands      []string // u-root commands (DefaultCommands if nil)
	Stdout        io.Writer
	Stderr        io.Writer
}

// Result reports what Build made.
type Result struct {
	Modules   []string // module paths as stored in the image, dependency order
	CPIOBytes int64
	XZBytes   int64
	BCJ       string // the xz branch filter used ("x86"), or "" for none
}

// Build stages the board's modules and profile, runs the u-root builder
// pinned in go.mod (busybox mode; the agent is /init, lastgasp-sh /bin/sh), and
// compresses the archive with xz.
func Build(ctx context.Context, o Options) (*Result, error) {
	modDir := filepath.Join(o.KernelRoot, "lib", "modules", o.KernelRelease)
	depf, err := os.ReadFile(filepath.Join(modDir, "modules.dep"))
	if err != nil {
		return nil, fmt.Errorf("initramfs: %w (did depmod run?)", err)
	}
	dm, err := ParseDep(bytes.NewReader(depf))
	if err != nil {
		return nil, fmt.Errorf("initramfs: %w", err)
	}
	builtinRaw, _ := os.ReadFile(filepath.Join(modDir, "modules.builtin"))
	builtin, err := ParseBuiltin(bytes.NewReader(builtinRaw))
	if err != nil {
		return nil, fmt.Errorf("initramfs: modules.builtin: %w", err)
	}
	if err := dm.CheckModules(o.Board.Name, o.KernelRelease, boardModules(o.Board), builtin); err != nil {
		return nil, fmt.Errorf("initramfs: %w", err)
	}
	paths, err := dm.Closure(o.Board.ImageModules(), builtin)
	if err != nil {
		return nil, fmt.Errorf("initramfs: board %s: %w", o.Board.Name, err)
	}

	stage := filepath.Join(o.WorkDir, "stage")
	if err := os.RemoveAll(stage); err != nil {
		return nil, fmt.Errorf("initramfs: %w", err)
	}
	smod := filepath.Join(stage, "lib", "modules", o.KernelRelease)
	stored, err := StageModules(modDir, smod, dm, paths)
	if err != nil {
		return nil, fmt.Errorf("initramfs: %w", err)
	}
	if err := os.WriteFile(filepath.Join(smod, "modules.builtin"), builtinRaw, 0o644); err != nil {
		return nil, fmt.Errorf("initramfs: %w", err)
	}
	if err := copyFile(o.BoardFile, filepath.Join(stage, "etc", "lastgasp", "board")); err != nil {
		return nil, fmt.Errorf("initramfs: %w", err)
	}

	cmds := o.Commands
	if cmds == nil {
		cmds = DefaultCommands
	}
	cpio := filepath.Join(o.WorkDir, "initramfs.cpio")
	// u-root itself runs on the build host; GOARCH (the board's) is for
	// what it builds. "go run" would build the tool for GOARCH too, which
	// a foreign board's host cannot execute.
	uroot := filepath.Join(o.WorkDir, "u-root")
	tool := exec.CommandContext(ctx, "go", "build", "-o", uroot, "github.com/u-root/u-root")
	tool.Env = append(os.Environ(), "GOOS=", "GOARCH=", "CGO_ENABLED=0")
	tool.Stdout, tool.Stderr = o.Stdout, o.Stderr
	if err := tool.Run(); err != nil {
		return nil, fmt.Errorf("initramfs: build u-root for the host: %w", err)
	}
	args := []string{
		"-o", cpio,
		"-initcmd=lastgasp", "-uinitcmd=", "-defaultsh=" + DefaultShell,
		"-files", filepath.Join(stage, "etc", "lastgasp") + ":etc/lastgasp",
	}
	// Board build tags, e.g. lastgasp_notls (a lab agent without TLS); u-root
	// takes one -tags per tag.
	for _, t := range o.Board.BuildTags {
		args = append(args, "-tags", t)
	}
	// The collector's CA, if the board bakes it into the image; otherwise
	// it comes at boot with the per-host credential.
	if f := o.Board.UploadCAFile; f != "" {
		if !filepath.IsAbs(f) {
			f = filepath.Join(filepath.Dir(o.BoardFile), f)
		}
		if _, err := os.Stat(f); err != nil {
			return nil, fmt.Errorf("initramfs: upload.ca_file: %w", err)
		}
		args = append(args, "-files", f+":"+strings.TrimPrefix(o.Board.UploadCA, "/"))
	}
	args = append(args, cmds...)
	args = append(args, AgentPackage)
	cmd := exec.CommandContext(ctx, uroot, args...)
	cmd.Env = append(os.Environ(), "GOOS=linux", "GOARCH="+o.Board.Arch, "CGO_ENABLED=0")
	cmd.Stdout, cmd.Stderr = o.Stdout, o.Stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("initramfs: u-root build: %w", err)
	}
	// The modules go in an archive of their own, compressed without the
	// branch filter: it helps the agent's executable code (84 KB) but hurts
	// the modules' relocatable objects (16 KB). The kernel unpacks the
	// concatenated archives one after the other (each xz stream ends 4-byte
	// aligned, as the initramfs format wants).
	modCPIO := filepath.Join(o.WorkDir, "modules.cpio")
	if err := WriteTreeCPIO(filepath.Join(stage, "lib"), "lib", modCPIO); err != nil {
		return nil, fmt.Errorf("initramfs: modules archive: %w", err)
	}
	var cpioBytes int64
	for _, f := range []string{cpio, modCPIO} {
		st, err := os.Stat(f)
		if err != nil {
			return nil, fmt.Errorf("initramfs: %w", err)
		}
		cpioBytes += st.Size()
	}
	if err := os.MkdirAll(filepath.Dir(o.Output), 0o755); err != nil {
		return nil, fmt.Errorf("initramfs: %w", err)
	}
	out, err := os.Create(o.Output + ".tmp")
	if err != nil {
		return nil, fmt.Errorf("initramfs: %w", err)
	}
	// The kernel's xz decompressor supports only CRC32 (or no) checks.
	bcj := BCJFilter(o.Board.Arch, filepath.Join(o.KernelRoot, "boot", "config-"+o.KernelRelease))
	for _, part := range []struct{ bcj, file string }{{bcj, cpio}, {"", modCPIO}} {
		xz := exec.CommandContext(ctx, "xz", XZArgs(part.bcj, part.file)...)
		xz.Stdout, xz.Stderr = out, o.Stderr
		if err = xz.Run(); err != nil {
			break
		}
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("initramfs: xz: %w", err)
	}
	if err := os.Rename(o.Output+".tmp", o.Output); err != nil {
		return nil, fmt.Errorf("initramfs: %w", err)
	}
	xst, err := os.Stat(o.Output)
	if err != nil {
		return nil, fmt.Errorf("initramfs: %w", err)
	}
	return &Result{Modules: stored, CPIOBytes: cpioBytes, XZBytes: xst.Size(), BCJ: bcj}, nil
}

// StageModules copies the modules at paths (relative to modDir, from dm)
// into dst, decompressed (StoredName), and writes dst/modules.dep naming
// them as stored. It returns the stored paths, in the order of paths.
func StageModules(modDir, dst string, dm *DepMap, paths []string) ([]string, error) {
	stored := make([]string, len(paths))
	for i, p := range paths {
		raw, err := os.ReadFile(filepath.Join(modDir, p))
		if err != nil {
			return nil, err
		}
		obj, err := decompressModule(p, raw)
		if err != nil {
			return nil, err
		}
		stored[i] = StoredName(p)
		out := filepath.Join(dst, stored[i])
		if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
			return nil, err
		}
		if err := os.WriteFile(out, obj, 0o644); err != nil {
			return nil, err
		}
	}
	var dep bytes.Buffer
	if err := dm.WriteDep(&dep, paths); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dst, "modules.dep"), dep.Bytes(), 0o644); err != nil {
		return nil, fmt.Errorf("modules.dep: %w", err)
	}
	// The staged modules' aliases (a kernel tree without modules.alias
	// gives none: the agent then loads every board module).
	if raw, err := os.ReadFile(filepath.Join(modDir, "modules.alias")); err == nil {
		names := map[string]bool{}
		for _, p := range paths {
			names[ModName(p)] = true
		}
		alias, err := FilterAlias(bytes.NewReader(raw), names)
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(dst, "modules.alias"), alias, 0o644); err != nil {
			return nil, fmt.Errorf("modules.alias: %w", err)
		}
	}
	return stored, nil
}

// boardModules lists the modules of b by the key that names them.
func boardModules(b *boards.Board) []BoardModules {
	l := []BoardModules{{"modules", b.Modules}, {"modules.late", b.ModulesLate}, {"modules.ondemand", b.ModulesOnDemand}}
	if b.VLAN != 0 {
		l = append(l, BoardModules{"vlan", []string{boards.ModuleVLAN}})
	}
	return l
}

func copyFile(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	return os.WriteFile(dst, b, 0o644)
}
