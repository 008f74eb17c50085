package boards

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestLoadQEMUTLS: the default QEMU board builds its agent with TLS (no
// lastgasp_notls tag) and uploads over plain http:// to QEMU's host; the TLS
// board is the same image with an https:// upload URL, nothing else.
func TestLoadQEMUTLS(t *testing.T) {
	plain, err := Load("qemu-x86_64.board")
	if err != nil {
		t.Fatal(err)
	}
	b, err := Load("qemu-x86_64-tls.board")
	if err != nil {
		t.Fatal(err)
	}
	if len(b.BuildTags) != 0 {
		t.Errorf("qemu-x86_64-tls: build.tags %q, want none (TLS is the default)", b.BuildTags)
	}
	if b.Upload != "https://10.0.2.2:6667" || b.UploadCA != DefaultUploadCA || b.UploadCAFile != "" {
		t.Errorf("upload %q, upload.ca %q, upload.ca_file %q", b.Upload, b.UploadCA, b.UploadCAFile)
	}
	if len(plain.BuildTags) != 0 || plain.Upload != "http://10.0.2.2:6667" {
		t.Errorf("qemu-x86_64: build.tags %q, upload %q: want no tags (TLS built in), plain http to QEMU's host", plain.BuildTags, plain.Upload)
	}
	same := *b
	same.Name, same.Upload = plain.Name, plain.Upload
	if diff := cmp.Diff(*plain, same); diff != "" {
		t.Errorf("qemu-x86_64-tls differs from qemu-x86_64 beyond the upload URL (-plain +tls):\n%s", diff)
	}
}

// TestLoadQEMULab: the lab board is the QEMU board plus the modules only
// QEMU scenarios use, with an agent without TLS; nothing else differs.
func TestLoadQEMULab(t *testing.T) {
	def, err := Load("qemu-x86_64.board")
	if err != nil {
		t.Fatal(err)
	}
	lab, err := Load("qemu-x86_64-lab.board")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{TagNoTLS}, lab.BuildTags); diff != "" {
		t.Errorf("qemu-x86_64-lab build.tags (-want +got):\n%s", diff)
	}
	if !strings.HasPrefix(lab.Upload, "http://") {
		t.Errorf("qemu-x86_64-lab upload %q: an agent without TLS needs http://", lab.Upload)
	}
	// The default image's budget (2,000,000 bytes of xz with TLS) has no
	// room for these; the scenarios that need them boot the lab image.
	for _, m := range []string{"e1000", "virtio_blk", "minix", "8021q"} {
		for _, have := range def.ImageModules() {
			if have == m {
				t.Errorf("qemu-x86_64 lists %s: it belongs on qemu-x86_64-lab (image budget)", m)
			}
		}
	}
	same := *lab
	same.Name, same.BuildTags = def.Name, def.BuildTags
	same.Modules = slices.DeleteFunc(slices.Clone(lab.Modules), func(m string) bool { return m == "e1000" })
	same.ModulesLate, same.ModulesOnDemand = def.ModulesLate, def.ModulesOnDemand
	if diff := cmp.Diff(*def, same); diff != "" {
		t.Errorf("qemu-x86_64-lab differs from qemu-x86_64 beyond modules and build tags (-default +lab):\n%s", diff)
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
