package rescue

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func lit(s string) Part  { return Part{Kind: Lit, Text: s} }
func qlit(s string) Part { return Part{Kind: Lit, Text: s, Quoted: true} }
func w(ps ...Part) Word  { return Word(ps) }
func args(ws ...string) []Word {
	var out []Word
	for _, s := range ws {
		out = append(out, w(lit(s)))
	}
	return out
}
func one(c Cmd) *Script {
	return &Script{Items: []Item{{AndOr: AndOr{First: Pipeline{Cmds: []Cmd{c}}}}}}
}

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want *Script
	}{
		{"empty", "", &Script{}},
		{"blank lines and comment", "\n  # nothing\n\n", &Script{}},
		{"simple", "ls /sys/fs/pstore", one(Cmd{Args: args("ls", "/sys/fs/pstore")})},
		// The e2e marker: "" between two halves, so that the echoed
		// command line does not contain the joined marker.
		{"empty quotes join", `echo PSTORE""END`, one(Cmd{Args: []Word{w(lit("echo")), w(lit("PSTORE"), qlit(""), lit("END"))}})},
		{"redirect", "echo c > /proc/sysrq-trigger", one(Cmd{Args: args("echo", "c"),
			Redirs: []Redir{{Fd: 1, Op: ">", Target: w(lit("/proc/sysrq-trigger"))}}})},
		{"append and input", "cat <in >>out", one(Cmd{Args: args("cat"),
			Redirs: []Redir{{Fd: 0, Op: "<", Target: w(lit("in"))}, {Fd: 1, Op: ">>", Target: w(lit("out"))}}})},
		{"dup", "cmd 2>&1", one(Cmd{Args: args("cmd"), Redirs: []Redir{{Fd: 2, Op: ">&", Target: w(lit("1"))}}})},
		{"digits not before > are a word", "echo 2 >f", one(Cmd{Args: args("echo", "2"), Redirs: []Redir{{Fd: 1, Op: ">", Target: w(lit("f"))}}})},
		{"assignment from substitution", "x=$(cat /dev/zero)", one(Cmd{Assigns: []Assign{{Name: "x",
			Value: w(Part{Kind: Subst, Sub: one(Cmd{Args: args("cat", "/dev/zero")})})}}})},
		{"assignment prefix", "A=1 B= cmd A=2", one(Cmd{Assigns: []Assign{{Name: "A", Value: w(lit("1"))}, {Name: "B", Value: Word{}}},
			Args: args("cmd", "A=2")})},
		{"not a name", "1x=2", one(Cmd{Args: args("1x=2")})},
		{"single quotes keep everything", `echo 'a $x "b"'`, one(Cmd{Args: []Word{w(lit("echo")), w(qlit(`a $x "b"`))}})},
		{"double quotes expand", `echo "a $x ${y}z $? \$ \" \n"`, one(Cmd{Args: []Word{w(lit("echo")), w(qlit("a "),
			Part{Kind: Var, Text: "x", Quoted: true}, qlit(" "), Part{Kind: Var, Text: "y", Quoted: true}, qlit("z "),
			Part{Kind: Var, Text: "?", Quoted: true}, qlit(` $ " \n`))}})},
		{"backslash outside quotes", `echo a\ b\*`, one(Cmd{Args: []Word{w(lit("echo")), w(lit("a"), qlit(" "), lit("b"), qlit("*"))}})},
		{"lone dollar", "echo $ $1 a$", one(Cmd{Args: args("echo", "$", "$1", "a$")})},
		{"hash inside a word", "echo a#b # comment", one(Cmd{Args: args("echo", "a#b")})},
		{"line continuation", "echo a \\\n b", one(Cmd{Args: args("echo", "a", "b")})},
		// Removed before tokens are made (XCU 2.2.1): $\<newline>A is $A.
		{"continuation inside an expansion", "echo $\\\nA a\\\nb", one(Cmd{Args: []Word{w(lit("echo")), w(Part{Kind: Var, Text: "A"}), w(lit("ab"))}})},
		{"continuation kept in single quotes", "echo 'a\\\nb'", one(Cmd{Args: []Word{w(lit("echo")), w(qlit("a\\\nb"))}})},
		{"a comment ends at its newline", "# c \\\necho x", one(Cmd{Args: args("echo", "x")})},
		{"escaped hash is no comment", "echo \\#x", one(Cmd{Args: []Word{w(lit("echo")), w(qlit("#"), lit("x"))}})},
		{"lists", "a; b & c\nd", &Script{Items: []Item{
			{AndOr: AndOr{First: Pipeline{Cmds: []Cmd{{Args: args("a")}}}}},
			{AndOr: AndOr{First: Pipeline{Cmds: []Cmd{{Args: args("b")}}}}, Background: true},
			{AndOr: AndOr{First: Pipeline{Cmds: []Cmd{{Args: args("c")}}}}},
			{AndOr: AndOr{First: Pipeline{Cmds: []Cmd{{Args: args("d")}}}}},
		}}},
		{"and-or and pipes", "a | b && c || d|e", &Script{Items: []Item{{AndOr: AndOr{
			First: Pipeline{Cmds: []Cmd{{Args: args("a")}, {Args: args("b")}}},
			Rest: []Link{{Op: "&&", Pipe: Pipeline{Cmds: []Cmd{{Args: args("c")}}}},
				{Op: "||", Pipe: Pipeline{Cmds: []Cmd{{Args: args("d")}, {Args: args("e")}}}}},
		}}}}},
		{"pipe continues on the next line", "a |\n b", &Script{Items: []Item{{AndOr: AndOr{
			First: Pipeline{Cmds: []Cmd{{Args: args("a")}, {Args: args("b")}}}}}}}},
		{"nested substitution in quotes", `echo "$(echo "$(x)")"`, one(Cmd{Args: []Word{w(lit("echo")),
			w(Part{Kind: Subst, Quoted: true, Sub: one(Cmd{Args: []Word{w(lit("echo")),
				w(Part{Kind: Subst, Quoted: true, Sub: one(Cmd{Args: args("x")})})}})})}})},
		{"empty substitution", "echo $()", one(Cmd{Args: []Word{w(lit("echo")), w(Part{Kind: Subst, Sub: &Script{}})}})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.in)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.in, err)
			}
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("Parse(%q) (-want +got):\n%s", tt.in, d)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		in   string
		want error
	}{
		{`echo 'a`, ErrIncomplete},
		{`echo "a`, ErrIncomplete},
		{`echo $(a`, ErrIncomplete},
		{`echo ${a`, ErrIncomplete},
		{`a |`, ErrIncomplete},
		{`a &&`, ErrIncomplete},
		{`a ||  `, ErrIncomplete},
		{`echo a\`, ErrIncomplete},
		{"echo a\\\n", ErrIncomplete},
		{"echo \"a\\\n", ErrIncomplete},
		{`echo >`, ErrIncomplete},
		{`; a`, ErrSyntax},
		{`a ;; b`, ErrSyntax},
		{`| a`, ErrSyntax},
		{`a && ; b`, ErrSyntax},
		{`a )`, ErrSyntax},
		{`(a)`, ErrSyntax},
		{"echo `a`", ErrSyntax},
		{`echo ${a-b}`, ErrSyntax},
		{`echo > ;`, ErrSyntax},
		{`a 12>f`, ErrSyntax},
	}
	for _, tt := range tests {
		_, err := Parse(tt.in)
		if !errors.Is(err, tt.want) {
			t.Errorf("Parse(%q) = %v, want %v", tt.in, err, tt.want)
		}
	}
}

func TestParseDepth(t *testing.T) {
	src := ""
	for i := 0; i < 100; i++ {
		src += "$("
	}
	if _, err := Parse(src); !errors.Is(err, ErrSyntax) {
		t.Errorf("100 nested $(: %v, want %v", err, ErrSyntax)
	}
}

// FuzzParse: Parse never panics, and what it accepts formats (String) to
// source that parses back to the same script, and formats the same again.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		`ls /sys/fs/pstore; echo PSTORE""END`,
		`echo 1 > /proc/sys/vm/overcommit_memory; echo 1 > /proc/sys/vm/panic_on_oom; x=$(cat /dev/zero)`,
		`echo 2 > /proc/sys/kernel/hung_task_timeout_secs; cat /bbin/bb > /dev/vda`,
		`cat /sys/kernel/config/netconsole/lastgasp0/userdata/host/value; echo UD""END`,
		`a | b && c || d & e`,
		`x=1 y="$x $(echo "a\"b")" cmd 2>&1 <in >>out`,
		`echo 'it''s' \$ "\\" ${?} $? $1 a$ #c`,
		"a \\\n b |\n c",
		"echo *.txt \\* '*'",
		`A= B=$(x)`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		sc, err := Parse(src)
		if err != nil {
			if !errors.Is(err, ErrSyntax) && !errors.Is(err, ErrIncomplete) {
				t.Fatalf("Parse(%q): error %v is neither ErrSyntax nor ErrIncomplete", src, err)
			}
			return
		}
		out := sc.String()
		sc2, err := Parse(out)
		if err != nil {
			t.Fatalf("Parse(%q) ok, its String %q: %v", src, out, err)
		}
		if d := cmp.Diff(sc, sc2); d != "" {
			t.Fatalf("Parse(%q).String() = %q parses differently (-first +second):\n%s", src, out, d)
		}
		if out2 := sc2.String(); out2 != out {
			t.Fatalf("String not stable: %q then %q", out, out2)
		}
	})
}
