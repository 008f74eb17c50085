package agent

import (
	"context"
	"errors"
	"fmt"
	"github.com/lastgasp/lastgasp/netconsole/announce"
	"github.com/lastgasp/lastgasp/pstore/ship"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/lastgasp/lastgasp/boards"
	"github.com/lastgasp/lastgasp/netconsole/link"
	"github.com/lastgasp/lastgasp/netconsole/nexthop"
	"github.com/lastgasp/lastgasp/netconsole/target"
	"github.com/mdlayher/arp"
	"golang.org/x/sys/unix"
)

// arpLinger is how long ARP resolution keeps listening after the first
// answer, to notice a second host claiming the same address. It runs after
// netconsole is armed (resolveEarly), so it costs no boot time.
const arpLinger = 250 * time.Millisecond

// dhcpv6Grace is how long the agent still waits for a DHCPv6 lease (for
// its receiver option) once SLAAC has given an address.
const dhcpv6Grace = 2 * time.Second

// dhcpv6InfoWait bounds the Information-request sent when no server
// answered a Solicit within dhcpv6Grace.
const dhcpv6InfoWait = time.Second

// ipv6Wait bounds the wait for a global IPv6 address (SLAAC: router
// solicitation delay, advertisement, duplicate address detection of the
// link-local and then the global address, about 1 s each) when a receiver
// is IPv6.
const ipv6Wait = 10 * time.Second

// netCmdline is what the network stage reads from the kernel command line.
type netCmdline struct {
	ip    link.IPConfig // the kernel's ip= argument; DHCP without one
	ipArg string        // its raw value, for the logs
	hasIP bool
	// fromBoard: the ip= configuration is the board's (no ip= argument).
	fromBoard bool
	// recv tells where the board's receivers came from; zero when the
	// lastgasp.* arguments were rejected (the agent then uses the board's).
	recv boards.Cmdline
}

// netPlan is the network part of the boot's plan: from the board (with
// the lastgasp.* overrides applied), the arguments loadBoard parsed (args)
// and the ip= argument of cmdline, or the board's ip. A malformed ip= is
// reported through errorf and treated as absent (DHCP).
func netPlan(b *boards.Board, args boards.Cmdline, cmdline string, errorf func(string, ...any)) netCmdline {
	nc := netCmdline{ip: link.IPConfig{Method: link.IPDHCP}, recv: args}
	nc.ipArg, nc.hasIP = boards.KernelArg(cmdline, "ip")
	if !nc.hasIP && b.IP != "" {
		nc.ipArg, nc.hasIP, nc.fromBoard = b.IP, true, true
	}
	if !nc.hasIP {
		return nc
	}
	ipc, err := link.ParseIPArg(nc.ipArg)
	if err != nil {
		errorf("ipconfig: ignoring %s=%s: %v; using DHCP", nc.source(), nc.ipArg, err)
		nc.hasIP = false
		return nc
	}
	nc.ip = ipc
	return nc
}

// source names where the ip= configuration came from, for the logs.
func (nc netCmdline) source() string {
	if nc.fromBoard {
		return "board ip"
	}
	return "ip"
}

// describe says what the ip= configuration asks for, for the logs.
func (nc netCmdline) describe() string {
	if !nc.hasIP {
		return "dhcp (no ip= argument)"
	}
	dev := "any candidate"
	if nc.ip.Device != "" {
		dev = nc.ip.Device
	}
	switch nc.ip.Method {
	case link.IPStatic:
		s := nc.ip.Static
		return fmt.Sprintf("static %s gw %v on %s (%s=%s)", s.Address.String(), s.Router, dev, nc.source(), nc.ipArg)
	case link.IPOff:
		return fmt.Sprintf("off (%s=%s): no NIC is configured, no netconsole", nc.source(), nc.ipArg)
	case link.IPAuto6:
		return fmt.Sprintf("IPv6 only, SLAAC or DHCPv6, no DHCPv4, on %s (%s=%s)", dev, nc.source(), nc.ipArg)
	}
	return fmt.Sprintf("dhcp on %s (%s=%s)", dev, nc.source(), nc.ipArg)
}

// network brings a NIC up and arms one netconsole target per receiver.
// It returns the armed targets and the host name it announced.
func (a *agent) network(ctx context.Context, b *boards.Board, bootID string) ([]armed, string) {
	host := b.Host
	t0 := time.Now()
	nc := netPlan(b, a.args, a.cmdline, a.Log.Errorf)
	a.Log.Step("ipconfig", t0, nil, "%s", nc.describe())
	if nc.ip.Method == link.IPOff {
		return nil, orHost(host, "unknown")
	}

	t0 = time.Now()
	patterns, why := b.NIC, "board/lastgasp.iface patterns"
	if nc.ip.Device != "" {
		patterns, why = []string{nc.ip.Device}, "the ip= device"
	}
	cands, err := link.WaitCandidates(a.Config.SysClassNet, patterns, 3*time.Second)
	if a.Log.Step("nic", t0, err, "candidates %s from %s %q", describeNICs(a.Config.SysClassNet, cands), why, patterns) != nil {
		return nil, orHost(host, "unknown")
	}

	if a.Config.IPv6Conf != "" {
		t0 = time.Now()
		restore, err := tuneIPv6(a.Config.IPv6Conf, cands)
		a.restoreIPv6 = restore
		// On the path of every boot: a console line only on failure.
		if err != nil {
			a.Log.Step("ipv6conf", t0, err, "")
		} else {
			a.Log.Debugf("ipv6conf: optimistic DAD, no router solicitation delay on %v (%v)", cands, time.Since(t0).Round(100*time.Microsecond))
		}
	}

	// Receivers come from DHCP (option 7, the site options) only when
	// neither the command line nor the board names them.
	fromDHCP := nc.recv.Receivers == nil && (nc.recv.ReceiverDHCP || len(b.Receivers) == 0)

	vlan := b.VLAN
	if vlan != 0 {
		t0 = time.Now()
		err := a.loadModuleOnDemand(boards.ModuleVLAN)
		if a.Log.Step("vlan", t0, err, "802.1Q VLAN %d: DHCP and netconsole on %s", vlan, vlanNames(cands, vlan)) != nil {
			// Not untagged instead: on a trunk that is another network.
			a.Log.Errorf("vlan: no VLAN %d, so no network: nothing is sent untagged on %v", vlan, cands)
			return nil, orHost(host, macHost(cands[0]))
		}
	}

	t0 = time.Now()
	lease, v6, c2l, err := a.bringup(ctx, b, cands, nc.ip, vlan, fromDHCP)
	step := "dhcp"
	switch nc.ip.Method {
	case link.IPStatic:
		step = "static"
	case link.IPAuto6:
		step = "ipv6"
	}
	ifname := cands[0]
	if lease != nil {
		ifname = lease.Interface
	}
	desc := lease.String()
	if v6 != nil {
		desc = fmt.Sprintf("%s on %s (%s)", v6.prefix, ifname, v6.how)
	}
	if a.Log.Step(step, t0, err, "%s (first of %d candidates; carrier_to_lease=%v)", desc, len(cands), c2l.Round(100*time.Microsecond)) != nil {
		return nil, orHost(host, macHost(ifname))
	}
	tLease := time.Now()
	t0 = tLease
	if v6 == nil && a.Log.Step("address", t0, link.Apply(lease), "%s on %s router=%v mtu=%d routes=%d", lease.Address.String(), ifname, lease.Router, lease.MTU, len(lease.Routes)) != nil {
		return nil, orHost(host, macHost(ifname))
	}
	if host == "" {
		host = leaseHost(lease.Hostname)
	}
	host = orHost(host, macHost(ifname))

	t0 = time.Now()
	recvs, why, err := chooseReceivers(nc.recv, b, lease)
	// With receiver.dhcp6_option, DHCP-sourced receivers also come from
	// DHCPv6: the receiver step waits for the ipv6 step.
	want6 := b.ReceiverOption6 != 0 && fromDHCP
	if !want6 && a.Log.Step("receiver", t0, err, "%v from %s", recvs, why) != nil {
		return nil, host
	}

	m := &armer{
		Hops: kernelRoutes{},
		MACs: resolverFunc(func(ctx context.Context, hop nexthop.Hop) (net.HardwareAddr, error) {
			return a.resolve(ctx, hop, b.ARPTimeout)
		}),
		Targets:  target.Configfs{Root: filepath.Join(a.Config.ConfigfsMount, "netconsole")},
		Reload:   a.reloadNetconsole,
		Announce: func(t target.Target, hop nexthop.Hop) { a.announce(host, bootID, t, hop) },
		Log:      a.Log,
		Host:     host,
		Boot:     bootID,
		Lease:    tLease,
		Reply:    replySender{Dev: lease.Interface, From: lease.ReplyFrom, MAC: lease.ReplyMAC},
	}
	m.Dynamic = target.Configfs{Root: filepath.Join(a.Config.ConfigfsMount, "netconsole")}.Dynamic()

	// IPv4 receivers are armed before the IPv6 step, which may take
	// seconds (SLAAC, DHCPv6), or all of ipv6Wait on a network without
	// IPv6; the IPv6 ones (and DHCPv6's) follow.
	early := map[int]bool{}
	if v6 == nil && (want6 || hasIPv6(recvs)) && err == nil {
		if want6 && len(recvs) > 0 {
			a.Log.Step("receiver", t0, nil, "%v from %s (armed now; DHCPv6 option %d may add IPv6 receivers)", recvs, why, b.ReceiverOption6)
		}
		for i, r := range recvs {
			if r.Addr().Is4() {
				m.Arm(ctx, r)
				early[i] = true
			}
		}
	}

	switch {
	case v6 != nil: // ip=auto6: the bring-up's IPv6 address
		m.Src6 = v6.prefix.Addr()
		if want6 {
			recvs, why, err = addReceivers6(nc.recv, b, recvs, why, err, v6.lease)
			if a.Log.Step("receiver", t0, err, "%v from %s", recvs, why) != nil {
				return m.Finish(ctx), host
			}
		}
	case hasIPv6(recvs) || want6:
		t6 := time.Now()
		p, l6, how, err6 := a.ipv6(b, want6).Address(ctx, ifname, want6)
		if a.Log.Step("ipv6", t6, err6, "%s on %s (%s)", p, ifname, how) == nil {
			m.Src6 = p.Addr()
		}
		if want6 {
			recvs, why, err = addReceivers6(nc.recv, b, recvs, why, err, l6)
			if a.Log.Step("receiver", t0, err, "%v from %s", recvs, why) != nil {
				return m.Finish(ctx), host
			}
		}
	}

	for i, r := range recvs {
		if !early[i] {
			m.Arm(ctx, r)
		}
	}
	return m.Finish(ctx), host
}

// solicitRouters sends up to three router solicitations on ifname (RFC
// 4861's MAX_RTR_SOLICITATIONS) as soon as the kernel reports the link
// operationally up, which is when IPv6 starts on it (up to a second after
// carrier: the kernel batches link state changes); then 0.25 s and 1 s
// later. Routers that advertise only on request then answer without
// waiting for the kernel's own solicitation, sent only after duplicate
// address detection of the link-local address (another second).
func (a *agent) solicitRouters(ctx context.Context, ifname string) {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return
	}
	oper := filepath.Join(a.Config.SysClassNet, ifname, "operstate")
	for {
		// "unknown": drivers that do not report operational state.
		if b, _ := os.ReadFile(oper); strings.TrimSpace(string(b)) == "up" || strings.TrimSpace(string(b)) == "unknown" {
			break
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(10 * time.Millisecond):
		}
	}
	for i, wait := range []time.Duration{250 * time.Millisecond, 750 * time.Millisecond, 0} {
		err := nexthop.SolicitRouters(ifi)
		a.Log.Debugf("ipv6: router solicitation %d on %s: %v", i+1, ifname, err)
		if wait == 0 {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// loadModuleOnDemand loads one of the image's on-demand modules (board
// key modules.ondemand) unless the kernel already has it.
func (a *agent) loadModuleOnDemand(name string) error {
	if _, err := os.Stat(filepath.Join(a.Config.SysModule, name)); err == nil {
		return nil // loaded before, or built in
	}
	if err := a.loadModule(name, ""); err != nil {
		return fmt.Errorf("module %s (is it in the board's modules.ondemand?): %w", name, err)
	}
	return nil
}

// vlanNames lists the VLAN interfaces the candidates will get.
func vlanNames(cands []string, id int) string {
	out := make([]string, len(cands))
	for i, c := range cands {
		out[i] = link.VLANName(c, id) + " on " + c
	}
	return "[" + strings.Join(out, ", ") + "]"
}

// announce writes the line that is the first to travel through a new
// target; the collector binds the stream to host and boot from it.
func (a *agent) announce(host, bootID string, t target.Target, hop nexthop.Hop) {
	a.Log.Logf(levelNotice, "%s", announce.Format(announce.Announcement{Host: host, Boot: bootID, Fields: []announce.Field{
		{Key: "dev", Value: t.Dev},
		{Key: "local", Value: t.LocalIP.String()},
		{Key: "remote", Value: netip.AddrPortFrom(t.RemoteIP, uint16(t.RemotePort)).String()},
		{Key: "mac", Value: t.RemoteMAC.String()},
		{Key: "via", Value: fmt.Sprint(hop.Via)},
		{Key: "since_init", Value: time.Since(a.start).Round(time.Millisecond).String()},
	}}))
}

// reloadNetconsole unloads netconsole (loaded without targets) and loads it
// again with param.
func (a *agent) reloadNetconsole(param string) error {
	if err := unix.DeleteModule("netconsole", 0); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unload netconsole: %w", err)
	}
	return a.loadModule("netconsole", param)
}

// v6Result is an IPv6-only bring-up's outcome (ip=auto6).
type v6Result struct {
	prefix netip.Prefix
	lease  *link.Lease6 // nil unless DHCPv6 gave one
	how    string
}

// bringup tries every candidate at once (link up, carrier, then DHCP, the
// static ip= configuration, or for ip=auto6 an IPv6 address from SLAAC or
// DHCPv6) under the board's DHCP deadline and returns the first lease
// (for auto6 an IPv4-less one naming the interface, and the IPv6 result)
// and how long it took from carrier to lease on that NIC.
//
// With a VLAN ID (not 0), each candidate gets its VLAN interface once it has
// carrier, and DHCP (or the static address) goes there: the lease names the
// VLAN interface.
func (a *agent) bringup(ctx context.Context, b *boards.Board, cands []string, ipc link.IPConfig, vlan int, fromDHCP bool) (*link.Lease, *v6Result, time.Duration, error) {
	dctx, cancel := context.WithTimeout(ctx, b.DHCPTimeout)
	defer cancel()
	var (
		mu      sync.Mutex
		carrier = map[string]time.Time{} // DHCP starts right after carrier
		leased  = map[string]time.Time{}
		v6      = map[string]*v6Result{}
	)
	get := func(ctx context.Context, ifname string) (*link.Lease, error) {
		tc := time.Now()
		if vlan != 0 {
			name := "" // ours (link.VLANName), unless dracut's vlan= named it
			if b.VLANName != "" && ifname == b.VLANParent {
				name = b.VLANName
			}
			dev, err := link.AddVLAN(ifname, vlan, name)
			if err != nil {
				return nil, err
			}
			a.vlanMu.Lock()
			a.vlanDevs = append(a.vlanDevs, dev)
			a.vlanMu.Unlock()
			a.Log.Infof("vlan: %s is VLAN %d on %s (%v)", dev, vlan, ifname, time.Since(tc).Round(100*time.Microsecond))
			ifname = dev
		}
		mu.Lock()
		carrier[ifname] = tc
		mu.Unlock()
		var (
			l   *link.Lease
			err error
		)
		switch ipc.Method {
		case link.IPStatic:
			s := *ipc.Static
			s.Interface = ifname
			l = &s
		case link.IPAuto6:
			var r v6Result
			r.prefix, r.lease, r.how, err = a.ipv6(b, fromDHCP && b.ReceiverOption6 != 0).Address(ctx, ifname, fromDHCP && b.ReceiverOption6 != 0)
			if err == nil {
				l = &link.Lease{Interface: ifname}
				mu.Lock()
				v6[ifname] = &r
				mu.Unlock()
			}
		default:
			opts := []link.DHCPOption{link.WithLogf(a.Log.Debugf)}
			if fromDHCP {
				opts = append(opts, link.WithLogServerOption(uint8(b.ReceiverOption)))
			}
			l, err = link.DHCP(ctx, ifname, opts...)
		}
		mu.Lock()
		leased[ifname] = time.Now()
		mu.Unlock()
		return l, err
	}
	br := link.Bringup{SysClassNet: a.Config.SysClassNet, Logf: a.Log.Infof}
	l, err := br.FirstLease(dctx, cands, get)
	if err != nil {
		return nil, nil, 0, err
	}
	mu.Lock()
	defer mu.Unlock()
	return l, v6[l.Interface], leased[l.Interface].Sub(carrier[l.Interface]), nil
}

// describeNICs lists interfaces with their MAC and driver, e.g.
// "eth0(52:54:00:12:34:56 virtio_net)".
func describeNICs(sysClassNet string, names []string) string {
	var out []string
	for _, n := range names {
		mac := "?"
		if ifi, err := net.InterfaceByName(n); err == nil && len(ifi.HardwareAddr) > 0 {
			mac = ifi.HardwareAddr.String()
		}
		drv := "?"
		if p, err := os.Readlink(filepath.Join(sysClassNet, n, "device", "driver")); err == nil {
			drv = filepath.Base(p)
		}
		out = append(out, fmt.Sprintf("%s(%s %s)", n, mac, drv))
	}
	return "[" + strings.Join(out, " ") + "]"
}

// resolve finds the MAC of the next hop: ARP (RFC 826) for IPv4, neighbor
// solicitations (RFC 4861) for IPv6, with the same retries and deadline. It
// returns at the first answer, so that netconsole is armed without waiting;
// the resolver keeps listening for arpLinger afterwards in the background
// and logs a second MAC answering for the address (the target keeps the
// first, as before).
func (a *agent) resolve(ctx context.Context, hop nexthop.Hop, timeout time.Duration) (net.HardwareAddr, error) {
	ifi, err := net.InterfaceByName(hop.Dev)
	if err != nil {
		return nil, err
	}
	proto := "arp"
	if hop.Via.Is6() {
		proto = "ndp"
	}
	var (
		run     func(ctx context.Context, r nexthop.Resolver) (net.HardwareAddr, error)
		closeFn func() error
	)
	if hop.Via.Is6() {
		c, err := nexthop.DialNDP(ifi, hop.Src, hop.Via)
		if err != nil {
			return nil, err
		}
		run = func(ctx context.Context, r nexthop.Resolver) (net.HardwareAddr, error) {
			return r.ResolveNDP(ctx, c, ifi.HardwareAddr, hop.Via)
		}
		closeFn = c.Close
	} else {
		c, err := arp.Dial(ifi)
		if err != nil {
			return nil, fmt.Errorf("arp socket on %s: %w", hop.Dev, err)
		}
		run = func(ctx context.Context, r nexthop.Resolver) (net.HardwareAddr, error) {
			return r.Resolve(ctx, c, hop.Via)
		}
		closeFn = c.Close
	}
	return resolveEarly(ctx, timeout, run, closeFn, nexthop.Resolver{
		Retry:  200 * time.Millisecond,
		Linger: arpLinger,
		OnConflict: func(ip netip.Addr, first, other net.HardwareAddr) {
			a.Log.Logf(levelWarn, "%s: conflict: %s answered by %s and by %s; using the first, %s", proto, ip, first, other, first)
		},
		Logf: a.Log.Infof,
	})
}

// resolveEarly runs r (through run) in a goroutine and returns its first
// answer as soon as it arrives (OnAnswer), or its error; the goroutine goes
// on lingering for conflicting answers within timeout, then calls closeFn.
// ctx bounds only the wait for the first answer: the agent going on must
// not cut the conflict watch short.
func resolveEarly(ctx context.Context, timeout time.Duration, run func(context.Context, nexthop.Resolver) (net.HardwareAddr, error), closeFn func() error, r nexthop.Resolver) (net.HardwareAddr, error) {
	first := make(chan net.HardwareAddr, 1)
	r.OnAnswer = func(mac net.HardwareAddr) { first <- append(net.HardwareAddr(nil), mac...) }
	type result struct {
		mac net.HardwareAddr
		err error
	}
	done := make(chan result, 1)
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	go func() {
		defer cancel()
		defer closeFn()
		mac, err := run(wctx, r)
		done <- result{mac, err}
	}()
	select {
	case mac := <-first:
		return mac, nil
	case res := <-done:
		// No answer (or one that came with the return: take it).
		select {
		case mac := <-first:
			return mac, nil
		default:
		}
		return res.mac, res.err
	case <-ctx.Done():
		cancel()
		return nil, ctx.Err()
	}
}

// leaseHost returns the host name a DHCP lease gives, made one the upload
// protocol and the collector accept (ship.SanitizeHost): a lease naming the
// host "my box" would otherwise make every upload fail with "bad host name"
// and its records never leave. "" if the lease names none.
func leaseHost(name string) string {
	if name == "" {
		return ""
	}
	return ship.SanitizeHost(name)
}
