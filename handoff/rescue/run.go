package rescue

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
)

// Shell is the interpreter's state. Its methods are not safe for concurrent
// use; pipelines, $( ) and background lists run on clones.
type Shell struct {
	// Stdin, Stdout and Stderr are the shell's descriptors 0, 1 and 2.
	Stdin, Stdout, Stderr *os.File
	// Dir is the working directory. The shell never calls os.Chdir, so
	// that clones in goroutines keep their own.
	Dir string

	vars     map[string]string
	exported map[string]bool
	status   int
	exited   bool
	// intr counts interrupts (SIGINT) so that long builtins (cat of an
	// endless file) stop; shared by clones.
	intr *atomic.Int64
}

// New makes a shell with the environment env ("NAME=value" entries, all
// exported) working in dir.
func New(env []string, dir string, stdin, stdout, stderr *os.File) *Shell {
	s := &Shell{Stdin: stdin, Stdout: stdout, Stderr: stderr, Dir: dir,
		vars: map[string]string{}, exported: map[string]bool{}, intr: new(atomic.Int64)}
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok && isName(k) {
			s.vars[k], s.exported[k] = v, true
		}
	}
	return s
}

// Status is the exit status of the last command.
func (s *Shell) Status() int { return s.status }

// Exited reports whether the exit builtin ran.
func (s *Shell) Exited() bool { return s.exited }

// Interrupt makes running builtins stop (the console's ^C).
func (s *Shell) Interrupt() { s.intr.Add(1) }

func (s *Shell) clone() *Shell {
	c := *s
	c.vars, c.exported = make(map[string]string, len(s.vars)), make(map[string]bool, len(s.exported))
	for k, v := range s.vars {
		c.vars[k] = v
	}
	for k, v := range s.exported {
		c.exported[k] = v
	}
	c.exited = false
	return &c
}

// RunString parses and runs src, and returns the status.
func (s *Shell) RunString(src string) int {
	sc, err := Parse(src)
	if err != nil {
		fmt.Fprintf(s.Stderr, "sh: %v\n", err)
		s.status = 2
		return s.status
	}
	return s.Run(sc)
}

// Run runs a parsed script and returns the status of its last command.
func (s *Shell) Run(sc *Script) int {
	for _, it := range sc.Items {
		if s.exited {
			break
		}
		if it.Background {
			c := s.clone()
			ao := it.AndOr
			go c.andOr(ao)
			s.status = 0
			continue
		}
		s.andOr(it.AndOr)
	}
	return s.status
}

func (s *Shell) andOr(ao AndOr) {
	s.pipeline(ao.First)
	for _, l := range ao.Rest {
		if s.exited {
			return
		}
		if (l.Op == "&&") != (s.status == 0) {
			continue
		}
		s.pipeline(l.Pipe)
	}
}

// stdio is one command's descriptors 0..9 (nil: closed).
type stdio [10]*os.File

func (s *Shell) pipeline(pl Pipeline) {
	base := stdio{s.Stdin, s.Stdout, s.Stderr}
	if len(pl.Cmds) == 1 {
		s.status = s.cmd(pl.Cmds[0], base, nil)
		return
	}
	var wg sync.WaitGroup
	statuses := make([]int, len(pl.Cmds))
	in := base[0]
	for i, c := range pl.Cmds {
		fds := base
		fds[0] = in
		var r, w *os.File
		if i < len(pl.Cmds)-1 {
			var err error
			if r, w, err = os.Pipe(); err != nil {
				fmt.Fprintf(s.Stderr, "sh: pipe: %v\n", err)
				s.status = 1
				break
			}
			fds[1] = w
		}
		// Each stage's own pipe ends are closed by it once done (or, for
		// a process, once started), so that readers see the end.
		var own []*os.File
		if in != base[0] {
			own = append(own, in)
		}
		if w != nil {
			own = append(own, w)
		}
		wg.Add(1)
		c, cl, i := c, s.clone(), i
		started := make(chan struct{})
		go func() {
			defer wg.Done()
			statuses[i] = cl.cmd(c, fds, started)
			for _, f := range own {
				f.Close()
			}
		}()
		<-started
		in = r
	}
	wg.Wait()
	s.status = statuses[len(statuses)-1]
}

// cmd runs one simple command with descriptors io and returns its status.
// started (if not nil) is closed once a process is started or the command
// runs in this goroutine, so that pipe ends can be passed on.
func (s *Shell) cmd(c Cmd, io stdio, started chan struct{}) (status int) {
	once := sync.Once{}
	start := func() {
		if started != nil {
			once.Do(func() { close(started) })
		}
	}
	defer start()
	var args []string
	for _, w := range c.Args {
		f, err := s.fields(w)
		if err != nil {
			fmt.Fprintf(io[2], "sh: %v\n", err)
			return 1
		}
		args = append(args, f...)
	}
	var opened []*os.File
	defer func() {
		for _, f := range opened {
			f.Close()
		}
	}()
	for _, r := range c.Redirs {
		t, err := s.expand(r.Target)
		if err != nil {
			fmt.Fprintf(io[2], "sh: %v\n", err)
			return 1
		}
		switch r.Op {
		case ">&", "<&":
			n, err := strconv.Atoi(t)
			if err != nil || n < 0 || n > 9 || io[n] == nil {
				fmt.Fprintf(io[2], "sh: %s%s: bad file descriptor\n", r.Op, t)
				return 1
			}
			io[r.Fd] = io[n]
			continue
		}
		flag := os.O_RDONLY
		switch r.Op {
		case ">":
			flag = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
		case ">>":
			flag = os.O_WRONLY | os.O_CREATE | os.O_APPEND
		}
		f, err := os.OpenFile(s.path(t), flag, 0o644)
		if err != nil {
			fmt.Fprintf(io[2], "sh: %v\n", err)
			return 1
		}
		opened = append(opened, f)
		io[r.Fd] = f
	}
	env := map[string]string{}
	for _, a := range c.Assigns {
		v, err := s.expand(a.Value)
		if err != nil {
			fmt.Fprintf(io[2], "sh: %v\n", err)
			return 1
		}
		if len(args) == 0 {
			s.vars[a.Name] = v
		} else {
			env[a.Name] = v
		}
	}
	if len(args) == 0 {
		if c.hasSubst() {
			return s.status // POSIX: the status of the last $( )
		}
		return 0
	}
	if b, ok := lookupBuiltin(args[0]); ok {
		start()
		return b(s, io, args)
	}
	switch args[0] {
	case "if", "then", "else", "elif", "fi", "for", "while", "until", "do", "done", "case", "esac", "function", "{", "}", "!":
		fmt.Fprintf(io[2], "sh: %s: not supported by this shell (help lists what is)\n", args[0])
		return 2
	}
	return s.external(args, env, io, start)
}

func (c Cmd) hasSubst() bool {
	for _, a := range c.Assigns {
		for _, p := range a.Value {
			if p.Kind == Subst {
				return true
			}
		}
	}
	return false
}

// exitSignal returns the signal that killed the process, if one did.
func exitSignal(ee *exec.ExitError) (int, bool) {
	if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return int(ws.Signal()), true
	}
	return 0, false
}

// external runs a program found on $PATH (or at a path with a '/').
func (s *Shell) external(args []string, env map[string]string, io stdio, start func()) int {
	path, err := s.lookPath(args[0])
	if err != nil {
		fmt.Fprintf(io[2], "sh: %s: %v\n", args[0], err)
		return 127
	}
	cmd := &exec.Cmd{Path: path, Args: args, Dir: s.Dir, Stdin: io[0], Stdout: io[1], Stderr: io[2]}
	for k, v := range s.vars {
		if _, ok := env[k]; !ok && s.exported[k] {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
	}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	if cmd.Env == nil {
		cmd.Env = []string{}
	}
	for n := 3; n < len(io); n++ {
		if io[n] != nil {
			for len(cmd.ExtraFiles) < n-3 {
				cmd.ExtraFiles = append(cmd.ExtraFiles, nil)
			}
			cmd.ExtraFiles = append(cmd.ExtraFiles, io[n])
		}
	}
	// A nil descriptor would be /dev/null to os/exec; the shell's are set.
	err = cmd.Start()
	start()
	if err != nil {
		fmt.Fprintf(io[2], "sh: %s: %v\n", args[0], err)
		return 126
	}
	err = cmd.Wait()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		if st, ok := exitSignal(ee); ok {
			return 128 + st
		}
		return ee.ExitCode()
	default:
		fmt.Fprintf(io[2], "sh: %s: %v\n", args[0], err)
		return 1
	}
}

// ErrNotFound is wrapped when a command is neither a builtin nor a file on
// $PATH.
var ErrNotFound = errors.New("command not found")

func (s *Shell) lookPath(name string) (string, error) {
	if strings.Contains(name, "/") {
		p := s.path(name)
		if _, err := os.Stat(p); err != nil {
			return "", err
		}
		return p, nil
	}
	for _, dir := range filepath.SplitList(s.vars["PATH"]) {
		if dir == "" {
			dir = "."
		}
		p := s.path(filepath.Join(dir, name))
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", ErrNotFound
}

// path makes p absolute against the shell's directory.
func (s *Shell) path(p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(s.Dir, p)
}

// value is a variable's value as expanded.
func (s *Shell) value(name string) string {
	if name == "?" {
		return strconv.Itoa(s.status)
	}
	return s.vars[name]
}

// subst runs a $( ) script on a clone and returns what it wrote, trailing
// newlines removed.
func (s *Shell) subst(sc *Script) (string, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return "", fmt.Errorf("$( ): %w", err)
	}
	c := s.clone()
	c.Stdout = w
	done := make(chan int, 1)
	go func() {
		st := c.Run(sc)
		w.Close()
		done <- st
	}()
	var b strings.Builder
	_, err = io.Copy(&b, r)
	r.Close()
	s.status = <-done
	if err != nil {
		return "", fmt.Errorf("$( ): %w", err)
	}
	return strings.TrimRight(b.String(), "\n"), nil
}

// expand expands a word into one string (assignments, redirection
// targets): no field splitting, no file patterns.
func (s *Shell) expand(w Word) (string, error) {
	var b strings.Builder
	for _, p := range w {
		switch p.Kind {
		case Lit:
			b.WriteString(p.Text)
		case Var:
			b.WriteString(s.value(p.Text))
		case Subst:
			v, err := s.subst(p.Sub)
			if err != nil {
				return "", err
			}
			b.WriteString(v)
		}
	}
	return b.String(), nil
}

// fields expands a command word: unquoted expansions are split at blanks,
// and a field with an unquoted *, ? or [ is replaced by the sorted file
// names it matches, if any.
func (s *Shell) fields(w Word) ([]string, error) {
	var out []string
	var cur, pat strings.Builder
	set, glob := false, false
	flush := func() {
		if !set {
			return
		}
		f := cur.String()
		if glob {
			if m, _ := filepath.Glob(s.path(pat.String())); len(m) > 0 {
				sort.Strings(m)
				if !filepath.IsAbs(f) {
					for i := range m {
						if r, err := filepath.Rel(s.Dir, m[i]); err == nil {
							m[i] = r
						}
					}
				}
				out = append(out, m...)
				f = ""
				set = false
			}
		}
		if set {
			out = append(out, f)
		}
		cur.Reset()
		pat.Reset()
		set, glob = false, false
	}
	add := func(text string, quoted bool) {
		for i := 0; i < len(text); i++ {
			c := text[i]
			if !quoted && (c == ' ' || c == '\t' || c == '\n') {
				flush()
				continue
			}
			cur.WriteByte(c)
			switch {
			case c == '*' || c == '?' || c == '[':
				if quoted {
					pat.WriteByte('\\')
				} else {
					glob = true
				}
			case c == '\\':
				pat.WriteByte('\\')
			}
			pat.WriteByte(c)
			set = true
		}
	}
	for _, p := range w {
		var text string
		switch p.Kind {
		case Lit:
			// An unquoted literal is never split (blanks ended the word)
			// but may hold a pattern.
			for i := 0; i < len(p.Text); i++ {
				c := p.Text[i]
				cur.WriteByte(c)
				switch {
				case (c == '*' || c == '?' || c == '[') && !p.Quoted:
					glob = true
				case c == '*' || c == '?' || c == '[' || c == '\\':
					pat.WriteByte('\\')
				}
				pat.WriteByte(c)
			}
			if p.Quoted || p.Text != "" {
				set = true
			}
			continue
		case Var:
			text = s.value(p.Text)
		case Subst:
			v, err := s.subst(p.Sub)
			if err != nil {
				return nil, err
			}
			text = v
		}
		if p.Quoted {
			set = true
		}
		add(text, p.Quoted)
	}
	flush()
	return out, nil
}

// Prompt is what the interactive shell prints before reading a command.
const Prompt = "lastgasp# "

// Interactive reads commands from r, line by line (continuing lines that
// end inside a quote, $( ) or after | && ||), and runs each, until the end
// of input or exit. prompt is written to the shell's Stderr before each
// command.
func (s *Shell) Interactive(r io.Reader, prompt string) int {
	br := bufio.NewReader(r)
	var pending string
	for !s.exited {
		if pending == "" {
			fmt.Fprint(s.Stderr, prompt)
		} else {
			fmt.Fprint(s.Stderr, "> ")
		}
		line, err := br.ReadString('\n')
		if line == "" && err != nil {
			if pending != "" {
				fmt.Fprintf(s.Stderr, "sh: end of input in an unfinished command\n")
			}
			return s.status
		}
		src := pending + line
		sc, perr := Parse(src)
		switch {
		case errors.Is(perr, ErrIncomplete):
			pending = src
			continue
		case perr != nil:
			fmt.Fprintf(s.Stderr, "sh: %v\n", perr)
			s.status = 2
		default:
			s.intr.Store(0)
			s.Run(sc)
		}
		pending = ""
	}
	return s.status
}
