package announce

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// captured is the announcement of a real boot (the panic-roundtrip
// scenario's guest on Debian's 6.1 kernel), as the collector received it.
const captured = "lastgasp: netconsole armed host=52-54-00-12-34-56 boot=1b6f0a2c-0d2f-4c4e-9c1e-3f1b2a4c5d6e dev=eth0 local=10.0.2.15 remote=10.0.2.2:6666 mac=52:55:0a:00:02:02 via=gateway since_init=612ms"

func TestParse(t *testing.T) {
	for _, tt := range []struct {
		name string
		text string
		want Announcement
		ok   bool
	}{
		{"captured", captured, Announcement{Host: "52-54-00-12-34-56", Boot: "1b6f0a2c-0d2f-4c4e-9c1e-3f1b2a4c5d6e", Fields: []Field{
			{"dev", "eth0"}, {"local", "10.0.2.15"}, {"remote", "10.0.2.2:6666"}, {"mac", "52:55:0a:00:02:02"}, {"via", "gateway"}, {"since_init", "612ms"},
		}}, true},
		{"summary line binds too", "lastgasp: summary host=h boot=b targets=1", Announcement{Host: "h", Boot: "b", Fields: []Field{{"targets", "1"}}}, true},
		{"legacy prefix", "[    2.345678] lastgasp: netconsole armed host=h boot=b", Announcement{Host: "h", Boot: "b"}, true},
		{"first host wins", "lastgasp: netconsole armed host=h boot=b host=x", Announcement{Host: "h", Boot: "b"}, true},
		{"no boot", "lastgasp: netconsole armed host=h", Announcement{}, false},
		{"empty host", "lastgasp: netconsole armed host= boot=b", Announcement{}, false},
		{"not lastgasp", "netconsole armed host=h boot=b", Announcement{}, false},
		{"other prefix", "evil: lastgasp: netconsole armed host=h boot=b", Announcement{}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := Parse(tt.text)
			if ok != tt.ok {
				t.Fatalf("Parse(%q) ok = %v, want %v", tt.text, ok, tt.ok)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Parse(%q) (-want +got):\n%s", tt.text, diff)
			}
		})
	}
}

func TestFormat(t *testing.T) {
	got := Format(Announcement{Host: "my box", Boot: "b", Fields: []Field{{"dev", "eth0"}, {"host", "ignored"}}})
	if want := "netconsole armed host=my-box boot=b dev=eth0"; got != want {
		t.Errorf("Format = %q, want %q", got, want)
	}
}

func FuzzRoundTrip(f *testing.F) {
	f.Add("52-54-00-12-34-56", "1b6f0a", "dev", "eth0")
	f.Add("a b", "c\nd", "k=", "v w")
	f.Fuzz(func(t *testing.T, host, boot, k, v string) {
		a := Announcement{Host: host, Boot: boot, Fields: []Field{{k, v}}}
		got, ok := Parse(Prefix + Format(a))
		if host == "" || boot == "" {
			return
		}
		if !ok {
			t.Fatalf("Parse(Format(%+v)) failed", a)
		}
		if got.Host != clean(host) || got.Boot != clean(boot) {
			t.Fatalf("Parse(Format(%+v)) = %+v", a, got)
		}
	})
}
