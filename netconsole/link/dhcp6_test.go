package link

import (
	"bytes"
	"encoding/hex"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/insomniacslk/dhcp/iana"
)

// The client and server the DHCPv6 tests pretend to be.
var (
	testHW6        = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x42}
	testClientID6  = &dhcpv6.DUIDLL{HWType: iana.HWTypeEthernet, LinkLayerAddr: testHW6}
	testServerID6  = &dhcpv6.DUIDLL{HWType: iana.HWTypeEthernet, LinkLayerAddr: net.HardwareAddr{0x02, 0, 0, 0, 0, 0x01}}
	testServerStr6 = "00:03:00:01:02:00:00:00:00:01"
	testWant6      = expect6{clientID: testClientID6.ToBytes(), iaid: [4]byte{0, 0, 0, 0x42}, logCode: testLogCode6}
)

// testLogCode6 is the site option the tests carry log servers in.
const testLogCode6 = 65001

var cmpAddr = cmpopts.EquateComparable(netip.Addr{})

// msg6 builds a message of type mt with opts, for testClientID6 unless opts
// has another client DUID, and returns it as a client would receive it:
// serialized and parsed again.
func msg6(t testing.TB, mt dhcpv6.MessageType, opts ...dhcpv6.Option) *dhcpv6.Message {
	t.Helper()
	m := &dhcpv6.Message{MessageType: mt, TransactionID: dhcpv6.TransactionID{1, 2, 3}}
	m.AddOption(dhcpv6.OptClientID(testClientID6))
	for _, o := range opts {
		if o.Code() == dhcpv6.OptionClientID {
			m.UpdateOption(o)
		} else {
			m.AddOption(o)
		}
	}
	p, err := dhcpv6.MessageFromBytes(m.ToBytes())
	if err != nil {
		t.Fatalf("MessageFromBytes(%s): %v", m, err)
	}
	return p
}

func ia6(iaid [4]byte, opts ...dhcpv6.Option) *dhcpv6.OptIANA {
	return &dhcpv6.OptIANA{IaId: iaid, T1: 30 * time.Minute, T2: 48 * time.Minute, Options: dhcpv6.IdentityOptions{Options: opts}}
}

func iaAddr6(ip string, preferred, valid time.Duration, opts ...dhcpv6.Option) *dhcpv6.OptIAAddress {
	return &dhcpv6.OptIAAddress{IPv6Addr: net.ParseIP(ip), PreferredLifetime: preferred, ValidLifetime: valid,
		Options: dhcpv6.AddressOptions{Options: opts}}
}

func status6(c iana.StatusCode, msg string) *dhcpv6.OptStatusCode {
	return &dhcpv6.OptStatusCode{StatusCode: c, StatusMessage: msg}
}

func logOpt6(addrs ...string) dhcpv6.Option {
	var b []byte
	for _, a := range addrs {
		b = append(b, net.ParseIP(a).To16()...)
	}
	return &dhcpv6.OptionGeneric{OptionCode: testLogCode6, OptionData: b}
}

func addrs6(ss ...string) []netip.Addr {
	var out []netip.Addr
	for _, s := range ss {
		out = append(out, netip.MustParseAddr(s))
	}
	return out
}

func TestParseLogServers6(t *testing.T) {
	one := netip.MustParseAddr("fd00:66::1").As16()
	two := netip.MustParseAddr("2001:db8::9").As16()
	ll := netip.MustParseAddr("fe80::1").As16()
	for _, tc := range []struct {
		name    string
		in      []byte
		want    []netip.Addr
		wantErr string
	}{
		{name: "one", in: one[:], want: addrs6("fd00:66::1")},
		{name: "two in order", in: append(two[:], one[:]...), want: addrs6("2001:db8::9", "fd00:66::1")},
		{name: "link-local", in: ll[:], want: addrs6("fe80::1")},
		{name: "empty", in: nil, wantErr: "empty"},
		{name: "short", in: one[:15], wantErr: "length 15"},
		{name: "one byte over", in: append(one[:], 0), wantErr: "length 17"},
		{name: "ipv4 sized", in: []byte{10, 7, 0, 9}, wantErr: "length 4"},
		{name: "unspecified", in: make([]byte, 16), wantErr: "address 1 (::)"},
		{name: "multicast second", in: append(one[:], netip.MustParseAddr("ff02::1").AsSlice()...), wantErr: "address 2 (ff02::1)"},
		{name: "loopback", in: netip.IPv6Loopback().AsSlice(), wantErr: "address 1 (::1)"},
		{name: "ipv4-mapped", in: net.ParseIP("10.7.0.9").To16(), wantErr: "::ffff:10.7.0.9"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseLogServers6(tc.in)
			if tc.wantErr != "" {
				if !errors.Is(err, ErrBadOption6) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ParseLogServers6(%x) = %v, %v; want ErrBadOption6 mentioning %q", tc.in, got, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseLogServers6(%x): %v", tc.in, err)
			}
			if diff := cmp.Diff(tc.want, got, cmpAddr); diff != "" {
				t.Errorf("ParseLogServers6(%x) (-want +got):\n%s", tc.in, diff)
			}
		})
	}
}

func TestLease6FromReply(t *testing.T) {
	const h = time.Hour
	sid := dhcpv6.OptServerID(testServerID6)
	good := iaAddr6("fd00:66::150", 30*time.Minute, h)
	for _, tc := range []struct {
		name    string
		mt      dhcpv6.MessageType
		opts    []dhcpv6.Option
		want    *Lease6
		wantErr string
		refusal bool // the error is a server's refusal (statusError6)
	}{
		{
			name: "address, log servers, dns",
			opts: []dhcpv6.Option{sid, ia6(testWant6.iaid, good), logOpt6("fd00:66::1", "fd00:67::9"), dhcpv6.OptDNS(net.ParseIP("fd00:66::53"))},
			want: &Lease6{Interface: "eth0", Address: netip.MustParseAddr("fd00:66::150"), Preferred: 30 * time.Minute, Valid: h,
				ServerID: testServerStr6, LogServers: addrs6("fd00:66::1", "fd00:67::9"), DNS: addrs6("fd00:66::53")},
		},
		{
			name: "no log option",
			opts: []dhcpv6.Option{sid, ia6(testWant6.iaid, good)},
			want: &Lease6{Interface: "eth0", Address: netip.MustParseAddr("fd00:66::150"), Preferred: 30 * time.Minute, Valid: h, ServerID: testServerStr6},
		},
		{
			name: "infinite lifetimes, success status",
			opts: []dhcpv6.Option{sid, status6(iana.StatusSuccess, "ok"), ia6(testWant6.iaid, status6(iana.StatusSuccess, ""), iaAddr6("2001:db8::5", infinite6, infinite6))},
			want: &Lease6{Interface: "eth0", Address: netip.MustParseAddr("2001:db8::5"), Preferred: infinite6, Valid: infinite6, ServerID: testServerStr6},
		},
		{
			name: "unusable addresses skipped",
			opts: []dhcpv6.Option{sid, ia6(testWant6.iaid,
				iaAddr6("fe80::5", h, h), iaAddr6("ff02::1", h, h), iaAddr6("fd00:66::7", 0, 0),
				iaAddr6("fd00:66::8", h, h, status6(iana.StatusNotOnLink, "")), good)},
			want: &Lease6{Interface: "eth0", Address: netip.MustParseAddr("fd00:66::150"), Preferred: 30 * time.Minute, Valid: h, ServerID: testServerStr6},
		},
		{
			name: "unusable dns dropped",
			opts: []dhcpv6.Option{sid, ia6(testWant6.iaid, good), dhcpv6.OptDNS(net.ParseIP("::"), net.ParseIP("fd00:66::53"), net.ParseIP("ff02::1"))},
			want: &Lease6{Interface: "eth0", Address: netip.MustParseAddr("fd00:66::150"), Preferred: 30 * time.Minute, Valid: h,
				ServerID: testServerStr6, DNS: addrs6("fd00:66::53")},
		},
		{
			name: "other IA_NA ignored",
			opts: []dhcpv6.Option{sid, ia6([4]byte{9, 9, 9, 9}, iaAddr6("fd00:66::99", h, h)), ia6(testWant6.iaid, good)},
			want: &Lease6{Interface: "eth0", Address: netip.MustParseAddr("fd00:66::150"), Preferred: 30 * time.Minute, Valid: h, ServerID: testServerStr6},
		},
		{name: "advertise", mt: dhcpv6.MessageTypeAdvertise, opts: []dhcpv6.Option{sid, ia6(testWant6.iaid, good)}, wantErr: "not a Reply"},
		{name: "no server id", opts: []dhcpv6.Option{ia6(testWant6.iaid, good)}, wantErr: "no server DUID"},
		{name: "NoAddrsAvail", opts: []dhcpv6.Option{sid, status6(iana.StatusNoAddrsAvail, "no addresses available")}, wantErr: `NoAddrsAvail ("no addresses available")`, refusal: true},
		{name: "NoAddrsAvail in IA_NA", opts: []dhcpv6.Option{sid, ia6(testWant6.iaid, status6(iana.StatusNoAddrsAvail, "pool empty"))}, wantErr: "NoAddrsAvail", refusal: true},
		{name: "no IA_NA", opts: []dhcpv6.Option{sid}, wantErr: "no IA_NA 00000042", refusal: true},
		{name: "empty IA_NA", opts: []dhcpv6.Option{sid, ia6(testWant6.iaid)}, wantErr: "IA_NA without addresses", refusal: true},
		{name: "only other IAID", opts: []dhcpv6.Option{sid, ia6([4]byte{1, 2, 3, 4}, good)}, wantErr: "no IA_NA", refusal: true},
		{name: "preferred above valid", opts: []dhcpv6.Option{sid, ia6(testWant6.iaid, iaAddr6("fd00:66::150", 2*h, h))}, wantErr: "preferred lifetime 2h0m0s > valid 1h0m0s"},
		{name: "only link-local", opts: []dhcpv6.Option{sid, ia6(testWant6.iaid, iaAddr6("fe80::1", h, h))}, wantErr: "fe80::1: not a unicast address"},
		{name: "valid lifetime 0", opts: []dhcpv6.Option{sid, ia6(testWant6.iaid, iaAddr6("fd00:66::150", 0, 0))}, wantErr: "valid lifetime 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mt := tc.mt
			if mt == 0 {
				mt = dhcpv6.MessageTypeReply
			}
			got, err := lease6FromReply("eth0", msg6(t, mt, tc.opts...), testWant6)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("lease6FromReply = %v, %v; want error mentioning %q", got, err, tc.wantErr)
				}
				var se *statusError6
				if errors.As(err, &se) != tc.refusal {
					t.Errorf("lease6FromReply error %q: refusal %v, want %v", err, !tc.refusal, tc.refusal)
				}
				return
			}
			if err != nil {
				t.Fatalf("lease6FromReply: %v", err)
			}
			if diff := cmp.Diff(tc.want, got, cmpAddr); diff != "" {
				t.Errorf("lease6FromReply (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCheckAdvertise6(t *testing.T) {
	sid := dhcpv6.OptServerID(testServerID6)
	good := ia6(testWant6.iaid, iaAddr6("fd00:66::150", time.Hour, time.Hour))
	other := &dhcpv6.DUIDLL{HWType: iana.HWTypeEthernet, LinkLayerAddr: net.HardwareAddr{2, 0, 0, 0, 0, 0x43}}
	for _, tc := range []struct {
		name    string
		msg     *dhcpv6.Message
		wantErr string
		refusal bool
	}{
		{name: "offer", msg: msg6(t, dhcpv6.MessageTypeAdvertise, sid, good)},
		{name: "reply", msg: msg6(t, dhcpv6.MessageTypeReply, sid, good), wantErr: "not an Advertise"},
		{name: "NoAddrsAvail", msg: msg6(t, dhcpv6.MessageTypeAdvertise, sid, status6(iana.StatusNoAddrsAvail, "")), wantErr: "server " + testServerStr6 + ": NoAddrsAvail", refusal: true},
		{name: "someone else's", msg: msg6(t, dhcpv6.MessageTypeAdvertise, sid, dhcpv6.OptClientID(other), good), wantErr: "is not ours"},
		{name: "nil", wantErr: "not an Advertise"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkAdvertise6(tc.msg, testWant6)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("checkAdvertise6: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("checkAdvertise6 = %v, want error mentioning %q", err, tc.wantErr)
			}
			var se *statusError6
			if errors.As(err, &se) != tc.refusal {
				t.Errorf("checkAdvertise6 error %q: refusal %v, want %v", err, !tc.refusal, tc.refusal)
			}
		})
	}
}

func TestLease6String(t *testing.T) {
	for _, tc := range []struct {
		name string
		l    *Lease6
		want string
	}{
		{name: "nil", want: "<no lease>"},
		{
			name: "full",
			l: &Lease6{Interface: "eth0", Address: netip.MustParseAddr("fd00:66::150"), Preferred: 30 * time.Minute, Valid: time.Hour,
				ServerID: testServerStr6, LogServers: addrs6("fd00:66::1"), DNS: addrs6("fd00:66::53")},
			want: "eth0 addr=fd00:66::150 preferred=30m0s valid=1h0m0s server=00:03:00:01:02:00:00:00:00:01 logservers=[fd00:66::1] dns=[fd00:66::53]",
		},
		{
			name: "forever",
			l:    &Lease6{Interface: "eth0", Address: netip.MustParseAddr("2001:db8::5"), Preferred: infinite6, Valid: infinite6, ServerID: "00:02"},
			want: "eth0 addr=2001:db8::5 preferred=forever valid=forever server=00:02",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.l.String(); got != tc.want {
				t.Errorf("String() = %q, want %q", got, tc.want)
			}
		})
	}
}

func FuzzParseLogServers6(f *testing.F) {
	one := netip.MustParseAddr("fd00:66::1").As16()
	two := netip.MustParseAddr("2001:db8::9").As16()
	f.Add(one[:])                                                      // one address
	f.Add(append(one[:], two[:]...))                                   // two
	f.Add([]byte{})                                                    // empty: error
	f.Add(one[:15])                                                    // truncated
	f.Add(append(one[:], netip.MustParseAddr("ff02::1").AsSlice()...)) // multicast second entry
	f.Add([]byte(net.ParseIP("10.7.0.9").To16()))                      // IPv4-mapped
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := ParseLogServers6(b)
		if err != nil {
			if !errors.Is(err, ErrBadOption6) {
				t.Fatalf("ParseLogServers6(%x) error %v does not wrap ErrBadOption6", b, err)
			}
			return
		}
		var back []byte
		for _, a := range got {
			if !a.Is6() || a.Is4In6() || a.IsUnspecified() || a.IsMulticast() || a.IsLoopback() {
				t.Fatalf("ParseLogServers6(%x) accepted %s", b, a)
			}
			s := a.As16()
			back = append(back, s[:]...)
		}
		if !bytes.Equal(back, b) {
			t.Fatalf("ParseLogServers6(%x) = %v, which encodes as %x", b, got, back)
		}
	})
}

// reply6From encodes l as the Reply a server would send to testWant6.
func reply6From(t *testing.T, l *Lease6) []byte {
	t.Helper()
	sid, err := hex.DecodeString(strings.ReplaceAll(l.ServerID, ":", ""))
	if err != nil {
		t.Fatalf("server DUID %q: %v", l.ServerID, err)
	}
	duid, err := dhcpv6.DUIDFromBytes(sid)
	if err != nil {
		t.Fatalf("server DUID %q: %v", l.ServerID, err)
	}
	m := &dhcpv6.Message{MessageType: dhcpv6.MessageTypeReply}
	m.AddOption(dhcpv6.OptClientID(testClientID6))
	m.AddOption(dhcpv6.OptServerID(duid))
	m.AddOption(ia6(testWant6.iaid, &dhcpv6.OptIAAddress{IPv6Addr: l.Address.AsSlice(), PreferredLifetime: l.Preferred, ValidLifetime: l.Valid}))
	if l.LogServers != nil {
		var b []byte
		for _, a := range l.LogServers {
			b = append(b, a.AsSlice()...)
		}
		m.AddOption(&dhcpv6.OptionGeneric{OptionCode: testLogCode6, OptionData: b})
	}
	if l.DNS != nil {
		var ips []net.IP
		for _, a := range l.DNS {
			ips = append(ips, a.AsSlice())
		}
		m.AddOption(dhcpv6.OptDNS(ips...))
	}
	return m.ToBytes()
}

// FuzzLease6FromReply feeds whole DHCPv6 messages, as the client's receive
// loop would, through the Advertise check and the Reply parser: no panic,
// a lease only with a usable address and consistent lifetimes, and a lease
// that survives encoding as a Reply and parsing again.
func FuzzLease6FromReply(f *testing.F) {
	sid := dhcpv6.OptServerID(testServerID6)
	good := ia6(testWant6.iaid, iaAddr6("fd00:66::150", 30*time.Minute, time.Hour))
	seed := func(mt dhcpv6.MessageType, opts ...dhcpv6.Option) []byte { return msg6(f, mt, opts...).ToBytes() }
	f.Add(seed(dhcpv6.MessageTypeReply, sid, good, logOpt6("fd00:66::1"), dhcpv6.OptDNS(net.ParseIP("fd00:66::53"))))       // full lease
	f.Add(seed(dhcpv6.MessageTypeAdvertise, sid, good))                                                                     // offer
	f.Add(seed(dhcpv6.MessageTypeAdvertise, sid, status6(iana.StatusNoAddrsAvail, "no addresses")))                         // refusal
	f.Add(seed(dhcpv6.MessageTypeReply, sid, ia6(testWant6.iaid, status6(iana.StatusNoAddrsAvail, ""))))                    // refusal in the IA
	f.Add(seed(dhcpv6.MessageTypeReply, sid, good, &dhcpv6.OptionGeneric{OptionCode: testLogCode6, OptionData: []byte{1}})) // bad log option
	f.Add(seed(dhcpv6.MessageTypeReply, sid, ia6(testWant6.iaid, iaAddr6("2001:db8::1", infinite6, infinite6))))            // forever
	f.Add([]byte{7, 1, 2, 3})                                                                                               // header only
	f.Add([]byte{7, 1, 2})                                                                                                  // truncated header
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := dhcpv6.MessageFromBytes(b)
		if err != nil {
			return // nclient6 drops it before it reaches us
		}
		_ = checkAdvertise6(m, testWant6)
		if li, err := info6FromReply("eth0", m, testWant6); err == nil {
			if li.Address.IsValid() || (li.LogServersErr != nil && len(li.LogServers) != 0) {
				t.Fatalf("info6FromReply(%x) = %s", b, li)
			}
			for _, a := range append(append([]netip.Addr{}, li.LogServers...), li.DNS...) {
				if !usable6(a) {
					t.Fatalf("info6FromReply(%x): unusable %s", b, a)
				}
			}
		}
		l, err := lease6FromReply("eth0", m, testWant6)
		if err != nil {
			return
		}
		if !usable6(l.Address) || l.Address.IsLinkLocalUnicast() || l.Valid <= 0 || l.Preferred > l.Valid || l.Preferred < 0 {
			t.Fatalf("lease6FromReply(%x) = %s", b, l)
		}
		for _, a := range l.DNS {
			if !usable6(a) {
				t.Fatalf("lease6FromReply(%x): dns %s", b, a)
			}
		}
		if l.LogServersErr != nil && len(l.LogServers) != 0 {
			t.Fatalf("lease6FromReply(%x): log servers %v and error %v", b, l.LogServers, l.LogServersErr)
		}
		l.LogServersErr = nil // the re-encoded Reply carries only what was usable
		again, err := dhcpv6.MessageFromBytes(reply6From(t, l))
		if err != nil {
			t.Fatalf("lease %s encodes as an unparsable Reply: %v", l, err)
		}
		l2, err := lease6FromReply("eth0", again, testWant6)
		if err != nil {
			t.Fatalf("lease %s, encoded as a Reply: %v", l, err)
		}
		if diff := cmp.Diff(l, l2, cmpAddr); diff != "" {
			t.Fatalf("lease6FromReply(%x) round trip (-first +again):\n%s", b, diff)
		}
	})
}

// TestLease6BadLogOption: a malformed log server option costs the option,
// not the address.
func TestLease6BadLogOption(t *testing.T) {
	sid := dhcpv6.OptServerID(testServerID6)
	good := iaAddr6("fd00:66::150", 30*time.Minute, time.Hour)
	for _, tc := range []struct {
		name    string
		opt     dhcpv6.Option
		wantErr string
	}{
		{name: "bad length", opt: &dhcpv6.OptionGeneric{OptionCode: testLogCode6, OptionData: []byte{10, 7, 0, 9}}, wantErr: "option 65001 (log servers): malformed DHCPv6 option: length 4"},
		{name: "multicast", opt: logOpt6("ff05::1:3"), wantErr: "option 65001"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, err := lease6FromReply("eth0", msg6(t, dhcpv6.MessageTypeReply, sid, ia6(testWant6.iaid, good), tc.opt), testWant6)
			if err != nil {
				t.Fatalf("lease6FromReply: %v; want the lease without log servers", err)
			}
			if l.Address != netip.MustParseAddr("fd00:66::150") || len(l.LogServers) != 0 {
				t.Errorf("lease %s: want fd00:66::150 and no log servers", l)
			}
			if l.LogServersErr == nil || !errors.Is(l.LogServersErr, ErrBadOption6) || !strings.Contains(l.LogServersErr.Error(), tc.wantErr) {
				t.Errorf("LogServersErr = %v, want ErrBadOption6 mentioning %q", l.LogServersErr, tc.wantErr)
			}
			if !strings.Contains(l.String(), "logservers_error=") {
				t.Errorf("String() = %q does not report the bad option", l.String())
			}
		})
	}
}

func TestInfo6FromReply(t *testing.T) {
	sid := dhcpv6.OptServerID(testServerID6)
	for _, tc := range []struct {
		name    string
		opts    []dhcpv6.Option
		logs    []string
		badLog  bool
		wantErr string
	}{
		{name: "log servers", opts: []dhcpv6.Option{sid, logOpt6("fd00:66::1")}, logs: []string{"fd00:66::1"}},
		{name: "no option", opts: []dhcpv6.Option{sid}},
		{name: "bad option kept apart", opts: []dhcpv6.Option{sid, &dhcpv6.OptionGeneric{OptionCode: testLogCode6, OptionData: []byte{1}}}, badLog: true},
		{name: "no server id", opts: []dhcpv6.Option{logOpt6("fd00:66::1")}, wantErr: "without a server DUID"},
		{name: "refusal", opts: []dhcpv6.Option{sid, status6(iana.StatusNotOnLink, "wrong link")}, wantErr: "wrong link"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, err := info6FromReply("eth0", msg6(t, dhcpv6.MessageTypeReply, tc.opts...), testWant6)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("info6FromReply = %v, %v; want error mentioning %q", l, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(addrs6(tc.logs...), l.LogServers, cmpAddr); diff != "" {
				t.Errorf("log servers (-want +got):\n%s", diff)
			}
			if (l.LogServersErr != nil) != tc.badLog || l.Address.IsValid() {
				t.Errorf("lease %s, log servers error %v: want error %v and no address", l, l.LogServersErr, tc.badLog)
			}
		})
	}
	// Another client's Reply.
	m := msg6(t, dhcpv6.MessageTypeReply, sid)
	m.Options.Del(dhcpv6.OptionClientID)
	m.AddOption(dhcpv6.OptClientID(&dhcpv6.DUIDLL{HWType: iana.HWTypeEthernet, LinkLayerAddr: []byte{9, 9, 9, 9, 9, 9}}))
	if _, err := info6FromReply("eth0", m, testWant6); err == nil {
		t.Error("info6FromReply accepted another client's Reply")
	}
}
