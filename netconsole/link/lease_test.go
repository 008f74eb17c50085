package link

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/insomniacslk/dhcp/dhcpv4"
)

func cidr(s string) net.IPNet {
	ip, n, err := net.ParseCIDR(s)
	if err != nil {
		panic(err)
	}
	return net.IPNet{IP: ip.Mask(n.Mask).To4(), Mask: n.Mask}
}

func ip4(s string) net.IP { return net.ParseIP(s).To4() }

func ack(t testing.TB, mods ...dhcpv4.Modifier) *dhcpv4.DHCPv4 {
	t.Helper()
	base := []dhcpv4.Modifier{
		dhcpv4.WithMessageType(dhcpv4.MessageTypeAck),
		dhcpv4.WithYourIP(ip4("10.1.2.3")),
		dhcpv4.WithServerIP(ip4("10.1.2.1")),
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(ip4("10.1.2.1"))),
		dhcpv4.WithOption(dhcpv4.OptSubnetMask(net.CIDRMask(24, 32))),
	}
	m, err := dhcpv4.New(append(base, mods...)...)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestFromACK(t *testing.T) {
	for _, tc := range []struct {
		name    string
		mods    []dhcpv4.Modifier
		want    *Lease
		wantErr string
	}{
		{
			name: "minimal",
			want: &Lease{Interface: "eth0", Address: net.IPNet{IP: ip4("10.1.2.3"), Mask: net.CIDRMask(24, 32)}, ServerID: ip4("10.1.2.1"), LogServerOption: 7},
		},
		{
			name: "router, log servers, dns, ntp, lease time, hostname",
			mods: []dhcpv4.Modifier{
				dhcpv4.WithRouter(ip4("10.1.2.1"), ip4("10.1.2.2")),
				dhcpv4.WithOption(dhcpv4.OptGeneric(dhcpv4.OptionLogServer, []byte{10, 9, 9, 9, 0, 0, 0, 0, 224, 0, 0, 1, 10, 9, 9, 8})),
				dhcpv4.WithOption(dhcpv4.OptDNS(ip4("10.1.2.53"))),
				dhcpv4.WithOption(dhcpv4.OptNTPServers(ip4("10.1.2.123"))),
				dhcpv4.WithLeaseTime(3600),
				dhcpv4.WithOption(dhcpv4.OptHostName("box7")),
			},
			want: &Lease{
				Interface: "eth0", Address: net.IPNet{IP: ip4("10.1.2.3"), Mask: net.CIDRMask(24, 32)}, ServerID: ip4("10.1.2.1"), LogServerOption: 7,
				Router:     ip4("10.1.2.1"),
				LogServers: []net.IP{ip4("10.9.9.9"), ip4("10.9.9.8")}, // 0.0.0.0 and multicast dropped
				DNS:        []net.IP{ip4("10.1.2.53")}, NTP: []net.IP{ip4("10.1.2.123")},
				Duration: time.Hour, Hostname: "box7",
			},
		},
		{
			name: "classless routes win over the router option (RFC 3442)",
			mods: []dhcpv4.Modifier{
				dhcpv4.WithRouter(ip4("10.1.2.254")),
				dhcpv4.WithOption(dhcpv4.OptGeneric(dhcpv4.OptionClasslessStaticRoute, []byte{
					16, 10, 50, 10, 1, 2, 1, // 10.50.0.0/16 via 10.1.2.1
					24, 10, 60, 0, 0, 0, 0, 0, // 10.60.0.0/24 on-link
					0, 10, 1, 2, 9, // default via 10.1.2.9
				})),
				dhcpv4.WithOption(dhcpv4.OptGeneric(dhcpv4.OptionInterfaceMTU, []byte{0x05, 0x78})),
			},
			want: &Lease{
				Interface: "eth0", Address: net.IPNet{IP: ip4("10.1.2.3"), Mask: net.CIDRMask(24, 32)}, ServerID: ip4("10.1.2.1"), LogServerOption: 7,
				Router: ip4("10.1.2.9"),
				Routes: []Route{
					{Dest: cidr("10.50.0.0/16"), Gateway: ip4("10.1.2.1")},
					{Dest: cidr("10.60.0.0/24")},
					{Dest: cidr("0.0.0.0/0"), Gateway: ip4("10.1.2.9")},
				},
				MTU: 1400,
			},
		},
		{name: "not an ACK", mods: []dhcpv4.Modifier{dhcpv4.WithMessageType(dhcpv4.MessageTypeOffer)}, wantErr: "not a DHCPACK"},
		{name: "zero address", mods: []dhcpv4.Modifier{dhcpv4.WithYourIP(net.IPv4zero)}, wantErr: "unusable address"},
		{name: "broadcast address", mods: []dhcpv4.Modifier{dhcpv4.WithYourIP(net.IPv4bcast)}, wantErr: "unusable address"},
		{name: "mask of 3 bytes", mods: []dhcpv4.Modifier{dhcpv4.WithOption(dhcpv4.OptGeneric(dhcpv4.OptionSubnetMask, []byte{255, 255, 0}))}, wantErr: "option 1"},
		{name: "non-contiguous mask", mods: []dhcpv4.Modifier{dhcpv4.WithOption(dhcpv4.OptSubnetMask(net.IPv4Mask(255, 0, 255, 0)))}, wantErr: "invalid subnet mask"},
		{name: "truncated route", mods: []dhcpv4.Modifier{dhcpv4.WithOption(dhcpv4.OptGeneric(dhcpv4.OptionClasslessStaticRoute, []byte{24, 10, 60, 0, 10, 1}))}, wantErr: "option 121"},
		{name: "route prefix 33", mods: []dhcpv4.Modifier{dhcpv4.WithOption(dhcpv4.OptGeneric(dhcpv4.OptionClasslessStaticRoute, []byte{33, 1, 2, 3, 4, 5, 1, 2, 3, 4}))}, wantErr: "option 121"},
		{name: "route via broadcast", mods: []dhcpv4.Modifier{dhcpv4.WithOption(dhcpv4.OptGeneric(dhcpv4.OptionClasslessStaticRoute, []byte{8, 10, 255, 255, 255, 255}))}, wantErr: "unusable gateway"},
		{name: "mtu of 1 byte", mods: []dhcpv4.Modifier{dhcpv4.WithOption(dhcpv4.OptGeneric(dhcpv4.OptionInterfaceMTU, []byte{9}))}, wantErr: "option 26"},
		{name: "mtu 67", mods: []dhcpv4.Modifier{dhcpv4.WithOption(dhcpv4.OptGeneric(dhcpv4.OptionInterfaceMTU, []byte{0, 67}))}, wantErr: "below 68"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := FromACK("eth0", ack(t, tc.mods...))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("FromACK = %v, %v; want error containing %q", got, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("FromACK: %v", err)
			}
			if diff := cmp.Diff(tc.want, got, cmpAddr); diff != "" {
				t.Errorf("FromACK (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseClasslessRoutes(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in      []byte
		want    []Route
		wantErr bool
	}{
		{name: "RFC 3442 examples", in: []byte{0, 1, 2, 3, 4, 8, 10, 5, 6, 7, 8, 32, 10, 0, 0, 1, 9, 9, 9, 9, 25, 10, 0, 0, 128, 1, 1, 1, 1},
			want: []Route{
				{Dest: cidr("0.0.0.0/0"), Gateway: ip4("1.2.3.4")},
				{Dest: cidr("10.0.0.0/8"), Gateway: ip4("5.6.7.8")},
				{Dest: cidr("10.0.0.1/32"), Gateway: ip4("9.9.9.9")},
				{Dest: cidr("10.0.0.128/25"), Gateway: ip4("1.1.1.1")},
			}},
		{name: "host bits cleared", in: []byte{9, 10, 0xff, 1, 1, 1, 1}, want: []Route{{Dest: cidr("10.128.0.0/9"), Gateway: ip4("1.1.1.1")}}},
		{name: "empty", in: []byte{}, wantErr: true},
		{name: "only a length", in: []byte{8}, wantErr: true},
		{name: "gateway cut short", in: []byte{8, 10, 1, 2, 3}, wantErr: true},
		{name: "trailing byte", in: []byte{8, 10, 1, 2, 3, 4, 0}, wantErr: true},
		{name: "multicast gateway", in: []byte{8, 10, 224, 0, 0, 1}, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseClasslessRoutes(tc.in)
			if (err != nil) != tc.wantErr {
				t.Fatalf("ParseClasslessRoutes(%v) = %v, %v; want error %v", tc.in, got, err, tc.wantErr)
			}
			if diff := cmp.Diff(tc.want, got, cmpAddr); diff != "" {
				t.Errorf("ParseClasslessRoutes (-want +got):\n%s", diff)
			}
		})
	}
}

// FuzzFromACK feeds arbitrary packets through the codec and FromACK: no
// panics, and whatever FromACK accepts is a usable, self-consistent lease.
func FuzzFromACK(f *testing.F) {
	for _, mods := range [][]dhcpv4.Modifier{
		nil,
		{dhcpv4.WithRouter(ip4("10.1.2.1")), dhcpv4.WithOption(dhcpv4.OptGeneric(dhcpv4.OptionLogServer, []byte{10, 9, 9, 9}))},
		{dhcpv4.WithOption(dhcpv4.OptGeneric(dhcpv4.OptionClasslessStaticRoute, []byte{0, 10, 1, 2, 9, 24, 10, 60, 0, 0, 0, 0, 0}))},
		{dhcpv4.WithOption(dhcpv4.OptGeneric(dhcpv4.OptionInterfaceMTU, []byte{0x05, 0xdc}))},
		{dhcpv4.WithOption(dhcpv4.OptGeneric(dhcpv4.OptionClasslessStaticRoute, []byte{33}))},
		{dhcpv4.WithOption(dhcpv4.OptGeneric(dhcpv4.GenericOptionCode(224), []byte{10, 9, 9, 7, 0, 0, 0, 0}))},
		{dhcpv4.WithOption(dhcpv4.OptGeneric(dhcpv4.GenericOptionCode(224), []byte{10, 9}))},
	} {
		f.Add(ack(f, mods...).ToBytes())
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := dhcpv4.FromBytes(b)
		if err != nil {
			return
		}
		l, err := FromACK("eth0", m)
		if err != nil {
			if l != nil {
				t.Fatalf("FromACK returned a lease with error %v", err)
			}
			return
		}
		if !usableUnicast(l.Address.IP) {
			t.Errorf("accepted address %v", l.Address.IP)
		}
		if ones, bits := l.Address.Mask.Size(); bits != 32 || ones == 0 {
			t.Errorf("accepted mask %v", l.Address.Mask)
		}
		if l.MTU != 0 && l.MTU < minMTU {
			t.Errorf("accepted MTU %d", l.MTU)
		}
		for _, r := range l.Routes {
			if !r.Dest.IP.Equal(r.Dest.IP.Mask(r.Dest.Mask)) {
				t.Errorf("route %v has host bits", r)
			}
			if !r.OnLink() && !usableUnicast(r.Gateway) {
				t.Errorf("route %v has an unusable gateway", r)
			}
		}
		for _, ip := range append(append(append([]net.IP{}, l.LogServers...), l.DNS...), l.NTP...) {
			if !usableUnicast(ip) {
				t.Errorf("accepted server %v", ip)
			}
		}
		_ = l.String()
		// The site log server option (224) read from the same packet.
		if err := SiteLogServers(l, m, 224); err == nil {
			for _, ip := range l.LogServers {
				if !usableUnicast(ip) {
					t.Errorf("accepted site log server %v", ip)
				}
			}
		} else if v := m.Options.Get(dhcpv4.GenericOptionCode(224)); v != nil && len(v) > 0 && len(v)%4 == 0 {
			t.Errorf("SiteLogServers rejected a well-formed option 224 %v: %v", v, err)
		}
	})
}

// FuzzParseClasslessRoutes checks that what parses re-encodes to the same
// bytes once host bits are cleared (the codec round trip).
func FuzzParseClasslessRoutes(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 8, 10, 5, 6, 7, 8})
	f.Add([]byte{32, 10, 0, 0, 1, 0, 0, 0, 0})
	f.Add([]byte{9, 10, 0xff, 1, 1, 1, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		rs, err := ParseClasslessRoutes(b)
		if err != nil {
			return
		}
		var enc dhcpv4.Routes
		for _, r := range rs {
			gw := r.Gateway
			if gw == nil {
				gw = net.IPv4zero
			}
			enc = append(enc, &dhcpv4.Route{Dest: &net.IPNet{IP: r.Dest.IP, Mask: r.Dest.Mask}, Router: gw})
		}
		again, err := ParseClasslessRoutes(enc.ToBytes())
		if err != nil {
			t.Fatalf("re-encoded %v does not parse: %v", enc, err)
		}
		if diff := cmp.Diff(rs, again, cmpAddr); diff != "" {
			t.Errorf("round trip (-first +second):\n%s", diff)
		}
		if n := len(enc.ToBytes()); n != len(b) {
			t.Errorf("re-encoded to %d bytes, parsed %d", n, len(b))
		}
	})
}

func TestSiteLogServers(t *testing.T) {
	for _, tt := range []struct {
		name    string
		value   []byte // nil: option absent
		want    []net.IP
		wantErr bool
	}{
		{name: "absent"},
		{name: "two", value: []byte{10, 0, 0, 1, 10, 0, 0, 2}, want: []net.IP{ip4("10.0.0.1"), ip4("10.0.0.2")}},
		{name: "unusable dropped", value: []byte{0, 0, 0, 0, 224, 0, 0, 1, 10, 0, 0, 3}, want: []net.IP{ip4("10.0.0.3")}},
		{name: "short", value: []byte{10, 0, 0}, wantErr: true},
		{name: "empty", value: []byte{}, wantErr: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ack, err := dhcpv4.New(dhcpv4.WithMessageType(dhcpv4.MessageTypeAck), dhcpv4.WithYourIP(ip4("10.0.0.9")),
				dhcpv4.WithOption(dhcpv4.OptGeneric(dhcpv4.OptionLogServer, []byte{10, 9, 9, 9})))
			if err != nil {
				t.Fatal(err)
			}
			if tt.value != nil {
				ack.UpdateOption(dhcpv4.OptGeneric(dhcpv4.GenericOptionCode(224), tt.value))
			}
			l, err := FromACK("eth0", ack)
			if err != nil {
				t.Fatal(err)
			}
			err = SiteLogServers(l, ack, 224)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("SiteLogServers(%v) = nil, want an error", tt.value)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if l.LogServerOption != 224 || len(l.LogServers) != len(tt.want) {
				t.Fatalf("log servers %v (option %d), want %v (option 224)", l.LogServers, l.LogServerOption, tt.want)
			}
			for i := range tt.want {
				if !l.LogServers[i].Equal(tt.want[i]) {
					t.Errorf("log server %d = %v, want %v", i, l.LogServers[i], tt.want[i])
				}
			}
		})
	}
}
