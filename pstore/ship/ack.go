package ship

import (
	"errors"
	"fmt"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// decodeAck decodes the collector's acknowledgement, one JSON object
// (protocol.go, Ack), without encoding/json: encoding/json and the reflect
// and sorting code it brings cost the agent's image about 62 KB of xz
// (README, "Image budget"). It is stricter than encoding/json: keys are
// matched ASCII case-insensitively as encoding/json does, a key or string
// that is not valid UTF-8 or holds non-ASCII letters in a key is refused,
// and a known field of the wrong type is an error. Unknown fields, of any
// JSON type, are skipped. Whenever decodeAck succeeds, encoding/json decodes
// the same Ack (FuzzDecodeAck checks this).
func decodeAck(b []byte) (Ack, error) {
	d := jsonDec{b: b}
	var a Ack
	d.space()
	if !d.eat('{') {
		return Ack{}, d.fail("expected {")
	}
	d.space()
	if !d.eat('}') {
		for {
			d.space()
			key, err := d.str()
			if err != nil {
				return Ack{}, err
			}
			for i := 0; i < len(key); i++ {
				if key[i] >= utf8.RuneSelf {
					return Ack{}, d.fail("non-ASCII key")
				}
			}
			d.space()
			if !d.eat(':') {
				return Ack{}, d.fail("expected :")
			}
			d.space()
			switch lower(key) {
			case "digest":
				err = d.strField(&a.Digest)
			case "path":
				err = d.strField(&a.Path)
			case "stored":
				err = d.boolField(&a.Stored)
			case "duplicate":
				err = d.boolField(&a.Duplicate)
			default:
				err = d.skip(0)
			}
			if err != nil {
				return Ack{}, err
			}
			d.space()
			if d.eat('}') {
				break
			}
			if !d.eat(',') {
				return Ack{}, d.fail("expected , or }")
			}
		}
	}
	d.space()
	if d.i != len(d.b) {
		return Ack{}, d.fail("data after the object")
	}
	return a, nil
}

// errJSON marks an acknowledgement that decodeAck cannot read.
var errJSON = errors.New("json")

type jsonDec struct {
	b []byte
	i int
}

func (d *jsonDec) fail(what string) error {
	return fmt.Errorf("%w: %s at byte %d", errJSON, what, d.i)
}

func (d *jsonDec) space() {
	for d.i < len(d.b) && (d.b[d.i] == ' ' || d.b[d.i] == '\t' || d.b[d.i] == '\n' || d.b[d.i] == '\r') {
		d.i++
	}
}

func (d *jsonDec) eat(c byte) bool {
	if d.i < len(d.b) && d.b[d.i] == c {
		d.i++
		return true
	}
	return false
}

func (d *jsonDec) lit(s string) bool {
	if len(d.b)-d.i >= len(s) && string(d.b[d.i:d.i+len(s)]) == s {
		d.i += len(s)
		return true
	}
	return false
}

func (d *jsonDec) strField(p *string) error {
	if d.lit("null") {
		return nil
	}
	s, err := d.str()
	*p = s
	return err
}

func (d *jsonDec) boolField(p *bool) error {
	switch {
	case d.lit("true"):
		*p = true
	case d.lit("false"):
		*p = false
	case d.lit("null"):
	default:
		return d.fail("expected true or false")
	}
	return nil
}

// str reads a JSON string (RFC 8259 section 7).
func (d *jsonDec) str() (string, error) {
	if !d.eat('"') {
		return "", d.fail("expected string")
	}
	var out []byte
	for {
		if d.i >= len(d.b) {
			return "", d.fail("unterminated string")
		}
		c := d.b[d.i]
		switch {
		case c == '"':
			d.i++
			if !utf8.Valid(out) {
				return "", d.fail("string not UTF-8")
			}
			return string(out), nil
		case c < 0x20:
			return "", d.fail("control character in string")
		case c != '\\':
			out = append(out, c)
			d.i++
			continue
		}
		d.i++
		if d.i >= len(d.b) {
			return "", d.fail("unterminated string")
		}
		e := d.b[d.i]
		d.i++
		switch e {
		case '"', '\\', '/':
			out = append(out, e)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, ok := d.hex4()
			if !ok {
				return "", d.fail("bad \\u escape")
			}
			if utf16.IsSurrogate(r) {
				// Only a valid pair: encoding/json turns a lone
				// surrogate into U+FFFD, refused here instead.
				if !d.lit(`\u`) {
					return "", d.fail("lone surrogate")
				}
				r2, ok := d.hex4()
				if r = utf16.DecodeRune(r, r2); !ok || r == utf8.RuneError {
					return "", d.fail("bad surrogate pair")
				}
			}
			out = utf8.AppendRune(out, r)
		default:
			return "", d.fail("bad escape")
		}
	}
}

func (d *jsonDec) hex4() (rune, bool) {
	if len(d.b)-d.i < 4 {
		return 0, false
	}
	n, err := strconv.ParseUint(string(d.b[d.i:d.i+4]), 16, 32)
	if err != nil {
		return 0, false
	}
	for _, c := range d.b[d.i : d.i+4] {
		if c == '+' || c == '-' || c == '_' {
			return 0, false
		}
	}
	d.i += 4
	return rune(n), true
}

// skip reads over one JSON value of any type; depth bounds nesting.
func (d *jsonDec) skip(depth int) error {
	if depth > 32 {
		return d.fail("nested too deep")
	}
	if d.i >= len(d.b) {
		return d.fail("expected value")
	}
	switch c := d.b[d.i]; {
	case c == '"':
		_, err := d.str()
		return err
	case d.lit("true"), d.lit("false"), d.lit("null"):
		return nil
	case c == '{' || c == '[':
		end := byte('}')
		if c == '[' {
			end = ']'
		}
		d.i++
		d.space()
		if d.eat(end) {
			return nil
		}
		for {
			d.space()
			if c == '{' {
				if _, err := d.str(); err != nil {
					return err
				}
				d.space()
				if !d.eat(':') {
					return d.fail("expected :")
				}
				d.space()
			}
			if err := d.skip(depth + 1); err != nil {
				return err
			}
			d.space()
			if d.eat(end) {
				return nil
			}
			if !d.eat(',') {
				return d.fail("expected , or end")
			}
		}
	case c == '-' || c >= '0' && c <= '9':
		return d.number()
	}
	return d.fail("unexpected character")
}

// number reads a JSON number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (d *jsonDec) number() error {
	d.eat('-')
	digits := func() int {
		n := 0
		for d.i < len(d.b) && d.b[d.i] >= '0' && d.b[d.i] <= '9' {
			d.i++
			n++
		}
		return n
	}
	if d.eat('0') {
		// no leading zeros
	} else if digits() == 0 {
		return d.fail("bad number")
	}
	if d.eat('.') && digits() == 0 {
		return d.fail("bad number")
	}
	if d.eat('e') || d.eat('E') {
		if !d.eat('+') {
			d.eat('-')
		}
		if digits() == 0 {
			return d.fail("bad number")
		}
	}
	return nil
}

func lower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
