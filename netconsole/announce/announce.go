package announce

import (
	"strings"
	"unicode"
)

// Prefix starts every message the agent writes to the kernel log.
const Prefix = "lastgasp: "

// Armed is the text after Prefix that starts the announcement proper.
const Armed = "netconsole armed"

// Field is one extra key=value token of an announcement.
type Field struct {
	Key, Value string
}

// Announcement is who a netconsole stream belongs to.
type Announcement struct {
	// Host is the host name (the name its uploads use).
	Host string
	// Boot is the boot id (/proc/sys/kernel/random/boot_id).
	Boot string
	// Fields are further tokens (dev, local, remote, mac, ...), in order.
	Fields []Field
}

// Format returns the announcement's text without Prefix, the way the agent
// passes it to its kernel logger: "netconsole armed host=H boot=B k=v ...".
// Values must not contain spaces or newlines; Format replaces those with
// '-' so that Parse reads back what was meant.
func Format(a Announcement) string {
	var b strings.Builder
	b.WriteString(Armed)
	tok := func(k, v string) {
		b.WriteByte(' ')
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(clean(v))
	}
	tok("host", a.Host)
	tok("boot", a.Boot)
	for _, f := range a.Fields {
		if f.Key == "" || f.Key == "host" || f.Key == "boot" {
			continue
		}
		tok(clean(strings.ReplaceAll(f.Key, "=", "-")), f.Value)
	}
	return b.String()
}

func clean(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) || r < 0x20 || r == 0x7f {
			return '-'
		}
		return r
	}, s)
}

// Parse reports whether text, a kernel log message as received, is a
// lastgasp line carrying host= and boot=, and returns them. text may carry
// the "[    1.234567] " prefix of a legacy (non-extended) netconsole
// message. Host and boot are returned as sent; the caller validates them
// against the store's naming rules.
func Parse(text string) (Announcement, bool) {
	if strings.HasPrefix(text, "[") {
		if i := strings.Index(text, "] "); i > 0 && i < 32 {
			text = text[i+2:]
		}
	}
	rest, ok := strings.CutPrefix(text, Prefix)
	if !ok {
		return Announcement{}, false
	}
	var a Announcement
	for _, f := range strings.Fields(rest) {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			continue
		}
		switch k {
		case "host":
			if a.Host == "" {
				a.Host = v
			}
		case "boot":
			if a.Boot == "" {
				a.Boot = v
			}
		default:
			a.Fields = append(a.Fields, Field{k, v})
		}
	}
	if a.Host == "" || a.Boot == "" {
		return Announcement{}, false
	}
	return a, true
}
