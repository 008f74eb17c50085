package store

import (
	"errors"
	"strconv"
	"strings"
	"testing"
)

func TestHostDir(t *testing.T) {
	for _, tt := range []struct {
		name, in, want string
	}{
		{"mac with dashes", "52-54-00-12-34-56", "52-54-00-12-34-56"},
		{"ipv4 source", "10.0.2.15", "10.0.2.15"},
		{"underscore is valid and kept", "box_1", "box_1"},
		{"escape lookalike is valid and kept", "box_5f1", "box_5f1"},
		{"inner dots are valid", "a..b", "a..b"},
		{"ipv6 source", "::1", "%%3a%3a1"},
		{"ipv6 with zone", "fe80::1%eth0", "%fe80%3a%3a1%25eth0"},
		{"empty", "", "%"},
		{"dot", ".", "%%2e"},
		{"dot dot", "..", "%%2e."},
		{"hidden", ".ssh", "%%2essh"},
		{"slash", "a/b", "%a%2fb"},
		{"space and unicode", "é x", "%%c3%a9%20x"},
		{"nul", "a\x00", "%a%00"},
		{"underscore in an escaped name", "a b_c", "%a%20b%5fc"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := HostDir(tt.in); got != tt.want {
				t.Errorf("HostDir(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestHostDirLong(t *testing.T) {
	valid := strings.Repeat("a", 253)
	if got := HostDir(valid); got != valid {
		t.Errorf("HostDir(253 valid bytes) = %q, want the name itself", got)
	}
	a, b := strings.Repeat("a", 300)+"1", strings.Repeat("a", 300)+"2"
	ea, eb := HostDir(a), HostDir(b)
	if len(ea) != maxEscaped || ea == eb || !strings.Contains(ea, "%h") {
		t.Errorf("HostDir of long names = %q, %q: want distinct, %d bytes, hashed", ea, eb, maxEscaped)
	}
}

func TestCheckBoot(t *testing.T) {
	for _, tt := range []struct {
		boot     string
		reserved bool
		ok       bool
	}{
		{"", false, true},
		{"1b6f0a2c-0d2f-4c4e-9c1e-3f1b2a4c5d6e", false, true},
		{"crash", true, false},
		{"boot-unknown", true, false},
		{"a/b", false, false},
		{"..", false, false},
		{strings.Repeat("b", 200), false, false},
	} {
		err := CheckBoot(tt.boot)
		if (err == nil) != tt.ok || errors.Is(err, ErrReservedName) != tt.reserved {
			t.Errorf("CheckBoot(%q) = %v, want ok %v reserved %v", tt.boot, err, tt.ok, tt.reserved)
		}
	}
}

// unescape inverts escape for names that were not cut.
func unescape(s string) (string, bool) {
	s, ok := strings.CutPrefix(s, "%")
	if !ok {
		return "", false
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			b.WriteByte(s[i])
			continue
		}
		if i+3 > len(s) {
			return "", false
		}
		v, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
		if err != nil {
			return "", false
		}
		b.WriteByte(byte(v))
		i += 2
	}
	return b.String(), true
}

func FuzzHostDir(f *testing.F) {
	for _, s := range []string{"", ".", "..", "box_1", "::1", "a/b", "%41", strings.Repeat("x", 300)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := HostDir(s)
		if got == "" || got == "." || got == ".." || strings.ContainsAny(got, "/\x00") || len(got) > 253 {
			t.Fatalf("HostDir(%q) = %q, not one safe path element", s, got)
		}
		if got == s {
			if strings.Contains(s, "%") {
				t.Fatalf("HostDir(%q) kept a name with %%", s)
			}
			return
		}
		if !strings.HasPrefix(got, "%") {
			t.Fatalf("HostDir(%q) = %q: escaped but not marked", s, got)
		}
		if strings.Contains(got, "%h") && len(got) == maxEscaped {
			return // cut and hashed
		}
		if back, ok := unescape(got); !ok || back != s {
			t.Fatalf("HostDir(%q) = %q, which decodes to %q, %v", s, got, back, ok)
		}
	})
}
