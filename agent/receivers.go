package agent

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/lastgasp/lastgasp/boards"
	"github.com/lastgasp/lastgasp/netconsole/link"
)

// receiverPlan decides which receivers get a netconsole target, in the
// documented precedence: the kernel command line (lastgasp.receiver=), then
// the board file, then the DHCP lease (option 7, RFC 2132, or the board's
// site option; with receiver.dhcp6_option also the DHCPv6 lease's).
// It is pure: the leases are its input.
type receiverPlan struct {
	Args  boards.Cmdline // where the receivers came from
	Board *boards.Board  // with the command line's overrides applied
}

// FromDHCP reports whether the receivers come from the leases: neither the
// command line nor the board names them, or lastgasp.receiver=dhcp. Only
// then does DHCP ask for the log server option.
func (r receiverPlan) FromDHCP() bool {
	return r.Args.Receivers == nil && (r.Args.ReceiverDHCP || len(r.Board.Receivers) == 0)
}

// Want6 reports whether DHCPv6 may add receivers (receiver.dhcp6_option),
// so that the receiver step waits for the IPv6 step.
func (r receiverPlan) Want6() bool { return r.Board.ReceiverOption6 != 0 && r.FromDHCP() }

// Choose picks the receivers given the DHCPv4 lease (nil or static: no
// option 7). why says which source won and what it overrode.
func (r receiverPlan) Choose(l *link.Lease) ([]netip.AddrPort, string, error) {
	return chooseReceivers(r.Args, r.Board, l)
}

// Add6 adds the receivers of the DHCPv6 lease l6 (nil if none) to the
// result of Choose.
func (r receiverPlan) Add6(recvs []netip.AddrPort, why string, err error, l6 *link.Lease6) ([]netip.AddrPort, string, error) {
	return addReceivers6(r.Args, r.Board, recvs, why, err, l6)
}

// addReceivers6 adds the IPv6 receivers of a DHCPv6 lease's receiver
// option to the DHCPv4-sourced ones (recvs, why, err from chooseReceivers):
// several receivers, several targets. The port is lastgasp.receiver=dhcp's
// or DefaultReceiverPort.
func addReceivers6(c boards.Cmdline, b *boards.Board, recvs []netip.AddrPort, why string, err error, l6 *link.Lease6) ([]netip.AddrPort, string, error) {
	port := c.ReceiverDHCPPort
	if port == 0 {
		port = boards.DefaultReceiverPort
	}
	var v6 []netip.AddrPort
	if l6 != nil {
		for _, ip := range l6.LogServers {
			v6 = append(v6, netip.AddrPortFrom(ip, uint16(port)))
		}
	}
	if len(v6) == 0 {
		bad := ""
		if l6 != nil && l6.LogServersErr != nil {
			bad = fmt.Sprintf(" (ignored: %v)", l6.LogServersErr)
		}
		if err != nil {
			return nil, "", fmt.Errorf("%w; and no DHCPv6 option %d%s", err, b.ReceiverOption6, bad)
		}
		return recvs, why + fmt.Sprintf("; no DHCPv6 option %d%s", b.ReceiverOption6, bad), nil
	}
	src := fmt.Sprintf("DHCPv6 option %d of the lease from %s (port %d)", b.ReceiverOption6, l6.ServerID, port)
	if err != nil || len(recvs) == 0 {
		return v6, src, nil
	}
	return append(recvs, v6...), why + " and " + src, nil
}

// chooseReceivers picks the receivers in the documented precedence: the
// kernel command line (lastgasp.receiver=), then the board file, then the
// lease's DHCP option 7 log servers (RFC 2132) on DefaultReceiverPort.
// lastgasp.receiver=dhcp[:port] skips the board and asks for option 7.
// why says which source won and what it overrode.
func chooseReceivers(c boards.Cmdline, b *boards.Board, l *link.Lease) (rs []netip.AddrPort, why string, err error) {
	var opt7 []net.IP
	code := uint8(7) // the option the log servers came from
	if l != nil {
		opt7 = l.LogServers
		if l.LogServerOption != 0 {
			code = l.LogServerOption
		}
	}
	fromOpt7 := func(port int) []netip.AddrPort {
		var out []netip.AddrPort
		for _, ip := range opt7 {
			if a, ok := netip.AddrFromSlice(ip); ok {
				out = append(out, netip.AddrPortFrom(a.Unmap(), uint16(port)))
			}
		}
		return out
	}
	ignored := ""
	if len(opt7) > 0 {
		ignored = fmt.Sprintf("; DHCP option %d %v not used", code, opt7)
	}
	switch {
	case c.ReceiverDHCP:
		port := c.ReceiverDHCPPort
		if port == 0 {
			port = boards.DefaultReceiverPort
		}
		rs = fromOpt7(port)
		if len(rs) == 0 {
			return nil, "", fmt.Errorf("lastgasp.receiver=dhcp, but the lease from %v carries no DHCP option %d (log server)%s", serverOf(l), code, logServersErr(l))
		}
		return rs, fmt.Sprintf("DHCP option %d of the lease from %v (lastgasp.receiver=dhcp; board receivers ignored; port %d)", code, serverOf(l), port), nil
	case len(b.Receivers) > 0:
		for _, r := range b.Receivers {
			ua, err := boards.ParseReceiver(r)
			if err != nil {
				return nil, "", err // validated with the board: not reached
			}
			rs = append(rs, ua.AddrPort())
		}
		for i := range rs {
			rs[i] = netip.AddrPortFrom(rs[i].Addr().Unmap(), rs[i].Port())
		}
		if c.Receivers != nil {
			return rs, "the kernel command line (lastgasp.receiver=; board receivers ignored" + ignored + ")", nil
		}
		return rs, "the board file (no lastgasp.receiver=" + ignored + ")", nil
	}
	rs = fromOpt7(boards.DefaultReceiverPort)
	if len(rs) == 0 {
		return nil, "", fmt.Errorf("no receiver: none on the kernel command line, none in the board, and the lease carries no DHCP option %d (log server)%s", code, logServersErr(l))
	}
	return rs, fmt.Sprintf("DHCP option %d of the lease from %v (no receiver on the command line or in the board; port %d)", code, serverOf(l), boards.DefaultReceiverPort), nil
}

// logServersErr reports a malformed log server option of l, for the
// "no receiver" errors.
func logServersErr(l *link.Lease) string {
	if l == nil || l.LogServersErr == nil {
		return ""
	}
	return fmt.Sprintf(" (ignored: %v)", l.LogServersErr)
}

func serverOf(l *link.Lease) string {
	if l == nil || l.ServerID == nil {
		return "?"
	}
	return l.ServerID.String()
}

func hasIPv6(rs []netip.AddrPort) bool {
	for _, r := range rs {
		if r.Addr().Is6() {
			return true
		}
	}
	return false
}
