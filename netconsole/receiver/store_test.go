package receiver

import (
	"encoding/hex"
	"strings"
	"testing"

	"github.com/lastgasp/lastgasp/netconsole/wire"
)

func TestEscapeName(t *testing.T) {
	for _, tt := range []struct {
		name, in, want string
	}{
		{"mac with dashes", "52-54-00-12-34-56", "52-54-00-12-34-56"},
		{"ipv4", "10.0.2.15", "10.0.2.15"},
		{"ipv6", "::1", "_3a_3a1"},
		{"empty", "", "_"},
		{"dot", ".", "_2e"},
		{"dot dot", "..", "_2e_2e"},
		{"hidden", ".ssh", "_2essh"},
		{"inner dots", "a..b", "a._2eb"},
		{"slash", "a/b", "a_2fb"},
		{"underscore is escaped", "a_b", "a_5fb"},
		{"escape lookalike stays distinct", "a_5fb", "a_5f5fb"},
		{"space and unicode", "é x", "_c3_a9_20x"},
		{"nul", "a\x00", "a_00"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := EscapeName(tt.in); got != tt.want {
				t.Errorf("EscapeName(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestEscapeNameLong(t *testing.T) {
	a, b := strings.Repeat("a", 200)+"1", strings.Repeat("a", 200)+"2"
	ea, eb := EscapeName(a), EscapeName(b)
	if len(ea) != maxNameLen || ea == eb {
		t.Errorf("EscapeName of long names = %q, %q: want distinct, %d bytes", ea, eb, maxNameLen)
	}
	if !validName(ea) {
		t.Errorf("EscapeName(long) = %q, not a valid name", ea)
	}
}

// validName reports whether s is a safe single path element.
func validName(s string) bool {
	if s == "" || s == "." || s == ".." || strings.HasPrefix(s, ".") || strings.Contains(s, "..") {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// unescapeName inverts EscapeName for names that were not cut.
func unescapeName(s string) (string, bool) {
	if s == "_" {
		return "", true
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '_' {
			b.WriteByte(s[i])
			continue
		}
		if i+2 >= len(s) {
			return "", false
		}
		v, err := hex.DecodeString(s[i+1 : i+3])
		if err != nil {
			return "", false
		}
		b.Write(v)
		i += 2
	}
	return b.String(), true
}

func FuzzEscapeName(f *testing.F) {
	for _, s := range []string{"52-54-00-12-34-56", "", ".", "..", "a..b", "../etc", "a_5fb", "é", strings.Repeat("x", 200)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := EscapeName(s)
		if !validName(got) || len(got) > maxNameLen {
			t.Fatalf("EscapeName(%q) = %q, not a valid name", s, got)
		}
		if strings.Contains(got, "_h") {
			return // cut and hashed
		}
		back, ok := unescapeName(got)
		if !ok || back != s {
			t.Fatalf("EscapeName(%q) = %q, which decodes to %q, %v", s, got, back, ok)
		}
	})
}

func TestParseAnnouncement(t *testing.T) {
	for _, tt := range []struct {
		name       string
		p          wire.Packet
		host, boot string
		ok         bool
	}{
		{
			name: "agent line",
			p:    wire.Packet{Extended: true, Text: "lastgasp: netconsole armed host=52-54-00-12-34-56 boot=1b6f dev=eth0"},
			host: "52-54-00-12-34-56", boot: "1b6f", ok: true,
		},
		{
			name: "legacy with printk time",
			p:    wire.Packet{Text: "[    2.5] lastgasp: armed boot=b host=h\n"},
			host: "h", boot: "b", ok: true,
		},
		{name: "missing boot", p: wire.Packet{Extended: true, Text: "lastgasp: armed host=h"}},
		{name: "empty host", p: wire.Packet{Extended: true, Text: "lastgasp: armed host= boot=b"}},
		{name: "other prefix", p: wire.Packet{Extended: true, Text: "lastgaspd: host=h boot=b"}},
		{name: "not at start", p: wire.Packet{Extended: true, Text: "x lastgasp: host=h boot=b"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			host, boot, ok := parseAnnouncement(tt.p)
			if host != tt.host || boot != tt.boot || ok != tt.ok {
				t.Errorf("parseAnnouncement(%q) = %q, %q, %v, want %q, %q, %v", tt.p.Text, host, boot, ok, tt.host, tt.boot, tt.ok)
			}
		})
	}
}

func FuzzParseAnnouncement(f *testing.F) {
	f.Add("lastgasp: netconsole armed host=52-54-00-12-34-56 boot=1b6f dev=eth0", true)
	f.Add("[ 1.0] lastgasp: host=a boot=b\n", false)
	f.Fuzz(func(t *testing.T, text string, extended bool) {
		host, boot, ok := parseAnnouncement(wire.Packet{Extended: extended, Text: text})
		if ok && (host == "" || boot == "" || strings.ContainsAny(host+boot, " \t\n")) {
			t.Fatalf("parseAnnouncement(%q) = %q, %q, true", text, host, boot)
		}
	})
}
