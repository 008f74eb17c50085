package boards

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestLoadQEMUTLS: the TLS board is the QEMU board plus TLS, nothing else.
func TestLoadQEMUTLS(t *testing.T) {
	plain, err := Load("qemu-x86_64.board")
	if err != nil {
		t.Fatal(err)
	}
	b, err := Load("qemu-x86_64-tls.board")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{TagTLS}, b.BuildTags); diff != "" {
		t.Errorf("build.tags (-want +got):\n%s", diff)
	}
	if b.Upload != "https://10.0.2.2:6667" || b.UploadCA != DefaultUploadCA || b.UploadCAFile != "" {
		t.Errorf("upload %q, upload.ca %q, upload.ca_file %q", b.Upload, b.UploadCA, b.UploadCAFile)
	}
	if len(plain.BuildTags) != 0 || !strings.HasPrefix(plain.Upload, "http://") {
		t.Errorf("qemu-x86_64: build.tags %q, upload %q: want no tags, plain http (image size budget)", plain.BuildTags, plain.Upload)
	}
	same := *b
	same.Name, same.Upload, same.BuildTags = plain.Name, plain.Upload, plain.BuildTags
	if diff := cmp.Diff(*plain, same); diff != "" {
		t.Errorf("qemu-x86_64-tls differs from qemu-x86_64 beyond TLS (-plain +tls):\n%s", diff)
	}
}

func TestParseTLSKeys(t *testing.T) {
	const base = "name = b\narch = amd64\nkernel.package = k\n"
	for _, tt := range []struct {
		name       string
		in         string
		tags       []string
		ca, cafile string
		wantErr    bool
	}{
		{name: "defaults", in: base, ca: DefaultUploadCA},
		{name: "tags append", in: base + "build.tags = lastgasp_tls\nbuild.tags = a b.c\n", tags: []string{"lastgasp_tls", "a", "b.c"}, ca: DefaultUploadCA},
		{name: "ca and file", in: base + "upload.ca = /etc/pki/collector.pem\nupload.ca_file = fleet-ca.pem\n", ca: "/etc/pki/collector.pem", cafile: "fleet-ca.pem"},
		{name: "bad tag", in: base + "build.tags = lastgasp-tls\n", wantErr: true},
		{name: "tag with comma", in: base + "build.tags = a,b\n", wantErr: true},
		{name: "relative ca", in: base + "upload.ca = etc/ca.pem\n", wantErr: true},
		{name: "unclean ca", in: base + "upload.ca = /etc/../ca.pem\n", wantErr: true},
		{name: "ca root", in: base + "upload.ca = /\n", wantErr: true},
		{name: "ca twice", in: base + "upload.ca = /a\nupload.ca = /b\n", wantErr: true},
		{name: "ca file with colon", in: base + "upload.ca_file = a:b\n", wantErr: true},
		{name: "empty tags", in: base + "build.tags =\n", wantErr: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b, err := Parse(strings.NewReader(tt.in))
			if tt.wantErr {
				if !errors.Is(err, ErrInvalid) {
					t.Fatalf("Parse() err = %v, want ErrInvalid", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse() = %v", err)
			}
			if diff := cmp.Diff(tt.tags, b.BuildTags); diff != "" {
				t.Errorf("BuildTags (-want +got):\n%s", diff)
			}
			if b.UploadCA != tt.ca || b.UploadCAFile != tt.cafile {
				t.Errorf("UploadCA, UploadCAFile = %q, %q; want %q, %q", b.UploadCA, b.UploadCAFile, tt.ca, tt.cafile)
			}
		})
	}
}
