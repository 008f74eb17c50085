package rescue

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// run runs src in a shell working in a fresh directory holding files, and
// returns what it wrote to stdout and stderr, and its status.
func run(t *testing.T, src string, files map[string]string) (stdout, stderr string, status int, dir string) {
	t.Helper()
	dir = t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	outf, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	errf, err := os.CreateTemp(t.TempDir(), "err")
	if err != nil {
		t.Fatal(err)
	}
	in, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	s := New([]string{"PATH=/usr/bin:/bin", "HOME=" + dir, "X=a  b"}, dir, in, outf, errf)
	status = s.RunString(src)
	o, _ := os.ReadFile(outf.Name())
	e, _ := os.ReadFile(errf.Name())
	outf.Close()
	errf.Close()
	return string(o), string(e), status, dir
}

func TestRun(t *testing.T) {
	files := map[string]string{"a.txt": "A\n", "b.txt": "B\n", "sub/c": "C", ".hidden": ""}
	tests := []struct {
		name   string
		src    string
		want   string
		status int
	}{
		{"marker", `echo PSTORE""END`, "PSTOREEND\n", 0},
		{"list", "echo a; echo b", "a\nb\n", 0},
		{"and-or", "false && echo no || echo yes; true && echo and", "yes\nand\n", 0},
		{"status", "false; echo $?; true; echo ${?}", "1\n0\n", 0},
		{"assignment and substitution", `x=$(echo hi there); echo "[$x]" [$x]`, "[hi there] [hi there]\n", 0},
		{"field splitting", `for_=$X; echo "$for_" $for_ "$(echo $for_)"`, "a  b a b a b\n", 0},
		{"empty quoted argument counts", `x=; echo a "" b "$x" $x c`, "a  b  c\n", 0},
		{"single quotes", `echo '$X "q"'`, "$X \"q\"\n", 0},
		{"escapes", `echo \$X a\ \ b`, "$X a  b\n", 0},
		{"substitution trims newlines", `x=$(echo a; echo; echo); echo "<$x>"`, "<a>\n", 0},
		{"nested", `echo $(echo $(echo deep))`, "deep\n", 0},
		{"redirect and append", "echo one > f; echo two >> f; cat f; cat < f", "one\ntwo\none\ntwo\n", 0},
		{"truncate", "echo long > f; echo s > f; cat f", "s\n", 0},
		{"stderr to stdout", "cat nosuch 2>&1", "cat: open " /* path follows */, 1},
		{"pipeline of builtins", "cat a.txt b.txt | cat | cat", "A\nB\n", 0},
		{"pipeline status is the last's", "false | true; echo $?; true | false; echo $?", "0\n1\n", 0},
		{"glob", "echo *.txt", "a.txt b.txt\n", 0},
		{"quoted glob is literal", `echo "*.txt" \*.txt`, "*.txt *.txt\n", 0},
		{"glob without match stays", "echo *.none", "*.none\n", 0},
		{"ls", "ls", "a.txt\nb.txt\nsub\n", 0},
		{"ls -a file", "ls -a . sub/c", ".:\n.hidden\na.txt\nb.txt\nsub\nsub/c\n", 0},
		{"cd", "cd sub; cat c; echo; cd; ls", "C\na.txt\nb.txt\nsub\n", 0},
		{"cd missing", "cd nosuch", "", 1},
		{"exit", "echo a; exit 3; echo b", "a\n", 3},
		{"exit in substitution ends only it", "x=$(exit 4; echo no); echo $? [$x]", "4 []\n", 0},
		{"assignment status from substitution", "x=$(false); echo $?", "1\n", 0},
		{"assignment alone is 0", "false; x=1; echo $?", "0\n", 0},
		{"export to a program", "export Y=exported; sh -c 'echo $Y'", "exported\n", 0},
		{"prefix assignment only for the program", "Z=prefix sh -c 'echo $Z'; echo [$Z]", "prefix\n[]\n", 0},
		{"program in a pipeline", "echo hello | tr a-z A-Z | cat", "HELLO\n", 0},
		{"program reads a builtin's output", "cat a.txt b.txt | wc -l", "2\n", 0},
		{"not found", "nosuchcommand", "", 127},
		{"unsupported keyword", "if true", "", 2},
		{"mkdir rm", "mkdir -p d/e; ls d; rm -r d; ls d", "e\n", 1},
		{"syntax error", "echo ;;", "", 2},
		{"background", "echo bg > f & sleep 0.2; cat f", "bg\n", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if strings.Contains(tt.src, "sh -c") || strings.Contains(tt.src, "tr ") || strings.Contains(tt.src, "wc ") {
				for _, p := range []string{"sh", "tr", "wc"} {
					if _, err := exec.LookPath(p); err != nil {
						t.Skipf("no %s on this host", p)
					}
				}
			}
			out, errs, st, _ := run(t, tt.src, files)
			if tt.name == "stderr to stdout" {
				if !strings.HasPrefix(out, tt.want) || st != tt.status {
					t.Errorf("%q: stdout %q status %d, want prefix %q status %d", tt.src, out, st, tt.want, tt.status)
				}
				return
			}
			if out != tt.want || st != tt.status {
				t.Errorf("%q: stdout %q status %d, want %q status %d (stderr %q)", tt.src, out, st, tt.want, tt.status, errs)
			}
		})
	}
}

func TestInteractive(t *testing.T) {
	dir := t.TempDir()
	outf, _ := os.CreateTemp(dir, "out")
	errf, _ := os.CreateTemp(dir, "err")
	defer outf.Close()
	defer errf.Close()
	s := New([]string{"HOME=/"}, dir, nil, outf, errf)
	in := "echo 'a\nb' |\ncat\necho ;;\necho after\nexit 5\necho never\n"
	if st := s.Interactive(strings.NewReader(in), "$ "); st != 5 {
		t.Errorf("status %d, want 5", st)
	}
	o, _ := os.ReadFile(outf.Name())
	e, _ := os.ReadFile(errf.Name())
	if string(o) != "a\nb\nafter\n" {
		t.Errorf("stdout %q", o)
	}
	if !strings.Contains(string(e), "syntax error") || strings.Count(string(e), "> ") != 2 {
		t.Errorf("stderr %q: want a syntax error and two continuation prompts", e)
	}
}

func TestFormatKmsg(t *testing.T) {
	// Documentation/ABI/testing/dev-kmsg's example record.
	got := formatKmsg("7,160,424069,-;pci_root PNP0A03:00: host bridge window [io  0x0000-0x0cf7] (ignored)\n SUBSYSTEM=acpi\n DEVICE=+acpi:PNP0A03:00\n")
	want := "[    0.424069] pci_root PNP0A03:00: host bridge window [io  0x0000-0x0cf7] (ignored)\n"
	if got != want {
		t.Errorf("formatKmsg = %q, want %q", got, want)
	}
}
