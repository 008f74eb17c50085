package boards

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseVLAN(t *testing.T) {
	for _, tt := range []struct {
		in      string
		want    int
		wantErr bool
	}{
		{in: "100", want: 100},
		{in: "1", want: 1},
		{in: "4094", want: 4094},
		{in: "0", want: 0},
		{in: "off", want: 0},
		{in: "4095", wantErr: true},
		{in: "-1", wantErr: true},
		{in: "0100", wantErr: true},
		{in: "+5", wantErr: true},
		{in: "", wantErr: true},
		{in: "eth0.100", wantErr: true},
	} {
		got, err := ParseVLAN(tt.in)
		if tt.wantErr {
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("ParseVLAN(%q) = %d, %v; want ErrInvalid", tt.in, got, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseVLAN(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
	}
}

func TestImageModules(t *testing.T) {
	const base = "name = b\narch = amd64\nkernel.package = k\n"
	for _, tt := range []struct {
		name string
		in   string
		want []string
	}{
		{name: "none", in: base},
		{name: "all lists, deduplicated", in: base + "modules = a b-c\nmodules.late = b_c d\nmodules.ondemand = 8021q\n", want: []string{"a", "b-c", "d", "8021q"}},
		{name: "vlan adds 8021q", in: base + "modules = a\nvlan = 7\n", want: []string{"a", "8021q"}},
		{name: "vlan with 8021q listed", in: base + "modules.ondemand = 8021q\nvlan = 7\n", want: []string{"8021q"}},
		{name: "vlan off", in: base + "modules = a\nvlan = off\n", want: []string{"a"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b, err := Parse(strings.NewReader(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, b.ImageModules()); diff != "" {
				t.Errorf("ImageModules (-want +got):\n%s", diff)
			}
		})
	}
}

func TestVLANBoardAndCmdline(t *testing.T) {
	b, err := Load("qemu-x86_64.board")
	if err != nil {
		t.Fatal(err)
	}
	if b.VLAN != 0 {
		t.Errorf("qemu-x86_64: vlan = %d, want untagged", b.VLAN)
	}
	// The nic-vlan scenarios boot the lab image (the default one has no
	// room for 8021q next to TLS).
	lab, err := Load("qemu-x86_64-lab.board")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(lab.ImageModules(), " "), ModuleVLAN) {
		t.Errorf("qemu-x86_64-lab: image modules %q lack %s (lastgasp.vlan= needs it)", lab.ImageModules(), ModuleVLAN)
	}
	for _, tt := range []struct {
		cmdline string
		want    int
		wantErr bool
	}{
		{cmdline: "lastgasp.vlan=100", want: 100},
		{cmdline: "lastgasp.vlan=100 lastgasp.vlan=off", want: 0},
		{cmdline: "lastgasp.vlan=5000", wantErr: true},
		{cmdline: "lastgasp.vlan=", wantErr: true},
	} {
		bb := *b
		_, err := ApplyCmdline(&bb, tt.cmdline)
		if tt.wantErr {
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("ApplyCmdline(%q) = %v, want ErrInvalid", tt.cmdline, err)
			}
			continue
		}
		if err != nil || bb.VLAN != tt.want {
			t.Errorf("ApplyCmdline(%q): vlan %d, %v; want %d", tt.cmdline, bb.VLAN, err, tt.want)
		}
	}
}

func TestDracutVLAN(t *testing.T) {
	for _, tt := range []struct {
		cmdline    string
		vlan       int
		name       string
		nic        []string
		wantBadArg bool // vlan= reported and ignored, lastgasp.* still applied
	}{
		{cmdline: "vlan=eth0.100:eth0", vlan: 100, name: "eth0.100", nic: []string{"eth0"}},
		{cmdline: "vlan=vlan0042:enp1s0", vlan: 42, name: "vlan0042", nic: []string{"enp1s0"}},
		{cmdline: "vlan=prod42:eth1", vlan: 42, name: "prod42", nic: []string{"eth1"}},
		{cmdline: "vlan=eth1.7:eth1 lastgasp.iface=eth*", vlan: 7, name: "eth1.7", nic: []string{"eth*"}},
		{cmdline: "vlan=eth1.7:eth1 lastgasp.vlan=off", vlan: 0, nic: []string{"eth*"}},
		{cmdline: "vlan=eth0.100 lastgasp.host=kept", wantBadArg: true, nic: []string{"eth*"}},
		{cmdline: "vlan=eth0.5000:eth0 lastgasp.host=kept", wantBadArg: true, nic: []string{"eth*"}},
		{cmdline: "vlan=foo:eth0 lastgasp.host=kept", wantBadArg: true, nic: []string{"eth*"}},
		{cmdline: "vlan=eth0.0:eth0 lastgasp.host=kept", wantBadArg: true, nic: []string{"eth*"}},
		{cmdline: "vlan=eth0.1:eth* lastgasp.host=kept", wantBadArg: true, nic: []string{"eth*"}},
		{cmdline: "vlan=a/b.1:eth0 lastgasp.host=kept", wantBadArg: true, nic: []string{"eth*"}},
	} {
		b, err := Load("qemu-x86_64.board")
		if err != nil {
			t.Fatal(err)
		}
		c, err := ApplyCmdline(b, tt.cmdline)
		if err != nil {
			t.Errorf("ApplyCmdline(%q) = %v", tt.cmdline, err)
			continue
		}
		if tt.wantBadArg {
			if !errors.Is(c.VLANProblem, ErrInvalid) || b.Host != "kept" || b.VLAN != 0 {
				t.Errorf("ApplyCmdline(%q): VLANProblem %v, host %q, vlan %d; want the problem reported, lastgasp.host applied, no VLAN", tt.cmdline, c.VLANProblem, b.Host, b.VLAN)
			}
			continue
		}
		if c.VLANProblem != nil || b.VLAN != tt.vlan || b.VLANName != tt.name || strings.Join(b.NIC, ",") != strings.Join(tt.nic, ",") {
			t.Errorf("ApplyCmdline(%q): vlan %d %q nic %q problem %v, want %d %q %q", tt.cmdline, b.VLAN, b.VLANName, b.NIC, c.VLANProblem, tt.vlan, tt.name, tt.nic)
		}
	}
}
