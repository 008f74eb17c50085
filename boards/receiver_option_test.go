package boards

import (
	"errors"
	"strings"
	"testing"
)

func TestReceiverOptions(t *testing.T) {
	const base = "name = b\narch = amd64\nkernel.package = k\n"
	for _, tt := range []struct {
		name       string
		in         string
		cmdline    string
		opt, opt6  int
		wantErr    bool
		wantCmdErr bool
	}{
		{name: "defaults", in: base, opt: 7},
		{name: "site option", in: base + "receiver.dhcp_option = 224\nreceiver.dhcp6_option = 65001\n", opt: 224, opt6: 65001},
		{name: "command line wins", in: base + "receiver.dhcp_option = 224\n", cmdline: "lastgasp.dhcp_option=7", opt: 7},
		{name: "command line site", in: base, cmdline: "lastgasp.dhcp_option=254", opt: 254},
		{name: "not site-specific", in: base + "receiver.dhcp_option = 6\n", wantErr: true},
		{name: "255", in: base + "receiver.dhcp_option = 255\n", wantErr: true},
		{name: "v6 off", in: base + "receiver.dhcp6_option = off\n", opt: 7},
		{name: "v6 command line", in: base + "receiver.dhcp6_option = 65001\n", cmdline: "lastgasp.dhcp6_option=off", opt: 7},
		{name: "v6 command line set", in: base, cmdline: "lastgasp.dhcp6_option=65002", opt: 7, opt6: 65002},
		{name: "v6 negative", in: base + "receiver.dhcp6_option = -1\n", wantErr: true},
		{name: "v6 client id", in: base + "receiver.dhcp6_option = 1\n", wantErr: true},
		{name: "v6 dns", in: base + "receiver.dhcp6_option = 23\n", wantErr: true},
		{name: "v6 first unassigned", in: base + "receiver.dhcp6_option = 149\n", opt: 7, opt6: 149},
		{name: "v6 big", in: base + "receiver.dhcp6_option = 65536\n", wantErr: true},
		{name: "bad command line", in: base, cmdline: "lastgasp.dhcp_option=12", wantCmdErr: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b, err := Parse(strings.NewReader(tt.in))
			if tt.wantErr {
				if !errors.Is(err, ErrInvalid) {
					t.Fatalf("Parse = %v, want ErrInvalid", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			_, err = ApplyCmdline(b, tt.cmdline)
			if tt.wantCmdErr {
				if !errors.Is(err, ErrInvalid) {
					t.Fatalf("ApplyCmdline = %v, want ErrInvalid", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if b.ReceiverOption != tt.opt || b.ReceiverOption6 != tt.opt6 {
				t.Errorf("options %d/%d, want %d/%d", b.ReceiverOption, b.ReceiverOption6, tt.opt, tt.opt6)
			}
		})
	}
}
