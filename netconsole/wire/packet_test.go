package wire

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

func TestParse(t *testing.T) {
	for _, tt := range []struct {
		name string
		in   string
		want Packet
	}{
		{
			name: "field notes example",
			in:   "0,423,3163223,-;Kernel panic - not syncing: sysrq triggered crash\n",
			want: Packet{Extended: true, Seq: 423, TimestampUsec: 3163223, Text: "Kernel panic - not syncing: sysrq triggered crash"},
		},
		{
			name: "release prefix",
			in:   "6.1.0-56-amd64,6,423,3163223,-;text",
			want: Packet{Extended: true, Release: "6.1.0-56-amd64", Level: 6, Seq: 423, TimestampUsec: 3163223, Text: "text"},
		},
		{
			name: "netconsole.rst release example",
			in:   "6.4.0,6,444,501151268,-;netconsole: network logging started",
			want: Packet{Extended: true, Release: "6.4.0", Level: 6, Seq: 444, TimestampUsec: 501151268, Text: "netconsole: network logging started"},
		},
		{
			name: "netconsole.rst first fragment",
			in:   "6,416,1758426,-,ncfrag=0/31;the first chunk,",
			want: Packet{Extended: true, Level: 6, Seq: 416, TimestampUsec: 1758426, FragOffset: 0, FragTotal: 31, Text: "the first chunk,"},
		},
		{
			name: "netconsole.rst second fragment",
			in:   "6,416,1758426,-,ncfrag=16/31; the 2nd chunk.",
			want: Packet{Extended: true, Level: 6, Seq: 416, TimestampUsec: 1758426, FragOffset: 16, FragTotal: 31, Text: " the 2nd chunk."},
		},
		{
			name: "fragment keeps dictionary lines in its text",
			in:   "6,1,2,-,ncfrag=3/20;x\n SUBSYSTEM=net\n",
			want: Packet{Extended: true, Level: 6, Seq: 1, TimestampUsec: 2, FragOffset: 3, FragTotal: 20, Text: "x\n SUBSYSTEM=net\n"},
		},
		{
			name: "dictionary",
			in:   "6,100,200,-;virtio_net virtio0 eth0: link up\n SUBSYSTEM=net\n DEVICE=+net:eth0\n",
			want: Packet{Extended: true, Level: 6, Seq: 100, TimestampUsec: 200, Text: "virtio_net virtio0 eth0: link up",
				Dict: []string{"SUBSYSTEM=net", "DEVICE=+net:eth0"}},
		},
		{
			name: "facility and level",
			in:   "30,7,8,-;systemd[1]: hello",
			want: Packet{Extended: true, Facility: 3, Level: 6, Seq: 7, TimestampUsec: 8, Text: "systemd[1]: hello"},
		},
		{
			name: "continuation flag",
			in:   "4,7,8,c;partial",
			want: Packet{Extended: true, Level: 4, Seq: 7, TimestampUsec: 8, Cont: true, Text: "partial"},
		},
		{
			name: "old kernel continued flag",
			in:   "4,7,8,+;more",
			want: Packet{Extended: true, Level: 4, Seq: 7, TimestampUsec: 8, Cont: true, Text: "more"},
		},
		{
			name: "caller field is accepted and ignored",
			in:   "6,5,6,-,caller=T123;hi\n",
			want: Packet{Extended: true, Level: 6, Seq: 5, TimestampUsec: 6, Text: "hi"},
		},
		{
			name: "semicolons in text",
			in:   "6,5,6,-;a;b;c",
			want: Packet{Extended: true, Level: 6, Seq: 5, TimestampUsec: 6, Text: "a;b;c"},
		},
		{
			name: "escaped text kept as is",
			in:   `6,5,6,-;tab\x09here`,
			want: Packet{Extended: true, Level: 6, Seq: 5, TimestampUsec: 6, Text: `tab\x09here`},
		},
		{
			name: "empty text",
			in:   "6,5,6,-;\n",
			want: Packet{Extended: true, Level: 6, Seq: 5, TimestampUsec: 6},
		},
		{
			name: "largest seq",
			in:   "6,9223372036854775807,0,-;x",
			want: Packet{Extended: true, Level: 6, Seq: MaxSeq, Text: "x"},
		},
		{
			name: "legacy console line",
			in:   "[    1.234567] virtio_net virtio0 eth0: link up\n",
			want: Packet{Text: "[    1.234567] virtio_net virtio0 eth0: link up\n"},
		},
		{name: "legacy with semicolon", in: "hello; world", want: Packet{Text: "hello; world"}},
		{name: "legacy too few fields", in: "1,2,3;x", want: Packet{Text: "1,2,3;x"}},
		{name: "legacy bad flags", in: "1,2,3,x;y", want: Packet{Text: "1,2,3,x;y"}},
		{name: "legacy number with sign", in: "+1,2,3,-;y", want: Packet{Text: "+1,2,3,-;y"}},
		{name: "legacy release with space", in: "my kernel,6,1,2,-;x", want: Packet{Text: "my kernel,6,1,2,-;x"}},
		{name: "legacy release then too few", in: "6.1.0,6,1,-;x", want: Packet{Text: "6.1.0,6,1,-;x"}},
		{name: "legacy lone semicolon", in: ";", want: Packet{Text: ";"}},
		{name: "legacy invalid utf8", in: "\xff\xfe;", want: Packet{Text: "\xff\xfe;"}},
		{name: "legacy header too long", in: strings.Repeat("1,", 300) + "-;x", want: Packet{Text: strings.Repeat("1,", 300) + "-;x"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse([]byte(tt.in))
			if err != nil {
				t.Fatalf("Parse(%q) = %v", tt.in, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Parse(%q) mismatch (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	for _, tt := range []struct {
		name string
		in   string
	}{
		{"empty", ""},
		{"prival too large", "2048,1,2,-;x"},
		{"seq overflows", "6,99999999999999999999,2,-;x"},
		{"seq beyond MaxSeq", "6,9223372036854775808,2,-;x"},
		{"timestamp overflows", "6,1,99999999999999999999,-;x"},
		{"ncfrag offset equals total", "6,1,2,-,ncfrag=5/5;x"},
		{"ncfrag zero total", "6,1,2,-,ncfrag=0/0;x"},
		{"ncfrag total too large", "6,1,2,-,ncfrag=0/65537;x"},
		{"ncfrag not numbers", "6,1,2,-,ncfrag=a/b;x"},
		{"ncfrag without slash", "6,1,2,-,ncfrag=3;x"},
		{"ncfrag twice", "6,1,2,-,ncfrag=0/9,ncfrag=0/9;x"},
		{"fragment overruns total", "6,1,2,-,ncfrag=0/3;abcd"},
		{"fragment overruns at offset", "6,1,2,-,ncfrag=2/3;ab"},
		{"empty fragment", "6,1,2,-,ncfrag=0/3;"},
		{"extra field without value", "6,1,2,-,foo;x"},
		{"extra field upper case", "6,1,2,-,FOO=1;x"},
		{"extra field with space", "6,1,2,-,caller=T 1;x"},
		{"release then bad prival", "6.1.0,4096,1,2,-;x"},
		{"prival overflows", "123456789012345678901,1,2,-;x"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse([]byte(tt.in))
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("Parse(%q) = %+v, %v, want error wrapping ErrMalformed", tt.in, got, err)
			}
		})
	}
}

func TestFormat(t *testing.T) {
	for _, tt := range []struct {
		name string
		in   Packet
		want string
	}{
		{
			name: "message with dictionary",
			in:   Packet{Extended: true, Facility: 3, Level: 6, Seq: 100, TimestampUsec: 200, Text: "link up", Dict: []string{"SUBSYSTEM=net"}},
			want: "30,100,200,-;link up\n SUBSYSTEM=net\n",
		},
		{
			name: "release and continuation",
			in:   Packet{Extended: true, Release: "6.1.0-56-amd64", Level: 4, Seq: 1, TimestampUsec: 2, Cont: true, Text: "x"},
			want: "6.1.0-56-amd64,4,1,2,c;x\n",
		},
		{
			name: "fragment",
			in:   Packet{Extended: true, Level: 6, Seq: 416, TimestampUsec: 1758426, FragOffset: 16, FragTotal: 31, Text: " the 2nd chunk."},
			want: "6,416,1758426,-,ncfrag=16/31; the 2nd chunk.",
		},
		{name: "legacy", in: Packet{Text: "plain\n"}, want: "plain\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := string(Format(tt.in))
			if got != tt.want {
				t.Errorf("Format(%+v) = %q, want %q", tt.in, got, tt.want)
			}
			back, err := Parse([]byte(got))
			if err != nil {
				t.Fatalf("Parse(Format(p)) = %v", err)
			}
			if diff := cmp.Diff(tt.in, back); diff != "" {
				t.Errorf("Parse(Format(p)) mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSanitize(t *testing.T) {
	for _, tt := range []struct {
		name, in, want string
	}{
		{"plain", "hello world", "hello world"},
		{"tab kept", "a\tb", "a\tb"},
		{"newline", "a\nb", `a\x0ab`},
		{"carriage return", "a\r", `a\x0d`},
		{"escape", "\x1b[31mred", `\x1b[31mred`},
		{"del", "\x7f", `\x7f`},
		{"nul", "a\x00b", `a\x00b`},
		{"c1 control", "a\u0085b", `a\xc2\x85b`},
		{"invalid utf8", "a\xffb", `a\xffb`},
		{"truncated rune", "\xe2\x82", `\xe2\x82`},
		{"valid unicode", "grüße ☃", "grüße ☃"},
		{"replacement char is valid", "\uFFFD", "\uFFFD"},
		{"backslash kept", `\x41`, `\x41`},
		{"empty", "", ""},
		{"right-to-left override", "evil\u202Etxt.exe", `evil\xe2\x80\xaetxt.exe`},
		{"zero-width space", "a\u200Bb", `a\xe2\x80\x8bb`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := Sanitize(tt.in); got != tt.want {
				t.Errorf("Sanitize(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// TestSanitizeEveryByte checks Sanitize's ASCII fast path against the
// rune-by-rune definition: every byte value, and a few runes of each kind,
// between plain text, must come out as the definition has it.
func TestSanitizeEveryByte(t *testing.T) {
	ref := func(s string) string { // the definition, one rune at a time
		var b strings.Builder
		for i := 0; i < len(s); {
			r, size := utf8.DecodeRuneInString(s[i:])
			if needsEscape(r, size) {
				for j := i; j < i+size; j++ {
					fmt.Fprintf(&b, `\x%02x`, s[j])
				}
			} else {
				b.WriteString(s[i : i+size])
			}
			i += size
		}
		return b.String()
	}
	var ins []string
	for c := range 256 {
		ins = append(ins, "text "+string([]byte{byte(c)})+" more")
	}
	ins = append(ins, "a\u00adb", "a\u0085b", "a\u200bb", "x\u202ey", "é", "\t\x7f\x80")
	for _, in := range ins {
		if got, want := Sanitize(in), ref(in); got != want {
			t.Errorf("Sanitize(%q) = %q, want %q", in, got, want)
		}
	}
}
