package rescue

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// builtin runs in the shell's process with the command's descriptors.
type builtin func(s *Shell, fds stdio, args []string) int

// builtins are the shell's commands. The image carries no other programs
// than the agent and this shell, so what an operator needs on a crashed
// box is here: look around (ls, cat, dmesg), change things (echo > file,
// mkdir, rm, mount), and leave (reboot, poweroff). help, which lists them,
// is looked up apart (lookupBuiltin): in the map it would make an
// initialization cycle.
var builtins = map[string]builtin{
	":":        func(*Shell, stdio, []string) int { return 0 },
	"true":     func(*Shell, stdio, []string) int { return 0 },
	"false":    func(*Shell, stdio, []string) int { return 1 },
	"echo":     echo,
	"cd":       cd,
	"pwd":      func(s *Shell, f stdio, _ []string) int { fmt.Fprintln(f[1], s.Dir); return 0 },
	"exit":     exit,
	"export":   export,
	"unset":    unset,
	"cat":      cat,
	"ls":       ls,
	"mkdir":    mkdir,
	"rm":       rm,
	"sleep":    sleep,
	"dmesg":    dmesg,
	"mount":    mountCmd,
	"umount":   umountCmd,
	"sync":     syncCmd,
	"reboot":   rebootCmd,
	"poweroff": poweroffCmd,
}

func lookupBuiltin(name string) (builtin, bool) {
	if name == "help" {
		return help, true
	}
	b, ok := builtins[name]
	return b, ok
}

func failf(f stdio, format string, a ...any) int {
	fmt.Fprintf(f[2], format+"\n", a...)
	return 1
}

// flags splits leading -xyz options off args (after the command name).
func flags(args []string) (set string, rest []string) {
	rest = args[1:]
	for len(rest) > 0 && len(rest[0]) > 1 && rest[0][0] == '-' {
		if rest[0] == "--" {
			return set, rest[1:]
		}
		set += rest[0][1:]
		rest = rest[1:]
	}
	return set, rest
}

func echo(_ *Shell, f stdio, args []string) int {
	args = args[1:]
	nl := "\n"
	if len(args) > 0 && args[0] == "-n" {
		nl, args = "", args[1:]
	}
	if _, err := io.WriteString(f[1], strings.Join(args, " ")+nl); err != nil {
		return failf(f, "echo: %v", err)
	}
	return 0
}

func cd(s *Shell, f stdio, args []string) int {
	dir := s.vars["HOME"]
	if len(args) > 1 {
		dir = args[1]
	}
	if dir == "" {
		dir = "/"
	}
	p := s.path(dir)
	st, err := os.Stat(p)
	if err != nil {
		return failf(f, "cd: %v", err)
	}
	if !st.IsDir() {
		return failf(f, "cd: %s: not a directory", dir)
	}
	s.Dir = filepath.Clean(p)
	s.vars["PWD"] = s.Dir
	return 0
}

func exit(s *Shell, f stdio, args []string) int {
	s.exited = true
	if len(args) > 1 {
		n, err := strconv.Atoi(args[1])
		if err != nil {
			return failf(f, "exit: %q: want a number", args[1]) + 1
		}
		return n & 0xff
	}
	return s.status
}

func export(s *Shell, f stdio, args []string) int {
	if len(args) == 1 {
		var names []string
		for k := range s.exported {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, k := range names {
			fmt.Fprintf(f[1], "export %s=%s\n", k, (Word{{Kind: Lit, Text: s.vars[k], Quoted: true}}).String())
		}
		return 0
	}
	for _, a := range args[1:] {
		k, v, ok := strings.Cut(a, "=")
		if !isName(k) {
			return failf(f, "export: %q: not a name", k)
		}
		if ok {
			s.vars[k] = v
		}
		s.exported[k] = true
	}
	return 0
}

func unset(s *Shell, _ stdio, args []string) int {
	for _, k := range args[1:] {
		delete(s.vars, k)
		delete(s.exported, k)
	}
	return 0
}

// copyIntr copies until the end, an error, or an interrupt of the shell.
func (s *Shell) copyIntr(w io.Writer, r io.Reader) error {
	n0 := s.intr.Load()
	buf := make([]byte, 32<<10)
	for s.intr.Load() == n0 {
		n, err := r.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return werr
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
	return fmt.Errorf("interrupted")
}

func cat(s *Shell, f stdio, args []string) int {
	st := 0
	if len(args) == 1 {
		args = append(args, "-")
	}
	for _, a := range args[1:] {
		var r io.Reader = f[0]
		if a != "-" {
			in, err := os.Open(s.path(a))
			if err != nil {
				st = failf(f, "cat: %v", err)
				continue
			}
			defer in.Close()
			r = in
		}
		if err := s.copyIntr(f[1], r); err != nil {
			st = failf(f, "cat: %s: %v", a, err)
		}
	}
	return st
}

// ls lists directories (names one per line; -l adds type and mode, size
// and a symlink's target; -a shows dot files).
func ls(s *Shell, f stdio, args []string) int {
	opts, paths := flags(args)
	long, all := strings.Contains(opts, "l"), strings.Contains(opts, "a")
	if len(paths) == 0 {
		paths = []string{"."}
	}
	st := 0
	show := func(dir, name string, fi os.FileInfo) {
		if !long {
			fmt.Fprintln(f[1], name)
			return
		}
		line := fmt.Sprintf("%s %10d %s", fi.Mode(), fi.Size(), name)
		if fi.Mode()&os.ModeSymlink != 0 {
			if t, err := os.Readlink(filepath.Join(dir, name)); err == nil {
				line += " -> " + t
			}
		}
		fmt.Fprintln(f[1], line)
	}
	for i, p := range paths {
		full := s.path(p)
		fi, err := os.Lstat(full)
		if err != nil {
			st = failf(f, "ls: %v", err)
			continue
		}
		if !fi.IsDir() {
			show(filepath.Dir(full), p, fi)
			continue
		}
		if len(paths) > 1 {
			if i > 0 {
				fmt.Fprintln(f[1])
			}
			fmt.Fprintf(f[1], "%s:\n", p)
		}
		ents, err := os.ReadDir(full)
		if err != nil {
			st = failf(f, "ls: %v", err)
		}
		for _, e := range ents {
			if !all && strings.HasPrefix(e.Name(), ".") {
				continue
			}
			info, err := e.Info()
			if err != nil {
				fmt.Fprintln(f[1], e.Name())
				continue
			}
			show(full, e.Name(), info)
		}
	}
	return st
}

func mkdir(s *Shell, f stdio, args []string) int {
	opts, dirs := flags(args)
	st := 0
	for _, d := range dirs {
		var err error
		if strings.Contains(opts, "p") {
			err = os.MkdirAll(s.path(d), 0o755)
		} else {
			err = os.Mkdir(s.path(d), 0o755)
		}
		if err != nil {
			st = failf(f, "mkdir: %v", err)
		}
	}
	return st
}

func rm(s *Shell, f stdio, args []string) int {
	opts, names := flags(args)
	st := 0
	for _, n := range names {
		var err error
		if strings.Contains(opts, "r") {
			err = os.RemoveAll(s.path(n))
		} else {
			err = os.Remove(s.path(n))
		}
		if err != nil && !(strings.Contains(opts, "f") && os.IsNotExist(err)) {
			st = failf(f, "rm: %v", err)
		}
	}
	return st
}

func sleep(s *Shell, f stdio, args []string) int {
	if len(args) != 2 {
		return failf(f, "usage: sleep SECONDS")
	}
	d, err := time.ParseDuration(args[1] + "s")
	if err != nil || d < 0 {
		return failf(f, "sleep: %q: want seconds", args[1])
	}
	n0 := s.intr.Load()
	for end := time.Now().Add(d); time.Now().Before(end) && s.intr.Load() == n0; {
		time.Sleep(min(time.Until(end), 100*time.Millisecond))
	}
	return 0
}

func help(_ *Shell, f stdio, _ []string) int {
	var names []string
	for k := range builtins {
		names = append(names, k)
	}
	names = append(names, "help")
	sort.Strings(names)
	fmt.Fprintf(f[1], "lastgasp rescue shell: a POSIX subset (; & && || | < > >> N>&M \"\" '' \\ $VAR ${VAR} $? $(...) * ? [...])\nbuiltins: %s\nother programs are run from $PATH\n", strings.Join(names, " "))
	return 0
}
