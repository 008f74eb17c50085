package boards

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestLoadQEMU(t *testing.T) {
	b, err := Load("qemu-x86_64.board")
	if err != nil {
		t.Fatal(err)
	}
	if b.Name != "qemu-x86_64" || b.Arch != "amd64" {
		t.Errorf("name/arch = %q/%q", b.Name, b.Arch)
	}
	// The test-only modules (e1000, virtio_blk, minix, 8021q) are on
	// qemu-x86_64-lab (TestLoadQEMULab).
	if diff := cmp.Diff([]string{"virtio_pci", "virtio_net", "configfs", "netconsole", "ramoops"}, b.Modules); diff != "" {
		t.Errorf("modules (-want +got):\n%s", diff)
	}
	if len(b.ModulesLate) != 0 || len(b.ModulesOnDemand) != 0 {
		t.Errorf("modules.late %q, modules.ondemand %q: want none", b.ModulesLate, b.ModulesOnDemand)
	}
	want := "mem_address=0x5000000 mem_size=0x100000 record_size=0x10000 ecc=0"
	if got := b.Ramoops.Params(); got != want {
		t.Errorf("Params() = %q, want %q", got, want)
	}
	if !strings.Contains(b.KernelCmdline, "memmap=1M$0x5000000") {
		t.Errorf("cmdline %q lacks the memmap reservation", b.KernelCmdline)
	}
}

func TestParse(t *testing.T) {
	const base = "name = b\narch = amd64\nkernel.package = k\n"
	for _, tt := range []struct {
		name    string
		in      string
		check   func(*Board) string
		wantErr bool
	}{
		{name: "minimal", in: base, check: func(b *Board) string {
			if b.DHCPTimeout != 10*time.Second || b.Handoff != "rescue" || len(b.NIC) != 2 {
				return "defaults not applied"
			}
			return ""
		}},
		{name: "list keys append", in: base + "modules = a b\nmodules = c # comment\nnic = eth1\n", check: func(b *Board) string {
			if strings.Join(b.Modules, ",") != "a,b,c" || strings.Join(b.NIC, ",") != "eth1" {
				return "got " + strings.Join(b.Modules, ",") + " / " + strings.Join(b.NIC, ",")
			}
			return ""
		}},
		{name: "receiver default port", in: base + "receiver = 10.0.2.2 [fd00::1]:514\n", check: func(b *Board) string {
			a, _ := ParseReceiver(b.Receivers[0])
			c, _ := ParseReceiver(b.Receivers[1])
			if a.Port != 6666 || c.Port != 514 || c.IP.To4() != nil {
				return "ports wrong"
			}
			return ""
		}},
		{name: "unknown key", in: base + "colour = red\n", wantErr: true},
		{name: "duplicate key", in: base + "name = c\n", wantErr: true},
		{name: "no equals", in: base + "modules\n", wantErr: true},
		{name: "missing name", in: "arch = amd64\nkernel.package = k\n", wantErr: true},
		{name: "bad arch", in: "name = b\narch = mips\nkernel.package = k\n", wantErr: true},
		{name: "bad number", in: base + "ramoops.mem_size = lots\n", wantErr: true},
		{name: "record larger than region", in: base + "ramoops.mem_address=1\nramoops.mem_size=0x100\nramoops.record_size=0x1000\n", wantErr: true},
		{name: "bad receiver", in: base + "receiver = logs.example\n", wantErr: true},
		{name: "bad upload", in: base + "upload = ftp://x\n", wantErr: true},
		{name: "bad loglevel", in: base + "console.loglevel = 9\n", wantErr: true},
		{name: "bad duration", in: base + "dhcp.timeout = -1s\n", wantErr: true},
		{name: "bad handoff", in: base + "handoff = magic\n", wantErr: true},
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
			if msg := tt.check(b); msg != "" {
				t.Error(msg)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	f.Add("name = b\narch = amd64\nkernel.package = k\nmodules = a\n")
	f.Add("name=x\narch=arm64\nkernel.package=k\nramoops.mem_address=0x1\nramoops.mem_size=0x10\nramoops.record_size=0x10\n")
	f.Add("receiver = [::1]:1\n#\n")
	f.Add("name=t\narch=amd64\nkernel.package=k\nbuild.tags = lastgasp_tls x\nupload=https://[::1]:1\nupload.ca=/etc/ca.pem\nupload.ca_file=ca.pem\n")
	f.Fuzz(func(t *testing.T, in string) {
		b, err := Parse(strings.NewReader(in))
		if err != nil {
			return
		}
		if err := b.Validate(); err != nil {
			t.Fatalf("Parse accepted a profile Validate rejects: %v", err)
		}
		for _, r := range b.Receivers {
			if _, err := ParseReceiver(r); err != nil {
				t.Fatalf("accepted bad receiver %q", r)
			}
		}
	})
}

func TestBoardIP(t *testing.T) {
	const base = "name = b\narch = amd64\nkernel.package = k\n"
	b, err := Parse(strings.NewReader(base + "ip = 10.0.2.15::10.0.2.2:255.255.255.0::eth0:off\n"))
	if err != nil || b.IP == "" {
		t.Fatalf("Parse(ip) = %v, %v", b, err)
	}
	if _, err := Parse(strings.NewReader(base + "ip = 10.0.2.999::::::\n")); !errors.Is(err, ErrInvalid) {
		t.Errorf("bad ip accepted: %v", err)
	}
}
