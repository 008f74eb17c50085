package boards

import (
	"fmt"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
)

// Cmdline holds the lastgasp.* arguments of a kernel command line that are
// not board settings.
type Cmdline struct {
	// TestPanic (lastgasp.test_panic=1) makes the agent panic the kernel
	// through sysrq once it has armed everything, but only on a boot that
	// found no crash record, so the boot after the panic ships the record
	// instead of panicking again. For tests only.
	TestPanic bool
	// Receivers are the lastgasp.receiver= addresses in command line order,
	// nil when it names none. ApplyCmdline also puts them in the board's
	// Receivers; this copy tells the agent that the command line chose them.
	Receivers []string
	// ReceiverDHCP (lastgasp.receiver=dhcp or dhcp:PORT) asks for the
	// receivers from the lease's DHCP option 7 (RFC 2132 log servers) and
	// drops the board's. ReceiverDHCPPort is the UDP port for them
	// (DefaultReceiverPort unless given).
	ReceiverDHCP     bool
	ReceiverDHCPPort int
}

// ApplyCmdline applies the lastgasp.* arguments of a kernel command line to
// b; the command line wins over the board file. Recognised:
//
//	lastgasp.receiver=ip[:port][,ip[:port]...]  (may repeat; replaces the board's)
//	lastgasp.receiver=dhcp[:port]               (DHCP option 7 instead of the board's)
//	lastgasp.upload=http://host:port
//	lastgasp.iface=eth1[,eth2]                  (name patterns; replaces the board's)
//	lastgasp.host=name
//	lastgasp.dhcp_option=N                      (DHCPv4 option with the receivers: 7 or 128-254)
//	lastgasp.dhcp6_option=N|off                 (DHCPv6 option with IPv6 receivers)
//	vlan=<name>:<phys>                          (dracut's; lastgasp.vlan= wins)
//	lastgasp.vlan=ID|off                        (802.1Q VLAN ID 1-4094; replaces the board's)
//	lastgasp.loglevel=0-8
//	lastgasp.test_panic=1
//	lastgasp.handoff=, lastgasp.kexec_kernel=, lastgasp.kexec_initrd=,
//	lastgasp.kexec_cmdline=, lastgasp.ignore_loglevel=  (see handoffArg)
//
// Other arguments are ignored; an unknown lastgasp.* key is an error.
func ApplyCmdline(b *Board, cmdline string) (Cmdline, error) {
	var c Cmdline
	var receivers, ifaces []string
	vlanSet := false // lastgasp.vlan= given: it wins over dracut's vlan=
	for _, f := range splitCmdline(cmdline) {
		k, v, _ := strings.Cut(f, "=")
		if !strings.HasPrefix(k, "lastgasp.") {
			continue
		}
		switch strings.TrimPrefix(k, "lastgasp.") {
		case "receiver":
			for _, r := range strings.Split(v, ",") {
				if r == "dhcp" || strings.HasPrefix(r, "dhcp:") {
					port, err := receiverDHCPPort(r)
					if err != nil {
						return c, fmt.Errorf("cmdline %s: %w", f, err)
					}
					c.ReceiverDHCP, c.ReceiverDHCPPort = true, port
					continue
				}
				if _, err := ParseReceiver(r); err != nil {
					return c, fmt.Errorf("cmdline %s: %w", f, err)
				}
				receivers = append(receivers, r)
			}
		case "upload":
			u, err := url.Parse(v)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return c, fmt.Errorf("cmdline %s: want http(s)://host[:port]: %w", f, ErrInvalid)
			}
			b.Upload = v
		case "iface":
			for _, p := range strings.Split(v, ",") {
				if _, err := filepath.Match(p, ""); p == "" || err != nil || strings.ContainsAny(p, "/ ") {
					return c, fmt.Errorf("cmdline %s: bad interface pattern: %w", f, ErrInvalid)
				}
				ifaces = append(ifaces, p)
			}
		case "host":
			if !hostRE.MatchString(v) {
				return c, fmt.Errorf("cmdline %s: want [A-Za-z0-9._-]{1,64}: %w", f, ErrInvalid)
			}
			b.Host = v
		case "dhcp_option":
			n, err := ParseReceiverOption(v)
			if err != nil {
				return c, fmt.Errorf("cmdline %s: %w", f, err)
			}
			b.ReceiverOption = n
		case "dhcp6_option":
			n, err := ParseReceiverOption6(v)
			if err != nil {
				return c, fmt.Errorf("cmdline %s: %w", f, err)
			}
			b.ReceiverOption6 = n
		case "vlan":
			id, err := ParseVLAN(v)
			if err != nil {
				return c, fmt.Errorf("cmdline %s: %w", f, err)
			}
			b.VLAN, vlanSet = id, true
		case "loglevel":
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n > 8 {
				return c, fmt.Errorf("cmdline %s: want 0-8: %w", f, ErrInvalid)
			}
			b.LogLevel = n
		case "test_panic":
			c.TestPanic = v == "1" || v == "" || v == "true"
		default:
			if ok, err := b.handoffArg(strings.TrimPrefix(k, "lastgasp."), v); ok {
				if err != nil {
					return c, fmt.Errorf("cmdline %s: %w", f, err)
				}
				continue
			}
			return c, fmt.Errorf("cmdline %s: unknown lastgasp argument: %w", f, ErrInvalid)
		}
	}
	if c.ReceiverDHCP && receivers != nil {
		return c, fmt.Errorf("cmdline: lastgasp.receiver=dhcp cannot be combined with addresses %v: %w", receivers, ErrInvalid)
	}
	if receivers != nil {
		b.Receivers = receivers
		c.Receivers = receivers
	}
	if c.ReceiverDHCP {
		b.Receivers = nil
	}
	if ifaces != nil {
		b.NIC = ifaces
	}
	if v, ok := KernelArg(cmdline, "vlan"); ok && !vlanSet {
		id, parent, err := ParseDracutVLAN(v)
		if err != nil {
			return c, fmt.Errorf("cmdline vlan=%s: %w", v, err)
		}
		b.VLAN = id
		if ifaces == nil {
			b.NIC = []string{parent}
		}
	}
	return c, nil
}

// ParseDracutVLAN parses dracut's vlan=<vlanname>:<phys> (dracut.cmdline(7)),
// which people booting with dracut already write: the VLAN ID is taken from
// the name in any of vconfig's forms (eth0.100, eth0.0100, vlan100,
// vlan0100) and phys becomes the only NIC candidate (unless
// lastgasp.iface= names others). The agent names the interface itself
// (link.VLANName), which for these forms is usually the same.
func ParseDracutVLAN(s string) (id int, phys string, err error) {
	name, phys, ok := strings.Cut(s, ":")
	if !ok || phys == "" || strings.ContainsAny(phys, "/ :*?[") {
		return 0, "", fmt.Errorf("want <vlanname>:<phys>: %w", ErrInvalid)
	}
	num := name
	if i := strings.LastIndexByte(name, '.'); i >= 0 {
		num = name[i+1:]
	} else if n, ok := strings.CutPrefix(name, "vlan"); ok {
		num = n
	} else {
		return 0, "", fmt.Errorf("VLAN name %q: want <phys>.<id> or vlan<id>: %w", name, ErrInvalid)
	}
	n, err := strconv.Atoi(num)
	if err != nil || num == "" || num[0] == '+' || num[0] == '-' || n < 1 || n > 4094 {
		return 0, "", fmt.Errorf("VLAN name %q: no VLAN ID 1-4094 in it: %w", name, ErrInvalid)
	}
	return n, phys, nil
}

// receiverDHCPPort parses "dhcp" or "dhcp:PORT".
func receiverDHCPPort(s string) (int, error) {
	p, ok := strings.CutPrefix(s, "dhcp:")
	if !ok {
		return DefaultReceiverPort, nil
	}
	n, err := strconv.Atoi(p)
	if err != nil || n < 1 || n > 65535 || p != strconv.Itoa(n) {
		return 0, fmt.Errorf("receiver %q: bad port: %w", s, ErrInvalid)
	}
	return n, nil
}

// KernelArg returns the value of the last key=value argument of a kernel
// command line (the kernel's own ip=, say) and whether there was one.
func KernelArg(cmdline, key string) (string, bool) {
	var (
		val   string
		found bool
	)
	for _, f := range splitCmdline(cmdline) {
		if k, v, ok := strings.Cut(f, "="); ok && k == key {
			val, found = v, true
		}
	}
	return val, found
}

// splitCmdline splits a kernel command line into arguments the way the kernel
// does: on spaces, with double quotes grouping ("a=b c").
func splitCmdline(s string) []string {
	var out []string
	var cur strings.Builder
	inQuote, have := false, false
	for _, r := range s {
		switch {
		case r == '"':
			inQuote = !inQuote
			have = true
		case !inQuote && (r == ' ' || r == '\t' || r == '\n'):
			if have {
				out = append(out, cur.String())
				cur.Reset()
				have = false
			}
		default:
			cur.WriteRune(r)
			have = true
		}
	}
	if have {
		out = append(out, cur.String())
	}
	return out
}
