package rescue

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrIncomplete is wrapped when the input ends inside a construct that the
// next line may finish (an open quote or $(, a trailing |, && or ||, a
// trailing backslash): the shell then reads a continuation line.
var ErrIncomplete = errors.New("incomplete input")

// ErrSyntax is wrapped when the input cannot be parsed however it goes on.
var ErrSyntax = errors.New("syntax error")

// Script is a parsed input: and-or lists separated by ';', '&' or newlines.
type Script struct {
	Items []Item
}

// Item is one and-or list; Background items ('&') are not waited for.
type Item struct {
	AndOr      AndOr
	Background bool
}

// AndOr is a pipeline followed by pipelines run depending on the status of
// the previous one ("&&": if it succeeded, "||": if it failed).
type AndOr struct {
	First Pipeline
	Rest  []Link
}

// Link is one "&& pipeline" or "|| pipeline".
type Link struct {
	Op   string // "&&" or "||"
	Pipe Pipeline
}

// Pipeline is commands connected stdout to stdin ('|').
type Pipeline struct {
	Cmds []Cmd
}

// Cmd is a simple command: assignments, words and redirections. A command
// with no words only assigns (in the shell) or only redirects.
type Cmd struct {
	Assigns []Assign
	Args    []Word
	Redirs  []Redir
}

// Assign is NAME=value.
type Assign struct {
	Name  string
	Value Word
}

// Redir is a redirection of file descriptor Fd: "<" (read), ">" (truncate),
// ">>" (append), ">&" and "<&" (duplicate the descriptor named by Target).
type Redir struct {
	Fd     int
	Op     string
	Target Word
}

// Word is one shell word before expansion: its quoted and unquoted parts.
type Word []Part

// PartKind says what a Part holds.
type PartKind int

// The kinds of a word's parts.
const (
	Lit   PartKind = iota // literal text
	Var                   // $NAME, ${NAME}, $?
	Subst                 // $(script)
)

// Part is a piece of a word. Quoted parts (inside ” or "", or escaped with
// a backslash) are not split into fields nor matched as file patterns.
type Part struct {
	Kind   PartKind
	Text   string  // Lit: the text; Var: the name
	Sub    *Script // Subst
	Quoted bool
}

// maxDepth bounds $( ) nesting, so that hostile input cannot exhaust the
// stack.
const maxDepth = 64

// Parse parses src (one or more lines).
func Parse(src string) (*Script, error) {
	src, more := joinLines(src)
	if more {
		return nil, fmt.Errorf("line continued with \\: %w", ErrIncomplete)
	}
	p := &parser{src: src}
	sc, err := p.script(0)
	if err != nil {
		return nil, err
	}
	if p.pos < len(p.src) {
		return nil, p.errorf("unexpected %q", p.src[p.pos])
	}
	return sc, nil
}

// joinLines removes each backslash-newline (line continuation, XCU 2.2.1:
// removed before the input is split into tokens, so "$\<newline>A" is $A)
// outside single quotes and comments. more reports one at the very end: the
// command goes on on the next line.
func joinLines(src string) (out string, more bool) {
	if !strings.Contains(src, "\\\n") {
		return src, false
	}
	var b strings.Builder
	sq, dq, comment := false, false, false
	var prev byte = '\n' // the last byte written
	for i := 0; i < len(src); i++ {
		c := src[i]
		switch {
		case comment:
			comment = c != '\n'
		case sq:
			sq = c != '\''
		case c == '\\' && i+1 < len(src):
			if src[i+1] == '\n' {
				if i+2 == len(src) {
					return "", true
				}
				i++
				continue
			}
			b.WriteByte(c) // an escaped pair: the second byte is not special
			i++
			c = src[i]
			if c == '#' {
				prev = 'x' // not a comment's start
			}
		case dq:
			dq = c != '"'
		case c == '\'':
			sq = true
		case c == '"':
			dq = true
		case c == '#':
			comment = isMeta(prev)
		}
		b.WriteByte(c)
		prev = c
	}
	return b.String(), false
}

type parser struct {
	src string
	pos int
}

func (p *parser) errorf(format string, a ...any) error {
	return fmt.Errorf("%s at offset %d: %w", fmt.Sprintf(format, a...), p.pos, ErrSyntax)
}

func (p *parser) incomplete(what string) error {
	return fmt.Errorf("%s: %w", what, ErrIncomplete)
}

func (p *parser) peek() byte {
	if p.pos < len(p.src) {
		return p.src[p.pos]
	}
	return 0
}

func (p *parser) eof() bool { return p.pos >= len(p.src) }

// blanks skips spaces, tabs, comments and backslash-newlines (not
// newlines, which separate commands).
func (p *parser) blanks() {
	for !p.eof() {
		switch c := p.src[p.pos]; {
		case c == ' ' || c == '\t' || c == '\r':
			p.pos++
		case c == '\\' && p.pos+1 < len(p.src) && p.src[p.pos+1] == '\n':
			p.pos += 2
		case c == '#':
			for !p.eof() && p.src[p.pos] != '\n' {
				p.pos++
			}
		default:
			return
		}
	}
}

// script parses items up to the end of input or, at depth > 0, up to the
// ')' that closes a $( (not consumed).
func (p *parser) script(depth int) (*Script, error) {
	if depth > maxDepth {
		return nil, p.errorf("$( nested more than %d deep", maxDepth)
	}
	sc := &Script{}
	for {
		p.blanks()
		if p.eof() {
			if depth > 0 {
				return nil, p.incomplete("unterminated $(")
			}
			return sc, nil
		}
		switch p.peek() {
		case '\n':
			p.pos++
			continue
		case ')':
			if depth > 0 {
				return sc, nil
			}
			return nil, p.errorf("unexpected )")
		}
		ao, err := p.andOr(depth)
		if err != nil {
			return nil, err
		}
		it := Item{AndOr: ao}
		p.blanks()
		switch {
		case p.eof(), p.peek() == '\n', p.peek() == ')':
		case p.peek() == ';':
			p.pos++
		case p.peek() == '&':
			p.pos++
			it.Background = true
		default:
			return nil, p.errorf("unexpected %q", p.peek())
		}
		sc.Items = append(sc.Items, it)
	}
}

func (p *parser) andOr(depth int) (AndOr, error) {
	first, err := p.pipeline(depth)
	if err != nil {
		return AndOr{}, err
	}
	ao := AndOr{First: first}
	for {
		p.blanks()
		op := ""
		if strings.HasPrefix(p.src[p.pos:], "&&") {
			op = "&&"
		} else if strings.HasPrefix(p.src[p.pos:], "||") {
			op = "||"
		} else {
			return ao, nil
		}
		p.pos += 2
		if err := p.continuation(op); err != nil {
			return AndOr{}, err
		}
		pl, err := p.pipeline(depth)
		if err != nil {
			return AndOr{}, err
		}
		ao.Rest = append(ao.Rest, Link{Op: op, Pipe: pl})
	}
}

// continuation skips blanks and newlines after an operator that needs a
// command after it; the end of input there means "read another line".
func (p *parser) continuation(op string) error {
	for {
		p.blanks()
		if p.eof() {
			return p.incomplete("command expected after " + op)
		}
		if p.peek() != '\n' {
			return nil
		}
		p.pos++
	}
}

func (p *parser) pipeline(depth int) (Pipeline, error) {
	var pl Pipeline
	for {
		c, err := p.cmd(depth)
		if err != nil {
			return Pipeline{}, err
		}
		pl.Cmds = append(pl.Cmds, c)
		p.blanks()
		if p.peek() != '|' || strings.HasPrefix(p.src[p.pos:], "||") {
			return pl, nil
		}
		p.pos++
		if err := p.continuation("|"); err != nil {
			return Pipeline{}, err
		}
	}
}

// isName reports whether s is a shell variable name.
func isName(s string) bool {
	if s == "" || '0' <= s[0] && s[0] <= '9' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

// isMeta reports whether c ends an unquoted word.
func isMeta(c byte) bool {
	switch c {
	case ' ', '\t', '\r', '\n', ';', '&', '|', '<', '>', '(', ')':
		return true
	}
	return false
}

func (p *parser) cmd(depth int) (Cmd, error) {
	var c Cmd
	for {
		p.blanks()
		if p.eof() || p.peek() == '\n' || p.peek() == ';' || p.peek() == '&' || p.peek() == '|' || p.peek() == ')' {
			break
		}
		if p.peek() == '(' {
			return Cmd{}, p.errorf("subshells ( ) are not supported")
		}
		// A redirection, with an optional descriptor number right before it.
		start := p.pos
		fd := -1
		for !p.eof() && '0' <= p.peek() && p.peek() <= '9' {
			p.pos++
		}
		if p.pos > start && (p.peek() == '<' || p.peek() == '>') {
			n, err := strconv.Atoi(p.src[start:p.pos])
			if err != nil || n > 9 {
				return Cmd{}, p.errorf("bad file descriptor %q", p.src[start:p.pos])
			}
			fd = n
		} else {
			p.pos = start
		}
		if p.peek() == '<' || p.peek() == '>' {
			r, err := p.redir(fd, depth)
			if err != nil {
				return Cmd{}, err
			}
			c.Redirs = append(c.Redirs, r)
			continue
		}
		w, err := p.word(depth)
		if err != nil {
			return Cmd{}, err
		}
		if len(c.Args) == 0 && len(w) > 0 && w[0].Kind == Lit && !w[0].Quoted {
			if name, val, ok := strings.Cut(w[0].Text, "="); ok && isName(name) {
				a := Assign{Name: name, Value: Word{}}
				if val != "" {
					a.Value = append(a.Value, Part{Kind: Lit, Text: val})
				}
				a.Value = append(a.Value, w[1:]...)
				c.Assigns = append(c.Assigns, a)
				continue
			}
		}
		c.Args = append(c.Args, w)
	}
	if len(c.Assigns) == 0 && len(c.Args) == 0 && len(c.Redirs) == 0 {
		if p.eof() {
			return Cmd{}, p.incomplete("command expected")
		}
		return Cmd{}, p.errorf("command expected before %q", p.peek())
	}
	return c, nil
}

func (p *parser) redir(fd, depth int) (Redir, error) {
	var r Redir
	in := p.peek() == '<'
	p.pos++
	switch {
	case in && p.peek() == '&':
		r.Op = "<&"
		p.pos++
	case in:
		r.Op = "<"
	case p.peek() == '>':
		r.Op = ">>"
		p.pos++
	case p.peek() == '&':
		r.Op = ">&"
		p.pos++
	default:
		r.Op = ">"
	}
	r.Fd = fd
	if fd < 0 {
		r.Fd = 1
		if in {
			r.Fd = 0
		}
	}
	p.blanks()
	if p.eof() || isMeta(p.peek()) {
		if p.eof() {
			return Redir{}, p.incomplete("file name expected after " + r.Op)
		}
		return Redir{}, p.errorf("file name expected after %s", r.Op)
	}
	w, err := p.word(depth)
	if err != nil {
		return Redir{}, err
	}
	r.Target = w
	return r, nil
}

// word parses one word; the caller has checked that one starts here.
func (p *parser) word(depth int) (Word, error) {
	w := Word{}
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			w = append(w, Part{Kind: Lit, Text: lit.String()})
			lit.Reset()
		}
	}
	for !p.eof() && !isMeta(p.peek()) {
		switch c := p.peek(); c {
		case '\'':
			flush()
			end := strings.IndexByte(p.src[p.pos+1:], '\'')
			if end < 0 {
				return nil, p.incomplete("unterminated '")
			}
			w = append(w, Part{Kind: Lit, Text: p.src[p.pos+1 : p.pos+1+end], Quoted: true})
			p.pos += end + 2
		case '"':
			flush()
			p.pos++
			parts, err := p.doubleQuoted(depth)
			if err != nil {
				return nil, err
			}
			w = append(w, parts...)
		case '\\':
			if p.pos+1 >= len(p.src) {
				return nil, p.incomplete("trailing \\")
			}
			if p.src[p.pos+1] == '\n' { // line continuation
				p.pos += 2
				continue
			}
			flush()
			w = append(w, Part{Kind: Lit, Text: p.src[p.pos+1 : p.pos+2], Quoted: true})
			p.pos += 2
		case '$':
			part, ok, err := p.dollar(depth, false)
			if err != nil {
				return nil, err
			}
			if !ok {
				lit.WriteByte('$')
				p.pos++
				continue
			}
			flush()
			w = append(w, part)
		case '`':
			return nil, p.errorf("backquotes are not supported: use $(...)")
		default:
			lit.WriteByte(c)
			p.pos++
		}
	}
	flush()
	return w, nil
}

// doubleQuoted parses after an opening '"' up to and past the closing one.
// "" is one empty quoted part, so that it stays an (empty) argument.
func (p *parser) doubleQuoted(depth int) ([]Part, error) {
	parts := []Part{}
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			parts = append(parts, Part{Kind: Lit, Text: lit.String(), Quoted: true})
			lit.Reset()
		}
	}
	for {
		if p.eof() {
			return nil, p.incomplete("unterminated \"")
		}
		switch c := p.peek(); c {
		case '"':
			p.pos++
			flush()
			if len(parts) == 0 {
				parts = append(parts, Part{Kind: Lit, Quoted: true})
			}
			return parts, nil
		case '\\':
			if p.pos+1 >= len(p.src) {
				return nil, p.incomplete("unterminated \"")
			}
			switch n := p.src[p.pos+1]; n {
			case '$', '`', '"', '\\':
				lit.WriteByte(n)
				p.pos += 2
			case '\n':
				p.pos += 2
			default:
				lit.WriteByte('\\')
				p.pos++
			}
		case '$':
			part, ok, err := p.dollar(depth, true)
			if err != nil {
				return nil, err
			}
			if !ok {
				lit.WriteByte('$')
				p.pos++
				continue
			}
			flush()
			parts = append(parts, part)
		case '`':
			return nil, p.errorf("backquotes are not supported: use $(...)")
		default:
			lit.WriteByte(c)
			p.pos++
		}
	}
}

// dollar parses $NAME, ${NAME}, $? or $(script) at p.pos. ok is false for
// a '$' that starts none of them (it is then literal).
func (p *parser) dollar(depth int, quoted bool) (Part, bool, error) {
	rest := p.src[p.pos+1:]
	switch {
	case strings.HasPrefix(rest, "("):
		p.pos += 2
		sub, err := p.script(depth + 1)
		if err != nil {
			return Part{}, false, err
		}
		if p.peek() != ')' {
			return Part{}, false, p.incomplete("unterminated $(")
		}
		p.pos++
		return Part{Kind: Subst, Sub: sub, Quoted: quoted}, true, nil
	case strings.HasPrefix(rest, "{"):
		end := strings.IndexByte(rest, '}')
		if end < 0 {
			return Part{}, false, p.incomplete("unterminated ${")
		}
		name := rest[1:end]
		if name != "?" && !isName(name) {
			return Part{}, false, p.errorf("bad substitution ${%s}", name)
		}
		p.pos += 1 + end + 1
		return Part{Kind: Var, Text: name, Quoted: quoted}, true, nil
	case strings.HasPrefix(rest, "?"):
		p.pos += 2
		return Part{Kind: Var, Text: "?", Quoted: quoted}, true, nil
	}
	n := 0
	for n < len(rest) && (rest[n] == '_' || 'a' <= rest[n] && rest[n] <= 'z' || 'A' <= rest[n] && rest[n] <= 'Z' || n > 0 && '0' <= rest[n] && rest[n] <= '9') {
		n++
	}
	if n == 0 {
		return Part{}, false, nil
	}
	p.pos += 1 + n
	return Part{Kind: Var, Text: rest[:n], Quoted: quoted}, true, nil
}
