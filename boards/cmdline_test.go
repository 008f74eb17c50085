package boards

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestApplyCmdline(t *testing.T) {
	for _, tt := range []struct {
		name      string
		cmdline   string
		receivers []string
		nic       []string
		upload    string
		host      string
		panic     bool
		wantErr   bool
	}{
		{name: "none", cmdline: "console=ttyS0 quiet", receivers: []string{"10.0.2.2:6666"}, nic: []string{"eth*"}, upload: "http://10.0.2.2:6667"},
		{name: "overrides", cmdline: `console=ttyS0 lastgasp.receiver=10.0.2.2:7000,10.0.2.3 lastgasp.receiver=[fd00::1]:9 lastgasp.iface=eth1 lastgasp.upload=http://10.0.2.2:7001 lastgasp.host=box-1 lastgasp.test_panic=1`,
			receivers: []string{"10.0.2.2:7000", "10.0.2.3", "[fd00::1]:9"}, nic: []string{"eth1"}, upload: "http://10.0.2.2:7001", host: "box-1", panic: true},
		{name: "quoted", cmdline: `foo="a b" lastgasp.host=x`, receivers: []string{"10.0.2.2:6666"}, nic: []string{"eth*"}, upload: "http://10.0.2.2:6667", host: "x"},
		{name: "bad receiver", cmdline: "lastgasp.receiver=example.com", wantErr: true},
		{name: "bad upload", cmdline: "lastgasp.upload=file:///etc/passwd", wantErr: true},
		{name: "bad host", cmdline: "lastgasp.host=../../etc", wantErr: true},
		{name: "unknown", cmdline: "lastgasp.colour=red", wantErr: true},
		{name: "bad loglevel", cmdline: "lastgasp.loglevel=99", wantErr: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b, err := Load("qemu-x86_64.board")
			if err != nil {
				t.Fatal(err)
			}
			c, err := ApplyCmdline(b, tt.cmdline)
			if tt.wantErr {
				if !errors.Is(err, ErrInvalid) {
					t.Fatalf("ApplyCmdline() = %v, want ErrInvalid", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.receivers, b.Receivers); diff != "" {
				t.Errorf("receivers (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.nic, b.NIC); diff != "" {
				t.Errorf("nic (-want +got):\n%s", diff)
			}
			if b.Upload != tt.upload || b.Host != tt.host || c.TestPanic != tt.panic {
				t.Errorf("upload/host/panic = %q/%q/%v, want %q/%q/%v", b.Upload, b.Host, c.TestPanic, tt.upload, tt.host, tt.panic)
			}
		})
	}
}

func FuzzApplyCmdline(f *testing.F) {
	f.Add("console=ttyS0 lastgasp.receiver=10.0.2.2:1 lastgasp.iface=eth0")
	f.Add(`a="b c" lastgasp.host=h lastgasp.test_panic`)
	f.Fuzz(func(t *testing.T, cmdline string) {
		b := Defaults()
		b.Name, b.Arch, b.KernelPackage = "b", "amd64", "k"
		if _, err := ApplyCmdline(&b, cmdline); err != nil {
			return
		}
		if err := b.Validate(); err != nil {
			t.Fatalf("accepted %q but board is invalid: %v", cmdline, err)
		}
	})
}
