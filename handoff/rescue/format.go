package rescue

import (
	"strconv"
	"strings"
)

// String formats the script as shell source that parses back to the same
// script (the fuzz test holds it to that).
func (sc *Script) String() string {
	var b strings.Builder
	sc.format(&b)
	return b.String()
}

func (sc *Script) format(b *strings.Builder) {
	for i, it := range sc.Items {
		if i > 0 {
			b.WriteByte(' ')
		}
		it.AndOr.format(b)
		if it.Background {
			b.WriteString(" &")
		} else {
			b.WriteByte(';')
		}
	}
}

func (ao AndOr) format(b *strings.Builder) {
	ao.First.format(b)
	for _, l := range ao.Rest {
		b.WriteString(" " + l.Op + " ")
		l.Pipe.format(b)
	}
}

func (pl Pipeline) format(b *strings.Builder) {
	for i, c := range pl.Cmds {
		if i > 0 {
			b.WriteString(" | ")
		}
		c.format(b)
	}
}

func (c Cmd) format(b *strings.Builder) {
	sep := ""
	for _, a := range c.Assigns {
		b.WriteString(sep + a.Name + "=")
		a.Value.format(b)
		sep = " "
	}
	for _, w := range c.Args {
		b.WriteString(sep)
		w.format(b)
		sep = " "
	}
	for _, r := range c.Redirs {
		b.WriteString(sep + strconv.Itoa(r.Fd) + r.Op)
		r.Target.format(b)
		sep = " "
	}
}

// String formats the word as shell source.
func (w Word) String() string {
	var b strings.Builder
	w.format(&b)
	return b.String()
}

func (w Word) format(b *strings.Builder) {
	for _, p := range w {
		q := ""
		if p.Quoted {
			q = `"`
		}
		switch p.Kind {
		case Lit:
			if !p.Quoted {
				b.WriteString(p.Text) // the parser leaves no special byte unquoted
				continue
			}
			b.WriteByte('"')
			for i := 0; i < len(p.Text); i++ {
				switch c := p.Text[i]; c {
				case '\\', '"', '$', '`':
					b.WriteByte('\\')
					b.WriteByte(c)
				default:
					b.WriteByte(c)
				}
			}
			b.WriteByte('"')
		case Var:
			b.WriteString(q + "${" + p.Text + "}" + q)
		case Subst:
			b.WriteString(q + "$(")
			p.Sub.format(b)
			b.WriteString(")" + q)
		}
	}
}
