package boards

import (
	"fmt"
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
	// TestPanicMidRun (lastgasp.test_panic=midrun) panics the kernel right
	// after the network stage, in the middle of the agent's run, once: not
	// when the previous boot's ring shows the agent died mid-run. For the
	// pstore-pmsg test only.
	TestPanicMidRun bool
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
	// VLANProblem says why dracut's vlan= argument, meant for other tools
	// too, was not used; it is not an error of ApplyCmdline, so it never
	// costs the lastgasp.* overrides.
	VLANProblem error
}

// ApplyCmdline applies the lastgasp.* arguments of a kernel command line to
// b; the command line wins over the board file. Recognised:
//
//	lastgasp.receiver=ip[:port][,ip[:port]...]  (may repeat; replaces the board's)
//	lastgasp.receiver=dhcp[:port]               (DHCP option 7 instead of the board's)
//	lastgasp.upload=http://host:port[,http://host2:port...]  (tried in order)
//	lastgasp.iface=eth1[,eth2]                  (name patterns; replaces the board's)
//	lastgasp.host=name
//	lastgasp.dhcp_option=N                      (DHCPv4 option with the receivers: 7 or 128-254)
//	lastgasp.dhcp6_option=N|off                 (DHCPv6 option with IPv6 receivers)
//	vlan=<name>:<phys>                          (dracut's; lastgasp.vlan= wins)
//	lastgasp.vlan=ID|off                        (802.1Q VLAN ID 1-4094; replaces the board's)
//	lastgasp.loglevel=0-8
//	lastgasp.test_panic=1
//	lastgasp.efi_max_share=N%                   (EFI variable share of pstore's records)
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
			if _, err := ParseUploads(v); err != nil {
				return c, fmt.Errorf("cmdline %s: %w", f, err)
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
			if !validHost(v) {
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
			c.TestPanicMidRun = v == "midrun"
		default:
			if ok, err := b.efiArg(strings.TrimPrefix(k, "lastgasp."), v); ok {
				if err != nil {
					return c, fmt.Errorf("cmdline %s: %w", f, err)
				}
				continue
			}
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
		name, id, parent, err := ParseDracutVLAN(v)
		if err != nil {
			c.VLANProblem = fmt.Errorf("cmdline vlan=%s: %w", v, err)
			return c, nil
		}
		b.VLAN, b.VLANName, b.VLANParent = id, name, parent
		if ifaces == nil {
			b.NIC = []string{parent}
		}
	}
	return c, nil
}

// ParseDracutVLAN parses dracut's vlan=<vlanname>:<phys> (dracut.cmdline(7)),
// which people booting with dracut already write: the VLAN ID is the
// name's trailing digits, as dracut and NetworkManager read it (eth0.100,
// eth0.0100, vlan100, vlan0100, prod42), and phys becomes the only NIC
// candidate (unless lastgasp.iface= names others). The agent gives the VLAN
// interface that name, so the main system finds the one it expects.
func ParseDracutVLAN(s string) (name string, id int, phys string, err error) {
	name, phys, ok := strings.Cut(s, ":")
	if !ok || phys == "" || strings.ContainsAny(phys, "/ :*?[") || !validIfname(name) {
		return "", 0, "", fmt.Errorf("want <vlanname>:<phys>: %w", ErrInvalid)
	}
	i := len(name)
	for i > 0 && name[i-1] >= '0' && name[i-1] <= '9' {
		i--
	}
	n, err := strconv.Atoi(name[i:])
	if err != nil || n < 1 || n > 4094 {
		return "", 0, "", fmt.Errorf("VLAN name %q: no VLAN ID 1-4094 at its end: %w", name, ErrInvalid)
	}
	return name, n, phys, nil
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
