package agent

import (
	"errors"
	"fmt"
	"github.com/lastgasp/lastgasp/pstore/ship"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/lastgasp/lastgasp/boards"
	"github.com/lastgasp/lastgasp/netconsole/link"
)

func testBoard(t testing.TB, receivers ...string) *boards.Board {
	b := boards.Defaults()
	b.Name, b.Arch, b.KernelPackage = "b", "amd64", "k"
	b.Receivers = receivers
	return &b
}

// TestChooseReceivers: command line > board > DHCP option 7, and
// lastgasp.receiver=dhcp skips the board.
func TestChooseReceivers(t *testing.T) {
	opt7 := &link.Lease{ServerID: net.IPv4(10, 0, 0, 1).To4(), LogServers: []net.IP{net.IPv4(10, 0, 0, 9).To4(), net.IPv4(10, 0, 0, 8).To4()}}
	none := &link.Lease{ServerID: net.IPv4(10, 0, 0, 1).To4()}
	ap := netip.MustParseAddrPort
	for _, tc := range []struct {
		name      string
		cmdline   string
		board     []string
		lease     *link.Lease
		want      []netip.AddrPort
		wantWhy   string
		wantError string
	}{
		{name: "cmdline wins", cmdline: "lastgasp.receiver=10.1.0.1:7000,10.1.0.2", board: []string{"10.0.2.2:6666"}, lease: opt7,
			want: []netip.AddrPort{ap("10.1.0.1:7000"), ap("10.1.0.2:6666")}, wantWhy: "kernel command line"},
		{name: "board over option 7", board: []string{"10.0.2.2:6666"}, lease: opt7,
			want: []netip.AddrPort{ap("10.0.2.2:6666")}, wantWhy: "board file (no lastgasp.receiver=; DHCP option 7 [10.0.0.9 10.0.0.8] not used)"},
		{name: "option 7 as last resort", lease: opt7,
			want: []netip.AddrPort{ap("10.0.0.9:6666"), ap("10.0.0.8:6666")}, wantWhy: "DHCP option 7 of the lease from 10.0.0.1 (no receiver"},
		{name: "dhcp keyword skips the board", cmdline: "lastgasp.receiver=dhcp:7001", board: []string{"10.0.2.2:6666"}, lease: opt7,
			want: []netip.AddrPort{ap("10.0.0.9:7001"), ap("10.0.0.8:7001")}, wantWhy: "lastgasp.receiver=dhcp"},
		{name: "dhcp keyword without option 7", cmdline: "lastgasp.receiver=dhcp", board: []string{"10.0.2.2:6666"}, lease: none,
			wantError: "carries no DHCP option 7"},
		{name: "ipv6 and ipv4 on the cmdline", cmdline: "lastgasp.receiver=[fd00:67::1]:6666,10.1.0.2", board: []string{"10.0.2.2:6666"}, lease: opt7,
			want: []netip.AddrPort{ap("[fd00:67::1]:6666"), ap("10.1.0.2:6666")}, wantWhy: "kernel command line"},
		{name: "ipv6 in the board", board: []string{"[fd00::1]:7000"}, lease: none,
			want: []netip.AddrPort{ap("[fd00::1]:7000")}, wantWhy: "board file"},
		{name: "nothing anywhere", lease: none, wantError: "no receiver"},
		{name: "static lease, no option 7", lease: &link.Lease{}, wantError: "no receiver"},
		{name: "bad override falls back to the board", cmdline: "lastgasp.receiver=dhcp lastgasp.colour=red", board: []string{"10.0.2.2:6666"}, lease: opt7,
			want: []netip.AddrPort{ap("10.0.2.2:6666")}, wantWhy: "board file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := testBoard(t, tc.board...)
			// As the agent does: apply the overrides, keep the board on error.
			scratch := *b
			if _, err := boards.ApplyCmdline(&scratch, tc.cmdline); err == nil {
				b = &scratch
			}
			nc := parseNetCmdline(b, tc.cmdline, t.Logf)
			got, why, err := chooseReceivers(nc.recv, b, tc.lease)
			if tc.wantError != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantError) {
					t.Fatalf("chooseReceivers = %v, %v; want error %q", got, err, tc.wantError)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got, cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b })); diff != "" {
				t.Errorf("receivers (-want +got):\n%s", diff)
			}
			if !strings.Contains(why, tc.wantWhy) {
				t.Errorf("why = %q, want it to contain %q", why, tc.wantWhy)
			}
		})
	}
}

func TestParseNetCmdline(t *testing.T) {
	for _, tc := range []struct {
		cmdline string
		method  link.IPMethod
		device  string
		logged  bool
	}{
		{"console=ttyS0", link.IPDHCP, "", false},
		{"ip=off", link.IPOff, "", false},
		{"ip=none", link.IPOff, "", false},
		{"ip=dhcp", link.IPDHCP, "", false},
		{"ip=:::::eth1:dhcp", link.IPDHCP, "eth1", false},
		{"ip=10.0.0.5::10.0.0.1:255.255.255.0:box:eth0:off", link.IPStatic, "eth0", false},
		{"ip=10.0.0.256", link.IPDHCP, "", true}, // malformed: logged, DHCP
		{"ip=rarp", link.IPDHCP, "", true},
	} {
		var logged []string
		nc := parseNetCmdline(testBoard(t), tc.cmdline, func(f string, a ...any) { logged = append(logged, fmt.Sprintf(f, a...)) })
		if nc.ip.Method != tc.method || nc.ip.Device != tc.device || (len(logged) > 0) != tc.logged {
			t.Errorf("parseNetCmdline(%q) = %v on %q (logged %q), want %v on %q (logged: %v)", tc.cmdline, nc.ip.Method, nc.ip.Device, logged, tc.method, tc.device, tc.logged)
		}
		if nc.describe() == "" {
			t.Errorf("parseNetCmdline(%q).describe() is empty", tc.cmdline)
		}
	}
}

// FuzzNetCmdline: whatever the command line, the network stage's reading of
// it does not panic, a static configuration always has an address, and the
// receivers chosen are valid unicast addresses with a port.
func FuzzNetCmdline(f *testing.F) {
	f.Add("ip=10.0.0.5::10.0.0.1:255.255.255.0:box:eth0:off lastgasp.receiver=dhcp:7000", []byte{10, 0, 0, 9})
	f.Add("ip=off lastgasp.receiver=10.0.0.1", []byte{})
	f.Add(`ip=":::::eth1:dhcp" lastgasp.receiver=dhcp`, []byte{10, 0, 0, 9, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, cmdline string, opt7 []byte) {
		b := testBoard(t, "10.0.2.2:6666")
		scratch := *b
		if _, err := boards.ApplyCmdline(&scratch, cmdline); err == nil {
			b = &scratch
		}
		nc := parseNetCmdline(b, cmdline, func(string, ...any) {})
		if nc.ip.Method == link.IPStatic && (nc.ip.Static == nil || nc.ip.Static.Address.IP == nil) {
			t.Fatalf("%q: static without an address", cmdline)
		}
		_ = nc.describe()
		var servers []net.IP
		for i := 0; i+4 <= len(opt7); i += 4 {
			servers = append(servers, net.IP(opt7[i:i+4]))
		}
		rs, _, err := chooseReceivers(nc.recv, b, &link.Lease{LogServers: servers})
		if err != nil {
			return
		}
		if len(rs) == 0 {
			t.Fatalf("%q: no receivers and no error", cmdline)
		}
		for _, r := range rs {
			if !r.IsValid() || r.Port() == 0 || r.Addr().Is4In6() {
				t.Fatalf("%q: receiver %v", cmdline, r)
			}
		}
	})
}

func TestHasIPv6(t *testing.T) {
	ap := netip.MustParseAddrPort
	for _, tc := range []struct {
		rs   []netip.AddrPort
		want bool
	}{
		{nil, false},
		{[]netip.AddrPort{ap("10.0.2.2:6666")}, false},
		{[]netip.AddrPort{ap("10.0.2.2:6666"), ap("[fd00::1]:6666")}, true},
	} {
		if got := hasIPv6(tc.rs); got != tc.want {
			t.Errorf("hasIPv6(%v) = %v, want %v", tc.rs, got, tc.want)
		}
	}
}

func TestBoardStaticIP(t *testing.T) {
	b := boards.Defaults()
	b.IP = "10.0.2.15::10.0.2.2:255.255.255.0::eth0:off"
	nc := parseNetCmdline(&b, "console=ttyS0", t.Errorf)
	if !nc.hasIP || !nc.fromBoard || nc.ip.Method != link.IPStatic {
		t.Fatalf("board ip: %+v", nc)
	}
	if d := nc.describe(); !strings.Contains(d, "static 10.0.2.15/24") || !strings.Contains(d, "board ip=") {
		t.Errorf("describe() = %q", d)
	}
	// ip= on the command line wins over the board's.
	nc = parseNetCmdline(&b, "ip=dhcp", t.Errorf)
	if nc.fromBoard || nc.ip.Method != link.IPDHCP {
		t.Errorf("cmdline ip=dhcp did not win: %+v", nc)
	}
}

func TestAddReceivers6(t *testing.T) {
	b := &boards.Board{ReceiverOption6: 65001}
	v4 := []netip.AddrPort{netip.MustParseAddrPort("10.0.0.9:6666")}
	l6 := &link.Lease6{ServerID: "00:03", LogServers: []netip.Addr{netip.MustParseAddr("fd00::1")}}
	noOpt7 := errors.New("no option 7")
	for _, tt := range []struct {
		name      string
		c         boards.Cmdline
		recvs     []netip.AddrPort
		err       error
		l6        *link.Lease6
		want      []string
		wantWhy   string
		wantError string
	}{
		{name: "v6 only", err: noOpt7, l6: l6, want: []string{"[fd00::1]:6666"}, wantWhy: "DHCPv6 option 65001 of the lease from 00:03 (port 6666)"},
		{name: "both", recvs: v4, l6: l6, want: []string{"10.0.0.9:6666", "[fd00::1]:6666"}, wantWhy: "v4 and DHCPv6 option 65001"},
		{name: "dhcp port", c: boards.Cmdline{ReceiverDHCP: true, ReceiverDHCPPort: 7000}, err: noOpt7, l6: l6, want: []string{"[fd00::1]:7000"}, wantWhy: "(port 7000)"},
		{name: "bad v6 option", recvs: v4, l6: &link.Lease6{LogServersErr: errors.New("length 4")}, want: []string{"10.0.0.9:6666"}, wantWhy: "v4; no DHCPv6 option 65001 (ignored: length 4)"},
		{name: "v4 only", recvs: v4, l6: &link.Lease6{}, want: []string{"10.0.0.9:6666"}, wantWhy: "v4; no DHCPv6 option 65001"},
		{name: "no lease", recvs: v4, want: []string{"10.0.0.9:6666"}, wantWhy: "v4; no DHCPv6 option 65001"},
		{name: "neither", err: noOpt7, wantError: "no option 7; and no DHCPv6 option 65001"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, why, err := addReceivers6(tt.c, b, tt.recvs, "v4", tt.err, tt.l6)
			if tt.wantError != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantError) || !errors.Is(err, noOpt7) {
					t.Fatalf("err = %v, want %q wrapping the v4 error", err, tt.wantError)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var gs []string
			for _, r := range got {
				gs = append(gs, r.String())
			}
			if strings.Join(gs, " ") != strings.Join(tt.want, " ") {
				t.Errorf("receivers %v, want %v", gs, tt.want)
			}
			if !strings.Contains(why, tt.wantWhy) {
				t.Errorf("why %q, want it to contain %q", why, tt.wantWhy)
			}
		})
	}
}

func TestLeaseHost(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"", ""},
		{"web-1", "web-1"},
		{"my box", "my-box"},     // a space: the upload path would refuse it
		{".hidden", "_hidden"},   // no leading '.'
		{"caf\xc3\xa9", "caf--"}, // non-ASCII bytes
		{"a/b", "a-b"},           // no path separator
	} {
		got := leaseHost(tt.in)
		if got != tt.want {
			t.Errorf("leaseHost(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if got != "" && ship.CheckHost(got) != nil {
			t.Errorf("leaseHost(%q) = %q, which the protocol refuses", tt.in, got)
		}
	}
}

// parseNetCmdline is the plan the agent makes from board b and cmdline:
// loadBoard's parse of the lastgasp.* arguments (on a copy of b), then
// netPlan.
func parseNetCmdline(b *boards.Board, cmdline string, errorf func(string, ...any)) netCmdline {
	scratch := *b
	args, err := boards.ApplyCmdline(&scratch, cmdline)
	if err != nil {
		args = boards.Cmdline{}
	}
	return netPlan(b, args, cmdline, errorf)
}
