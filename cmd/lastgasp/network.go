package main

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"time"

	"github.com/lastgasp/lastgasp/boards"
	"github.com/lastgasp/lastgasp/netconsole/link"
	"github.com/lastgasp/lastgasp/netconsole/nexthop"
	"github.com/lastgasp/lastgasp/netconsole/target"
	"github.com/mdlayher/arp"
)

// network brings a NIC up and arms one netconsole target per receiver.
// It returns the armed targets and the host name it announced.
func (a *Agent) network(ctx context.Context, b *boards.Board, bootID string) ([]armed, string) {
	host := b.Host
	t0 := time.Now()
	cands, err := link.WaitCandidates(a.Config.SysClassNet, b.NIC, 3*time.Second)
	if a.Log.Step("nic", t0, err, "candidates %v", cands) != nil {
		return nil, orHost(host, "unknown")
	}
	ifname := cands[0]
	t0 = time.Now()
	if err := link.Up(ifname); err != nil {
		a.Log.Step("link", t0, err, "")
		return nil, orHost(host, "unknown")
	}
	dctx, cancel := context.WithTimeout(ctx, b.DHCPTimeout)
	lease, err := link.DHCP(dctx, ifname)
	cancel()
	if a.Log.Step("dhcp", t0, err, "%s", lease) != nil {
		return nil, orHost(host, macHost(ifname))
	}
	t0 = time.Now()
	if a.Log.Step("address", t0, link.Apply(lease), "%s on %s", lease.Address.String(), ifname) != nil {
		return nil, orHost(host, macHost(ifname))
	}
	if host == "" && lease.Hostname != "" {
		host = lease.Hostname
	}
	host = orHost(host, macHost(ifname))

	var out []armed
	for i, r := range b.Receivers {
		ua, _ := boards.ParseReceiver(r) // validated with the board
		rip, _ := netip.AddrFromSlice(ua.IP)
		rip = rip.Unmap()
		t0 = time.Now()
		hop, err := nexthop.Lookup(rip)
		if a.Log.Step("route", t0, err, "%s", hop) != nil {
			continue
		}
		t0 = time.Now()
		mac, err := a.resolve(ctx, hop, b.ARPTimeout)
		if a.Log.Step("arp", t0, err, "%s is at %s", hop.Via, mac) != nil {
			continue
		}
		t := target.Target{
			Name: fmt.Sprintf("lastgasp%d", i), Dev: hop.Dev, LocalIP: hop.Src, LocalPort: 6665,
			RemoteIP: rip, RemotePort: ua.Port, RemoteMAC: mac, Extended: true,
		}
		t0 = time.Now()
		err = target.Create(filepath.Join(a.Config.ConfigfsMount, "netconsole"), t)
		if a.Log.Step("netconsole", t0, err, "target %s enabled: %s", t.Name, t.Param()) != nil {
			continue
		}
		// This line is the first to travel through the new target; the
		// collector binds the stream to host and boot from it.
		a.Log.Logf(LevelNotice, "netconsole armed host=%s boot=%s dev=%s local=%s remote=%s:%d mac=%s via=%s since_init=%v",
			host, bootID, t.Dev, t.LocalIP, t.RemoteIP, t.RemotePort, t.RemoteMAC, hop.Via, time.Since(a.start).Round(time.Millisecond))
		out = append(out, armed{target: t, hop: hop})
	}
	return out, host
}

func (a *Agent) resolve(ctx context.Context, hop nexthop.Hop, timeout time.Duration) (net.HardwareAddr, error) {
	ifi, err := net.InterfaceByName(hop.Dev)
	if err != nil {
		return nil, err
	}
	c, err := arp.Dial(ifi)
	if err != nil {
		return nil, fmt.Errorf("arp socket on %s: %w", hop.Dev, err)
	}
	defer c.Close()
	actx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return nexthop.Resolve(actx, c, hop.Via, 200*time.Millisecond)
}
