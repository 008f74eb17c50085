package boards

import (
	"regexp"
	"testing"
)

// The former expressions, kept as the reference the loops must agree with.
var charsetRefs = []struct {
	name string
	re   *regexp.Regexp
	fn   func(string) bool
}{
	{"name", regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*$`), validName},
	{"tag", regexp.MustCompile(`^[A-Za-z0-9_.]+$`), validTag},
	{"host", regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`), validHost},
	{"ifname", regexp.MustCompile(`^[A-Za-z0-9_.-]{1,15}$`), validIfname},
}

func TestCharsets(t *testing.T) {
	long := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = 'a'
		}
		return string(b)
	}
	tests := []struct {
		check string
		in    string
		want  bool
	}{
		{"name", "qemu-x86_64", true},
		{"name", "qemu-x86_64-6.12", true},
		{"name", "", false},
		{"name", "-qemu", false},
		{"name", ".qemu", false},
		{"name", "Qemu", false},
		{"name", "qemu x86", false},
		{"name", "qemu/x86", false},
		{"name", "qemu\n", false},
		{"name", "0", true},
		{"tag", "lastgasp_tls", true},
		{"tag", "go1.22", true},
		{"tag", "a-b", false},
		{"tag", "", false},
		{"tag", "a,b", false},
		{"host", "web-01.example", true},
		{"host", long(64), true},
		{"host", long(65), false},
		{"host", "", false},
		{"host", "a b", false},
		{"host", "été", false},
		{"ifname", "eth0", true},
		{"ifname", "eth0.100", true},
		{"ifname", long(15), true},
		{"ifname", long(16), false},
		{"ifname", "eth0:1", false},
		{"ifname", "", false},
	}
	fns := map[string]func(string) bool{}
	for _, r := range charsetRefs {
		fns[r.name] = r.fn
	}
	for _, tt := range tests {
		if got := fns[tt.check](tt.in); got != tt.want {
			t.Errorf("%s(%q) = %v, want %v", tt.check, tt.in, got, tt.want)
		}
	}
}

// FuzzCharsets checks each loop against the expression it replaced.
func FuzzCharsets(f *testing.F) {
	for _, s := range []string{"qemu-x86_64", "", "-a", "A", "eth0.100", "a\n", "aaaaaaaaaaaaaaaa", "x\x00", "é"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, r := range charsetRefs {
			if got, want := r.fn(s), r.re.MatchString(s); got != want {
				t.Errorf("%s(%q) = %v, regexp %s says %v", r.name, s, got, r.re, want)
			}
		}
	})
}
