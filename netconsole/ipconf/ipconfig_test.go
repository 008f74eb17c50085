package ipconf

import (
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// equateAddr compares netip.Addr values (unexported fields) with ==.
var equateAddr = cmpopts.EquateComparable(netip.Addr{})

func TestParseIPArg(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in      string
		want    IPConfig
		wantErr string
	}{
		{name: "dhcp", in: "dhcp", want: IPConfig{Method: IPDHCP, Autoconf: "dhcp"}},
		{name: "on", in: "on", want: IPConfig{Method: IPDHCP, Autoconf: "on"}},
		{name: "any", in: "any", want: IPConfig{Method: IPDHCP, Autoconf: "any"}},
		{name: "bootp served as dhcp", in: "bootp", want: IPConfig{Method: IPDHCP, Autoconf: "bootp"}},
		{name: "dhcp with client id", in: "dhcp,1,abc", want: IPConfig{Method: IPDHCP, Autoconf: "dhcp,1,abc"}},
		{name: "off", in: "off", want: IPConfig{Method: IPOff, Autoconf: "off"}},
		{name: "auto6", in: "auto6", want: IPConfig{Method: IPAuto6, Autoconf: "auto6"}},
		{name: "dhcp6", in: "dhcp6", want: IPConfig{Method: IPAuto6, Autoconf: "dhcp6"}},
		{name: "device and either6", in: ":::::eth1:either6", want: IPConfig{Method: IPAuto6, Device: "eth1", Autoconf: "either6"}},
		{name: "none", in: "none", want: IPConfig{Method: IPOff, Autoconf: "none"}},
		{name: "empty", in: "", want: IPConfig{Method: IPOff}},
		{name: "all fields empty means autoconf any", in: ":::::::::", want: IPConfig{Method: IPDHCP}},
		{name: "device and dhcp", in: "::::box:eth1:dhcp", want: IPConfig{Method: IPDHCP, Device: "eth1", Hostname: "box", Autoconf: "dhcp"}},
		{name: "device with autoconf off and no address", in: ":::::eth1:off", want: IPConfig{Method: IPOff, Device: "eth1", Autoconf: "off"}},
		{
			name: "full static",
			in:   "10.0.0.5:10.0.0.1:10.0.0.254:255.255.255.0:box.example.org:eth0:off:10.0.0.53:10.0.0.54:10.0.0.123",
			want: IPConfig{
				Method: IPStatic, Device: "eth0", Hostname: "box", Domain: "example.org", Server: ip4("10.0.0.1"), Autoconf: "off",
				Static: &Lease{
					Interface: "eth0", Address: net.IPNet{IP: ip4("10.0.0.5"), Mask: net.CIDRMask(24, 32)},
					Router: ip4("10.0.0.254"), ServerID: ip4("10.0.0.1"), Hostname: "box",
					DNS: []net.IP{ip4("10.0.0.53"), ip4("10.0.0.54")}, NTP: []net.IP{ip4("10.0.0.123")},
				},
			},
		},
		{
			name: "client address wins over autoconf, class mask",
			in:   "172.16.3.4::::::dhcp",
			want: IPConfig{Method: IPStatic, Autoconf: "dhcp", Static: &Lease{Address: net.IPNet{IP: ip4("172.16.3.4"), Mask: net.CIDRMask(16, 32)}}},
		},
		{
			name: "lone client address",
			in:   "10.2.3.4",
			want: IPConfig{Method: IPStatic, Static: &Lease{Address: net.IPNet{IP: ip4("10.2.3.4"), Mask: net.CIDRMask(8, 32)}}},
		},
		{
			name: "0.0.0.0 counts as empty",
			in:   "0.0.0.0:0.0.0.0:0.0.0.0:0.0.0.0::eth0",
			want: IPConfig{Method: IPDHCP, Device: "eth0"},
		},
		{
			name: "gateway outside the subnet is allowed",
			in:   "10.0.0.5::192.168.1.1:255.255.255.255",
			want: IPConfig{Method: IPStatic, Static: &Lease{Address: net.IPNet{IP: ip4("10.0.0.5"), Mask: net.CIDRMask(32, 32)}, Router: ip4("192.168.1.1")}},
		},
		{name: "rarp", in: "rarp", wantErr: "rarp"},
		{name: "rarp field", in: "::::::rarp", wantErr: "rarp"},
		{name: "unknown autoconf", in: "::::::dhcp7", wantErr: "unknown autoconf"},
		{name: "bad client", in: "10.0.0.256", wantErr: "client-ip"},
		{name: "ipv6 client", in: "fe80::1", wantErr: "not an IPv4"},
		{name: "ipv6 in a field", in: "::2001:db8::1", wantErr: "not an IPv4"},
		{name: "bad mask", in: "10.0.0.5:::255.0.255.0", wantErr: "netmask"},
		{name: "multicast client", in: "224.0.0.1", wantErr: "unicast"},
		{name: "broadcast gateway", in: "10.0.0.5::255.255.255.255", wantErr: "gw-ip"},
		{name: "trailing empty fields", in: "10.0.0.5:::::", want: IPConfig{Method: IPStatic, Static: &Lease{Address: net.IPNet{IP: ip4("10.0.0.5"), Mask: net.CIDRMask(8, 32)}}}},
		{name: "hostname with space", in: "::::a b", wantErr: "hostname"},
		{name: "device too long", in: ":::::abcdefghijklmnop", wantErr: "device"},
		{name: "device with slash", in: ":::::a/b", wantErr: "device"},
		{name: "eleven fields", in: "::::::::::", wantErr: "11 fields"},
		{name: "leading space", in: " 10.0.0.5", wantErr: "client-ip"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseIPArg(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ParseIPArg(%q) = %+v, %v; want error containing %q", tc.in, got, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseIPArg(%q): %v", tc.in, err)
			}
			if diff := cmp.Diff(tc.want, got, equateAddr); diff != "" {
				t.Errorf("ParseIPArg(%q) (-want +got):\n%s", tc.in, diff)
			}
		})
	}
}

// FuzzParseIPArg: no panics; an accepted configuration is self-consistent
// and its fields print back to something that parses to the same meaning.
func FuzzParseIPArg(f *testing.F) {
	for _, s := range []string{
		"dhcp", "off", "none", "on", "any", "", ":::::::::", "::::box:eth1:dhcp",
		"10.0.0.5:10.0.0.1:10.0.0.254:255.255.255.0:box.example.org:eth0:off:10.0.0.53:10.0.0.54:10.0.0.123",
		"172.16.3.4::::::dhcp", "10.2.3.4", "0.0.0.0:0.0.0.0", "rarp", "::2001:db8::1", "10.0.0.5:::255.0.255.0",
		"dhcp,1,abc", "::::::::::",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseIPArg(s)
		if err != nil {
			return
		}
		switch c.Method {
		case IPOff, IPDHCP:
			if c.Static != nil {
				t.Fatalf("ParseIPArg(%q): %v with a static lease", s, c.Method)
			}
		case IPStatic:
			l := c.Static
			if l == nil || !UsableUnicast(l.Address.IP) {
				t.Fatalf("ParseIPArg(%q): static without a usable address: %+v", s, l)
			}
			if ones, bits := l.Address.Mask.Size(); bits != 32 || ones == 0 {
				t.Fatalf("ParseIPArg(%q): mask %v", s, l.Address.Mask)
			}
			if l.Interface != c.Device {
				t.Fatalf("ParseIPArg(%q): interface %q, device %q", s, l.Interface, c.Device)
			}
			// Print the static configuration back in ip= syntax.
			str := func(ip net.IP) string {
				if ip == nil {
					return ""
				}
				return ip.String()
			}
			host := c.Hostname
			if c.Domain != "" {
				host += "." + c.Domain
			}
			var dns0, dns1, ntp0 net.IP
			if len(l.DNS) > 0 {
				dns0 = l.DNS[0]
			}
			if len(l.DNS) > 1 {
				dns1 = l.DNS[1]
			}
			if len(l.NTP) > 0 {
				ntp0 = l.NTP[0]
			}
			again := strings.Join([]string{str(l.Address.IP), str(c.Server), str(l.Router), net.IP(l.Address.Mask).String(),
				host, c.Device, c.Autoconf, str(dns0), str(dns1), str(ntp0)}, ":")
			c2, err := ParseIPArg(again)
			if err != nil {
				t.Fatalf("ParseIPArg(%q) ok, but its reprint %q: %v", s, again, err)
			}
			if diff := cmp.Diff(c.Static, c2.Static, equateAddr); diff != "" {
				t.Fatalf("ParseIPArg(%q) vs reprint %q (-first +second):\n%s", s, again, diff)
			}
		default:
			t.Fatalf("ParseIPArg(%q): method %v", s, c.Method)
		}
	})
}

func ip4(s string) net.IP { return net.ParseIP(s).To4() }
