package handoff

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// fakeRoot builds a small root file system in a temp dir: usr-merged /sbin,
// an absolute symlink for /sbin/init as systemd installs it, a loop, and a
// symlink that would escape the root.
func fakeRoot(t *testing.T) string {
	t.Helper()
	r := t.TempDir()
	for _, d := range []string{"usr/sbin", "usr/lib/systemd", "etc", "bin"} {
		if err := os.MkdirAll(filepath.Join(r, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(filepath.Join(r, "usr/lib/systemd/systemd"), []byte("#!"), 0o755))
	must(os.WriteFile(filepath.Join(r, "etc/init"), []byte("text"), 0o644)) // not executable
	must(os.Symlink("usr/sbin", filepath.Join(r, "sbin")))
	must(os.Symlink("/usr/lib/systemd/systemd", filepath.Join(r, "usr/sbin/init")))
	must(os.Symlink("loop", filepath.Join(r, "bin/loop")))
	must(os.Symlink("../../../../../../etc/passwd", filepath.Join(r, "bin/escape")))
	return r
}

func TestResolveIn(t *testing.T) {
	r := fakeRoot(t)
	for _, tt := range []struct {
		in, want string
		err      error // errors.Is target
	}{
		{in: "/sbin/init", want: "/usr/lib/systemd/systemd"},
		{in: "/usr/sbin/../sbin/./init", want: "/usr/lib/systemd/systemd"},
		{in: "/bin/escape", err: os.ErrNotExist}, // clamped to <root>/etc/passwd, absent
		{in: "/bin/loop", err: ErrLoop},
		{in: "/nope", err: os.ErrNotExist},
	} {
		got, err := ResolveIn(r, tt.in)
		if tt.err != nil {
			if !errors.Is(err, tt.err) {
				t.Errorf("ResolveIn(%s) = %q, %v; want %v", tt.in, got, err, tt.err)
			}
			continue
		}
		if err != nil || got != filepath.Join(r, tt.want) {
			t.Errorf("ResolveIn(%s) = %q, %v; want %q", tt.in, got, err, filepath.Join(r, tt.want))
		}
	}
}

func TestFindInit(t *testing.T) {
	r := fakeRoot(t)
	got, err := FindInit(r, []string{"/etc/init", "/bin/init", "/sbin/init"})
	if err != nil || got != "/sbin/init" {
		t.Errorf("FindInit() = %q, %v; want /sbin/init", got, err)
	}
	if got, err := FindInit(r, []string{"/etc/init", "/bin/sh"}); err == nil {
		t.Errorf("FindInit(no executable) = %q", got)
	}
}
