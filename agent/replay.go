package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/lastgasp/lastgasp/netconsole/replay"
)

// replayKmsg sends every receiver the kernel log from its first record:
// a netconsole target created through configfs does not replay the printk
// buffer, so without this the collector's log of a boot would start at the
// agent's "target enabled" line (seq ~391 on the QEMU board). It runs once
// the targets are armed (and announced), so the collector already knows the
// sender's host and boot and takes the replayed records, which are older, as
// that boot's backfill. Records sent live as well are dropped there by
// sequence number.
//
// Transport: UDP from each target's own local_ip:local_port, like the
// kernel: the collector sees the same sender (one identity, one boot, one
// sequence), nothing else has to be configured, and a collector without
// the upload path still gets it. What UDP loses is a counted gap, as it is
// for the kernel's own datagrams.
func (a *agent) replayKmsg(ctx context.Context, targets []armed) {
	if len(targets) == 0 {
		return
	}
	t0 := time.Now()
	dests, closeAll, err := replayDests(targets, kernelRelease())
	defer closeAll()
	if len(dests) == 0 {
		a.Log.Step("replay", t0, err, "")
		return
	}
	src, oerr := replay.OpenKmsg(a.Config.Kmsg)
	if oerr != nil {
		a.Log.Step("replay", t0, errors.Join(err, oerr), "")
		return
	}
	defer src.Close()
	res, rerr := replay.Run(ctx, src, dests, replay.Config{})
	err = errors.Join(err, rerr)
	if err != nil && res.Datagrams == 0 {
		a.Log.Step("replay", t0, err, "")
		return
	}
	warn := ""
	if err != nil {
		warn = fmt.Sprintf("; %d datagrams not sent: %v", res.SendErrors, err)
	}
	a.Log.Step("replay", t0, nil, "kernel log seq=%d-%d (%d records, %d overwritten before they could be read, %d malformed) sent to %d receivers as %d datagrams%s",
		res.First, res.Last, res.Records, res.Overwritten, res.Malformed, len(dests), res.Datagrams, warn)
}

// replayDests opens one UDP socket per distinct local address of the
// armed targets, bound to it (netpoll does not use the socket table, so the
// kernel's port is free for user space), and returns a destination per
// target. The error names the targets that could not be served.
func replayDests(targets []armed, release string) ([]replay.Dest, func(), error) {
	conns := map[netip.AddrPort]*net.UDPConn{}
	closeAll := func() {
		for _, c := range conns {
			c.Close()
		}
	}
	var dests []replay.Dest
	var errs []error
	for _, t := range targets {
		tg := t.target
		if !tg.Extended {
			continue // a plain target's receiver would not take the records' headers
		}
		local := netip.AddrPortFrom(tg.LocalIP, uint16(tg.LocalPort))
		c := conns[local]
		if c == nil {
			var err error
			c, err = net.ListenUDP("udp", net.UDPAddrFromAddrPort(local))
			if err != nil {
				errs = append(errs, fmt.Errorf("target %s: socket on %v: %w", tg.Name, local, err))
				continue
			}
			conns[local] = c
		}
		d := replay.Dest{Conn: c, To: net.UDPAddrFromAddrPort(netip.AddrPortFrom(tg.RemoteIP, uint16(tg.RemotePort)))}
		if tg.Release {
			d.Release = release
		}
		d.Userdata = userdataLines(tg.Userdata)
		dests = append(dests, d)
	}
	return dests, closeAll, errors.Join(errs...)
}

// userdataLines formats a target's userdata as the kernel appends it to
// every extended message: " key=value\n" per entry, here in name order
// (the kernel's is its entries' creation order; receivers read them as a
// set).
func userdataLines(ud map[string]string) string {
	keys := make([]string, 0, len(ud))
	for k := range ud {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(" " + k + "=" + ud[k] + "\n")
	}
	return b.String()
}
