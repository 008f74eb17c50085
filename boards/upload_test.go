package boards

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestParseUploads(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string // nil: refused
	}{
		{"one", "http://10.0.2.2:6667", []string{"http://10.0.2.2:6667"}},
		{"two in order", "http://a:1,https://b:2", []string{"http://a:1", "https://b:2"}},
		{"spaces around", " http://a:1 , http://b:2 ", []string{"http://a:1", "http://b:2"}},
		{"ipv6", "http://[fd00::1]:6667", []string{"http://[fd00::1]:6667"}},
		{"empty", "", nil},
		{"empty part", "http://a:1,", nil},
		{"no scheme", "a:1", nil},
		{"ftp", "ftp://a", nil},
		{"query", "http://a:1/?x=1", nil},
		{"user", "http://u:p@a:1", nil},
		{"empty port", "http://a:", nil},
		{"too many", strings.Repeat("http://a:1,", MaxUploads) + "http://a:1", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseUploads(tt.in)
			if tt.want == nil {
				if err == nil || !errors.Is(err, ErrInvalid) {
					t.Errorf("ParseUploads(%q) = %v, %v; want ErrInvalid", tt.in, got, err)
				}
				return
			}
			if err != nil || !slices.Equal(got, tt.want) {
				t.Errorf("ParseUploads(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestUploadsFromBoardAndCmdline(t *testing.T) {
	b, err := Parse(strings.NewReader("name = x\narch = amd64\nkernel.package = linux-image-amd64\nupload = http://a:1, http://b:2\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := b.UploadURLs(); !slices.Equal(got, []string{"http://a:1", "http://b:2"}) {
		t.Errorf("board UploadURLs = %v", got)
	}
	if _, err := ApplyCmdline(b, "quiet lastgasp.upload=http://c:3,http://d:4"); err != nil {
		t.Fatal(err)
	}
	if got := b.UploadURLs(); !slices.Equal(got, []string{"http://c:3", "http://d:4"}) {
		t.Errorf("cmdline UploadURLs = %v", got)
	}
	if _, err := ApplyCmdline(b, "lastgasp.upload=http://c:3,,http://d:4"); err == nil {
		t.Errorf("an empty URL in lastgasp.upload= accepted")
	}
}

// FuzzParseUploads: what ParseUploads accepts is a list of 1..MaxUploads
// http(s) URLs without commas, and joining them parses to the same list.
func FuzzParseUploads(f *testing.F) {
	for _, s := range []string{"http://a:1", "http://a:1,https://b:2", " http://[::1]:6667 ", "http://a:1,", "ftp://x", "http://u@a", "http://a:1/p"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		us, err := ParseUploads(v)
		if err != nil {
			return
		}
		if len(us) == 0 || len(us) > MaxUploads {
			t.Fatalf("%q: %d URLs", v, len(us))
		}
		for _, u := range us {
			if strings.Contains(u, ",") || !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
				t.Fatalf("%q: URL %q", v, u)
			}
		}
		again, err := ParseUploads(strings.Join(us, ","))
		if err != nil || !slices.Equal(again, us) {
			t.Fatalf("%q: %v does not round-trip: %v, %v", v, us, again, err)
		}
	})
}
