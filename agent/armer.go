package agent

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/lastgasp/lastgasp/netconsole/nexthop"
	"github.com/lastgasp/lastgasp/netconsole/target"
)

// hopFinder finds the next hop toward a receiver: the kernel's routing
// table (nexthop.Lookup) in the agent.
type hopFinder interface {
	Lookup(receiver netip.Addr) (nexthop.Hop, error)
}

// macResolver finds the MAC address of a next hop: ARP for IPv4, NDP for
// IPv6, on the hop's device.
type macResolver interface {
	Resolve(ctx context.Context, hop nexthop.Hop) (net.HardwareAddr, error)
}

// targetCreator writes and enables one netconsole target (configfs:
// target.Configfs).
type targetCreator interface {
	Create(t target.Target) error
}

// resolverFunc is a macResolver made of a function (the agent's
// resolve, with the board's ARP timeout bound).
type resolverFunc func(ctx context.Context, hop nexthop.Hop) (net.HardwareAddr, error)

// Resolve calls f.
func (f resolverFunc) Resolve(ctx context.Context, hop nexthop.Hop) (net.HardwareAddr, error) {
	return f(ctx, hop)
}

// kernelRoutes is the hopFinder of a running system.
type kernelRoutes struct{}

// Lookup asks the kernel's routing table.
func (kernelRoutes) Lookup(r netip.Addr) (nexthop.Hop, error) { return nexthop.Lookup(r) }

// armer arms one netconsole target per receiver, in the order given: next
// hop, its MAC (once per device and next hop), the target, then the
// announcement that binds the stream to host and boot. Without configfs
// netconsole (Dynamic false) the targets are collected and Finish loads the
// netconsole module with their netconsole= parameter.
type armer struct {
	Hops    hopFinder
	MACs    macResolver
	Targets targetCreator
	// Dynamic: the kernel's netconsole takes configfs targets.
	Dynamic bool
	// Reload loads netconsole with a netconsole= parameter (Dynamic false).
	Reload func(param string) error
	// Announce writes the announcement of an armed target.
	Announce func(t target.Target, hop nexthop.Hop)
	Log      *logger
	Host     string
	Boot     string
	// Src6 is the NIC's global IPv6 address, once the ipv6 step has one:
	// IPv6 receivers are skipped without it (that step said why).
	Src6 netip.Addr
	// Lease is when the address was applied, for lease_to_mac.
	Lease time.Time
	// Reply is the sender of the DHCP ACK: a next hop that is that sender
	// is armed with its MAC at once, and ARP checks it in Finish.
	Reply replySender

	n      int                         // targets named so far
	macs   map[string]net.HardwareAddr // dev/via -> MAC
	static []armed
	out    []armed
	checks []int // indexes in out armed with Reply's MAC, for Finish to check
	// replyKeys: the dev/via keys of macs whose MAC is Reply's, not ARP's.
	replyKeys map[string]bool
}

// replySender is where the DHCP ACK came from (link.Lease's ReplyFrom and
// ReplyMAC) and on which device.
type replySender struct {
	Dev  string
	From netip.Addr
	MAC  net.HardwareAddr
}

// macFor returns the MAC the DHCP ACK gives for hop: its sender's, when
// the sender is the hop's next hop on the same device. Only with configfs
// targets (Dynamic), which Finish can re-arm if ARP disagrees.
func (m *armer) macFor(hop nexthop.Hop) (net.HardwareAddr, bool) {
	r := m.Reply
	if !m.Dynamic || !r.From.IsValid() || r.From != hop.Via || r.Dev != hop.Dev || len(r.MAC) != 6 {
		return nil, false
	}
	return r.MAC, true
}

// Arm arms a target for receiver r. Every receiver takes a target name
// (lastgasp0, lastgasp1, … in the order asked), armed or not, so that a
// name always means the same receiver on one board.
func (m *armer) Arm(ctx context.Context, r netip.AddrPort) {
	name := fmt.Sprintf("lastgasp%d", m.n)
	m.n++
	rip := r.Addr()
	if rip.Is6() && !m.Src6.IsValid() {
		return // the ipv6 step failed and said so
	}
	t0 := time.Now()
	hop, err := m.Hops.Lookup(rip)
	if err == nil && rip.Is6() && !hop.Src.IsValid() {
		hop.Src = m.Src6
	}
	how := "on-link: frames carry the receiver's own MAC"
	if !hop.OnLink {
		how = "routed: frames carry the gateway's MAC"
	}
	if m.Log.Step("route", t0, err, "%s (%s)", hop, how) != nil {
		return
	}
	t0 = time.Now()
	key := hop.Dev + "/" + hop.Via.String()
	mac, cached := m.macs[key]
	note, proto := "", "arp"
	if rip.Is6() {
		proto = "ndp"
	}
	fromReply := false
	switch {
	case cached:
		note = ", resolved before"
		fromReply = m.replyKeys[key] // Finish checks this target too
	default:
		if mac, fromReply = m.macFor(hop); fromReply {
			note = ", the DHCP ACK's sender; ARP checks it once armed"
		} else {
			mac, err = m.MACs.Resolve(ctx, hop)
		}
	}
	if m.Log.Step(proto, t0, err, "%s is at %s (lease_to_mac=%v%s)", hop.Via, mac, time.Since(m.Lease).Round(100*time.Microsecond), note) != nil {
		return
	}
	if m.macs == nil {
		m.macs, m.replyKeys = map[string]net.HardwareAddr{}, map[string]bool{}
	}
	m.macs[key] = mac
	m.replyKeys[key] = fromReply
	t := target.Target{
		Name: name, Dev: hop.Dev, LocalIP: hop.Src, LocalPort: 6665,
		RemoteIP: rip, RemotePort: int(r.Port()), RemoteMAC: mac, Extended: true,
		// On kernels with netconsole userdata (6.9+) every message
		// carries the host identity; older kernels ignore this.
		Userdata: map[string]string{"host": m.Host, "boot": m.Boot},
	}
	if !m.Dynamic {
		m.static = append(m.static, armed{target: t, hop: hop})
		return
	}
	t0 = time.Now()
	err = m.Targets.Create(t)
	if m.Log.Step("netconsole", t0, err, "target %s enabled: %s", t.Name, t.Param()) != nil {
		return
	}
	m.Announce(t, hop)
	if fromReply {
		m.checks = append(m.checks, len(m.out))
	}
	m.out = append(m.out, armed{target: t, hop: hop})
}

// check resolves, once per next hop, the MAC of the targets armed with the
// DHCP ACK's sender's, and re-arms each target if ARP answers with another:
// the frames must carry the MAC the next hop itself answers for its
// address.
func (m *armer) check(ctx context.Context) {
	type result struct {
		mac net.HardwareAddr
		err error
	}
	resolved := map[string]result{}
	for _, i := range m.checks {
		a := &m.out[i]
		key := a.hop.Dev + "/" + a.hop.Via.String()
		r, done := resolved[key]
		if !done {
			t0 := time.Now()
			r.mac, r.err = m.MACs.Resolve(ctx, a.hop)
			resolved[key] = r
			switch {
			case r.err != nil:
				m.Log.Logf(levelWarn, "arp: %s: %v; keeping %s, the DHCP ACK's sender", a.hop.Via, r.err, a.target.RemoteMAC)
			case r.mac.String() == a.target.RemoteMAC.String():
				m.Log.Step("arp", t0, nil, "%s is at %s, as the DHCP ACK's sender", a.hop.Via, r.mac)
			default:
				m.Log.Logf(levelWarn, "arp: %s is at %s, not %s (the DHCP ACK's sender); re-arming", a.hop.Via, r.mac, a.target.RemoteMAC)
				m.macs[key], m.replyKeys[key] = r.mac, false
			}
		}
		if r.err != nil || r.mac.String() == a.target.RemoteMAC.String() {
			continue
		}
		t0 := time.Now()
		t := a.target
		t.RemoteMAC = r.mac
		if m.Log.Step("netconsole", t0, m.Targets.Create(t), "target %s re-armed: %s", t.Name, t.Param()) != nil {
			continue // Create left it disabled or half written: it says so
		}
		a.target = t
		m.Announce(t, a.hop)
	}
	m.checks = nil
}

// Finish loads netconsole with the collected targets when the kernel has
// no configfs netconsole (CONFIG_NETCONSOLE_DYNAMIC off), and returns every
// armed target.
func (m *armer) Finish(ctx context.Context) []armed {
	m.check(ctx)
	if len(m.static) == 0 {
		return m.out
	}
	var ts []target.Target
	for _, s := range m.static {
		ts = append(ts, s.target)
	}
	t0 := time.Now()
	param := target.ModuleParam(ts)
	if m.Log.Step("netconsole", t0, m.Reload(param), "no dynamic netconsole; module loaded with %s", param) == nil {
		for _, s := range m.static {
			m.Announce(s.target, s.hop)
		}
		m.out = append(m.out, m.static...)
	}
	m.static = nil
	return m.out
}
