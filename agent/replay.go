package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
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
		a.Log.Step("replay", t0, err, "no extended target: nothing replayed")
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
	type bound struct {
		local netip.AddrPort
		c     *net.UDPConn
	}
	var conns []bound // a few targets: a slice, not a map
	closeAll := func() {
		for _, b := range conns {
			b.c.Close()
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
		var c *net.UDPConn
		for _, b := range conns {
			if b.local == local {
				c = b.c
			}
		}
		if c == nil {
			var err error
			c, err = net.ListenUDP("udp", net.UDPAddrFromAddrPort(local))
			if err != nil {
				errs = append(errs, fmt.Errorf("target %s: socket on %v: %w", tg.Name, local, err))
				continue
			}
			conns = append(conns, bound{local, c})
		}
		d := replay.Dest{Conn: c, To: net.UDPAddrFromAddrPort(netip.AddrPortFrom(tg.RemoteIP, uint16(tg.RemotePort)))}
		if tg.Release {
			d.Release = release
		}
		// Userdata (host=, boot= on 6.9+) is left out: the collector
		// knows the sender from the live stream's announcement already.
		dests = append(dests, d)
	}
	return dests, closeAll, errors.Join(errs...)
}
