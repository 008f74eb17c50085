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

// TestApplyCmdlineReceiverSource: the agent must know whether the command
// line, the board or DHCP option 7 supplies the receivers.
func TestApplyCmdlineReceiverSource(t *testing.T) {
	for _, tt := range []struct {
		name      string
		cmdline   string
		want      Cmdline
		receivers []string // the board's after ApplyCmdline
		wantErr   bool
	}{
		{name: "board", cmdline: "console=ttyS0", receivers: []string{"10.0.2.2:6666"}},
		{name: "cmdline", cmdline: "lastgasp.receiver=10.1.0.1 lastgasp.receiver=10.1.0.2:9",
			want: Cmdline{Receivers: []string{"10.1.0.1", "10.1.0.2:9"}}, receivers: []string{"10.1.0.1", "10.1.0.2:9"}},
		{name: "dhcp", cmdline: "lastgasp.receiver=dhcp", want: Cmdline{ReceiverDHCP: true, ReceiverDHCPPort: 6666}},
		{name: "dhcp with port", cmdline: "lastgasp.receiver=dhcp:7000", want: Cmdline{ReceiverDHCP: true, ReceiverDHCPPort: 7000}},
		{name: "dhcp bad port", cmdline: "lastgasp.receiver=dhcp:0", wantErr: true},
		{name: "dhcp port with sign", cmdline: "lastgasp.receiver=dhcp:+7", wantErr: true},
		{name: "dhcp empty port", cmdline: "lastgasp.receiver=dhcp:", wantErr: true},
		{name: "dhcp and address", cmdline: "lastgasp.receiver=dhcp,10.0.0.1", wantErr: true},
		{name: "dhcp and address repeated", cmdline: "lastgasp.receiver=10.0.0.1 lastgasp.receiver=dhcp", wantErr: true},
		{name: "dhcpx is no keyword", cmdline: "lastgasp.receiver=dhcpx", wantErr: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b, err := Load("qemu-x86_64.board")
			if err != nil {
				t.Fatal(err)
			}
			c, err := ApplyCmdline(b, tt.cmdline)
			if tt.wantErr {
				if !errors.Is(err, ErrInvalid) {
					t.Fatalf("ApplyCmdline(%q) = %v, want ErrInvalid", tt.cmdline, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, c); diff != "" {
				t.Errorf("Cmdline (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.receivers, b.Receivers); diff != "" {
				t.Errorf("board receivers (-want +got):\n%s", diff)
			}
		})
	}
}

func TestKernelArg(t *testing.T) {
	for _, tt := range []struct {
		cmdline, key, want string
		found              bool
	}{
		{"console=ttyS0 ip=dhcp", "ip", "dhcp", true},
		{"ip=off ip=10.0.0.5::10.0.0.1:255.255.255.0::eth0:off", "ip", "10.0.0.5::10.0.0.1:255.255.255.0::eth0:off", true}, // last wins
		{"ip= quiet", "ip", "", true},
		{"ip quiet", "ip", "", false}, // no '=': not ip=
		{"nfsip=1 vip=2", "ip", "", false},
		{`x="ip=1 2"`, "ip", "", false},
		{`ip="a b"`, "ip", "a b", true},
	} {
		got, found := KernelArg(tt.cmdline, tt.key)
		if got != tt.want || found != tt.found {
			t.Errorf("KernelArg(%q, %q) = %q, %v; want %q, %v", tt.cmdline, tt.key, got, found, tt.want, tt.found)
		}
	}
}

func FuzzApplyCmdline(f *testing.F) {
	f.Add("console=ttyS0 lastgasp.receiver=10.0.2.2:1 lastgasp.iface=eth0")
	f.Add(`a="b c" lastgasp.host=h lastgasp.test_panic`)
	f.Add("lastgasp.receiver=dhcp:6666 ip=10.0.0.5::10.0.0.1:255.255.255.0:box:eth0:off")
	f.Add("lastgasp.receiver=dhcp,dhcp:1 lastgasp.receiver=[fd00::1]:9")
	f.Add("lastgasp.vlan=100 lastgasp.vlan=off lastgasp.vlan=4095")
	f.Add("vlan=eth0.100:eth0 vlan=vlan7:eth1")
	f.Fuzz(func(t *testing.T, cmdline string) {
		b := Defaults()
		b.Name, b.Arch, b.KernelPackage = "b", "amd64", "k"
		b.Receivers = []string{"10.0.2.2:6666"}
		c, err := ApplyCmdline(&b, cmdline)
		KernelArg(cmdline, "ip")
		if err != nil {
			return
		}
		if err := b.Validate(); err != nil {
			t.Fatalf("accepted %q but board is invalid: %v", cmdline, err)
		}
		// Exactly one receiver source: the command line's addresses, DHCP
		// option 7, or the board's untouched list.
		switch {
		case c.ReceiverDHCP:
			if c.Receivers != nil || b.Receivers != nil || c.ReceiverDHCPPort < 1 || c.ReceiverDHCPPort > 65535 {
				t.Fatalf("%q: dhcp receivers with addresses %v/%v or port %d", cmdline, c.Receivers, b.Receivers, c.ReceiverDHCPPort)
			}
		case c.Receivers != nil:
			if !cmp.Equal(c.Receivers, b.Receivers) {
				t.Fatalf("%q: command line receivers %v, board now has %v", cmdline, c.Receivers, b.Receivers)
			}
			for _, r := range c.Receivers {
				if _, err := ParseReceiver(r); err != nil {
					t.Fatalf("%q: accepted receiver %q: %v", cmdline, r, err)
				}
			}
		default:
			if !cmp.Equal(b.Receivers, []string{"10.0.2.2:6666"}) {
				t.Fatalf("%q: no receiver argument but the board's changed to %v", cmdline, b.Receivers)
			}
		}
	})
}
