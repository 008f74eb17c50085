package agent

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/lastgasp/lastgasp/netconsole/nexthop"
	"github.com/lastgasp/lastgasp/netconsole/target"
)

// fakeRoutes answers route lookups from a table.
type fakeRoutes map[netip.Addr]nexthop.Hop

func (f fakeRoutes) Lookup(r netip.Addr) (nexthop.Hop, error) {
	h, ok := f[r]
	if !ok {
		return nexthop.Hop{}, errors.New("network unreachable")
	}
	return h, nil
}

// fakeMACs answers from a table and counts the resolutions asked for.
type fakeMACs struct {
	macs  map[netip.Addr]net.HardwareAddr
	asked []netip.Addr
}

func (f *fakeMACs) Resolve(_ context.Context, hop nexthop.Hop) (net.HardwareAddr, error) {
	f.asked = append(f.asked, hop.Via)
	m, ok := f.macs[hop.Via]
	if !ok {
		return nil, nexthop.ErrNoAnswer
	}
	return m, nil
}

// fakeTargets records the targets created; fail names one to refuse.
type fakeTargets struct {
	created []target.Target
	fail    string
}

func (f *fakeTargets) Create(t target.Target) error {
	if t.Name == f.fail {
		return errors.New("EBUSY")
	}
	f.created = append(f.created, t)
	return nil
}

func TestArmer(t *testing.T) {
	gw := netip.MustParseAddr("10.0.2.2")
	mac := net.HardwareAddr{0x52, 0x55, 0x0a, 0, 2, 2}
	src := netip.MustParseAddr("10.0.2.15")
	r1 := netip.MustParseAddrPort("10.0.2.2:6666")
	r2 := netip.MustParseAddrPort("10.9.0.1:6666")  // routed through gw
	r3 := netip.MustParseAddrPort("10.77.0.1:6666") // no route
	r6 := netip.MustParseAddrPort("[fd00::1]:6666") // IPv6 without an address
	routes := fakeRoutes{
		gw:                              {Dev: "eth0", Via: gw, Src: src, OnLink: true},
		netip.MustParseAddr("10.9.0.1"): {Dev: "eth0", Via: gw, Src: src},
		netip.MustParseAddr("fd00::1"):  {Dev: "eth0", Via: netip.MustParseAddr("fd00::1"), OnLink: true},
	}
	for _, tc := range []struct {
		name      string
		dynamic   bool
		recvs     []netip.AddrPort
		fail      string
		wantNames []string // armed, in order
		wantARPs  int
		wantParam string // substring of the module parameter (static)
	}{
		{name: "two receivers behind one next hop: one ARP", dynamic: true, recvs: []netip.AddrPort{r1, r2},
			wantNames: []string{"lastgasp0", "lastgasp1"}, wantARPs: 1},
		{name: "unroutable and IPv6-without-address receivers keep their names", dynamic: true,
			recvs: []netip.AddrPort{r3, r6, r1}, wantNames: []string{"lastgasp2"}, wantARPs: 1},
		{name: "a refused target is not armed", dynamic: true, recvs: []netip.AddrPort{r1, r2}, fail: "lastgasp0",
			wantNames: []string{"lastgasp1"}, wantARPs: 1},
		{name: "no configfs: one module load with every target", recvs: []netip.AddrPort{r1, r2},
			wantNames: []string{"lastgasp0", "lastgasp1"}, wantARPs: 1, wantParam: "@10.0.2.2/52:55:0a:00:02:02"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			macs := &fakeMACs{macs: map[netip.Addr]net.HardwareAddr{gw: mac}}
			tg := &fakeTargets{fail: tc.fail}
			var announced []string
			var param string
			m := &armer{
				Hops: routes, MACs: macs, Targets: tg, Dynamic: tc.dynamic,
				Reload:   func(p string) error { param = p; return nil },
				Announce: func(t target.Target, _ nexthop.Hop) { announced = append(announced, t.Name) },
				Log:      &logger{kmsg: io.Discard, fallback: io.Discard},
				Host:     "box", Boot: "b00t",
			}
			for _, r := range tc.recvs {
				m.Arm(context.Background(), r)
			}
			out := m.Finish(context.Background())
			var names []string
			for _, a := range out {
				names = append(names, a.target.Name)
				if a.target.RemoteMAC.String() != mac.String() || a.target.LocalIP != src {
					t.Errorf("%s: mac %v src %v, want %v %v", a.target.Name, a.target.RemoteMAC, a.target.LocalIP, mac, src)
				}
				if a.target.Userdata["host"] != "box" || a.target.Userdata["boot"] != "b00t" {
					t.Errorf("%s: userdata %v", a.target.Name, a.target.Userdata)
				}
			}
			if strings.Join(names, ",") != strings.Join(tc.wantNames, ",") {
				t.Errorf("armed %v, want %v", names, tc.wantNames)
			}
			if strings.Join(announced, ",") != strings.Join(tc.wantNames, ",") {
				t.Errorf("announced %v, want %v (every armed target, once)", announced, tc.wantNames)
			}
			if len(macs.asked) != tc.wantARPs {
				t.Errorf("%d resolutions (%v), want %d", len(macs.asked), macs.asked, tc.wantARPs)
			}
			if tc.dynamic && param != "" {
				t.Errorf("module reloaded (%q) with configfs netconsole", param)
			}
			if !tc.dynamic && (len(tg.created) != 0 || !strings.Contains(param, tc.wantParam)) {
				t.Errorf("static: created %d configfs targets, param %q, want none and %q", len(tg.created), param, tc.wantParam)
			}
		})
	}
}

// TestArmerReplyMAC: a next hop that sent the DHCP ACK is armed with the
// ACK's Ethernet source before any ARP; Finish checks it with ARP and
// re-arms the target if ARP answers with another MAC.
func TestArmerReplyMAC(t *testing.T) {
	gw := netip.MustParseAddr("10.0.2.2")
	ackMAC := net.HardwareAddr{0x52, 0x55, 0x0a, 0, 2, 2}
	other := net.HardwareAddr{0x02, 0, 0, 0, 0, 0x99}
	src := netip.MustParseAddr("10.0.2.15")
	r1 := netip.MustParseAddrPort("10.0.2.2:6666")
	routes := fakeRoutes{gw: {Dev: "eth0", Via: gw, Src: src, OnLink: true}}
	for _, tc := range []struct {
		name       string
		reply      replySender
		static     bool
		arp        net.HardwareAddr // nil: no ARP answer
		wantEarly  bool             // armed before any ARP
		wantMAC    net.HardwareAddr // the target's MAC after Finish
		wantCreate int
	}{
		{name: "ARP agrees", reply: replySender{Dev: "eth0", From: gw, MAC: ackMAC}, arp: ackMAC,
			wantEarly: true, wantMAC: ackMAC, wantCreate: 1},
		{name: "ARP disagrees: re-armed with ARP's", reply: replySender{Dev: "eth0", From: gw, MAC: ackMAC}, arp: other,
			wantEarly: true, wantMAC: other, wantCreate: 2},
		{name: "no ARP answer: the ACK's sender's kept", reply: replySender{Dev: "eth0", From: gw, MAC: ackMAC},
			wantEarly: true, wantMAC: ackMAC, wantCreate: 1},
		{name: "ACK from another address: ARP first", reply: replySender{Dev: "eth0", From: netip.MustParseAddr("10.0.2.3"), MAC: other}, arp: ackMAC,
			wantMAC: ackMAC, wantCreate: 1},
		{name: "ACK on another device: ARP first", reply: replySender{Dev: "eth1", From: gw, MAC: other}, arp: ackMAC,
			wantMAC: ackMAC, wantCreate: 1},
		{name: "no configfs: ARP first", reply: replySender{Dev: "eth0", From: gw, MAC: other}, static: true, arp: ackMAC,
			wantMAC: ackMAC},
		{name: "no ACK (static address)", arp: ackMAC, wantMAC: ackMAC, wantCreate: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			macs := &fakeMACs{macs: map[netip.Addr]net.HardwareAddr{}}
			if tc.arp != nil {
				macs.macs[gw] = tc.arp
			}
			tg := &fakeTargets{}
			var announced []string
			askedAtArm := -1
			m := &armer{
				Hops: routes, MACs: macs, Targets: tg, Dynamic: !tc.static, Reply: tc.reply,
				Reload: func(string) error { return nil },
				Announce: func(t target.Target, _ nexthop.Hop) {
					if askedAtArm < 0 {
						askedAtArm = len(macs.asked)
					}
					announced = append(announced, t.RemoteMAC.String())
				},
				Log:  &logger{kmsg: io.Discard, fallback: io.Discard},
				Host: "box", Boot: "b00t",
			}
			m.Arm(context.Background(), r1)
			if early := askedAtArm == 0; early != tc.wantEarly {
				t.Errorf("armed before ARP: %v, want %v (%d resolutions first)", early, tc.wantEarly, askedAtArm)
			}
			out := m.Finish(context.Background())
			if len(out) != 1 || out[0].target.RemoteMAC.String() != tc.wantMAC.String() {
				t.Fatalf("armed %+v, want one target at %v", out, tc.wantMAC)
			}
			if len(tg.created) != tc.wantCreate {
				t.Errorf("%d creates, want %d", len(tg.created), tc.wantCreate)
			}
			if n := len(tg.created); n > 0 && tg.created[n-1].RemoteMAC.String() != tc.wantMAC.String() {
				t.Errorf("configfs holds %v, want %v", tg.created[n-1].RemoteMAC, tc.wantMAC)
			}
			if announced[len(announced)-1] != tc.wantMAC.String() {
				t.Errorf("last announcement names %v, want %v", announced, tc.wantMAC)
			}
			if len(macs.asked) != 1 {
				t.Errorf("%d resolutions, want 1 (before arming, or Finish's check)", len(macs.asked))
			}
		})
	}
}

// TestArmerReplyMACTwoReceivers: two receivers behind the one next hop
// that sent the ACK: both armed at once, one ARP check, and both re-armed
// when ARP answers with another MAC.
func TestArmerReplyMACTwoReceivers(t *testing.T) {
	gw := netip.MustParseAddr("10.0.2.2")
	ackMAC := net.HardwareAddr{0x52, 0x55, 0x0a, 0, 2, 2}
	other := net.HardwareAddr{0x02, 0, 0, 0, 0, 0x99}
	src := netip.MustParseAddr("10.0.2.15")
	routes := fakeRoutes{
		gw:                              {Dev: "eth0", Via: gw, Src: src, OnLink: true},
		netip.MustParseAddr("10.9.0.1"): {Dev: "eth0", Via: gw, Src: src},
	}
	for _, tc := range []struct {
		name string
		arp  net.HardwareAddr
		want net.HardwareAddr
	}{
		{name: "ARP agrees", arp: ackMAC, want: ackMAC},
		{name: "ARP disagrees", arp: other, want: other},
	} {
		t.Run(tc.name, func(t *testing.T) {
			macs := &fakeMACs{macs: map[netip.Addr]net.HardwareAddr{gw: tc.arp}}
			tg := &fakeTargets{}
			m := &armer{
				Hops: routes, MACs: macs, Targets: tg, Dynamic: true,
				Reply:    replySender{Dev: "eth0", From: gw, MAC: ackMAC},
				Announce: func(target.Target, nexthop.Hop) {},
				Log:      &logger{kmsg: io.Discard, fallback: io.Discard},
			}
			m.Arm(context.Background(), netip.MustParseAddrPort("10.0.2.2:6666"))
			m.Arm(context.Background(), netip.MustParseAddrPort("10.9.0.1:6666"))
			if len(macs.asked) != 0 {
				t.Fatalf("%d resolutions before arming, want 0", len(macs.asked))
			}
			out := m.Finish(context.Background())
			if len(macs.asked) != 1 {
				t.Errorf("%d resolutions in Finish, want 1 (one next hop)", len(macs.asked))
			}
			if len(out) != 2 {
				t.Fatalf("%d targets armed, want 2", len(out))
			}
			for _, a := range out {
				if a.target.RemoteMAC.String() != tc.want.String() {
					t.Errorf("%s at %v, want %v", a.target.Name, a.target.RemoteMAC, tc.want)
				}
			}
			if n := len(tg.created); (tc.want.String() == ackMAC.String() && n != 2) || (tc.want.String() != ackMAC.String() && n != 4) {
				t.Errorf("%d creates, want 2 (+2 re-arms when ARP disagrees)", n)
			}
		})
	}
}
