package target

import (
	"regexp"
	"testing"
)

// userdataKeyRef is the expression validUserdataKey replaced.
var userdataKeyRef = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)

func TestValidUserdataKey(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"host", true},
		{"boot", true},
		{"release_1.2-x", true},
		{"", false},
		{"a b", false},
		{"a/b", false},
		{"a=b", false},
		{"k\n", false},
		{"ключ", false},
	}
	for _, tt := range tests {
		if got := validUserdataKey(tt.in); got != tt.want {
			t.Errorf("validUserdataKey(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

// FuzzValidUserdataKey checks the loop against the expression it replaced.
func FuzzValidUserdataKey(f *testing.F) {
	for _, s := range []string{"host", "", "a b", "x\x00", "-", "."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := validUserdataKey(s), userdataKeyRef.MatchString(s); got != want {
			t.Errorf("validUserdataKey(%q) = %v, regexp says %v", s, got, want)
		}
	})
}
