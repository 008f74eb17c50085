package main

// IPv6 receivers: the guest gets its IPv6 address by SLAAC (the kernel's
// own, from router advertisements) or DHCPv6, the agent resolves the next
// hop with a neighbor solicitation and arms netconsole with IPv6 addresses.
// The network is a tap in a namespace this runner creates (see
// netns_scenarios.go).

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
)

var reNDPStep = regexp.MustCompile(`lastgasp: ndp: (\S+) is at (\S+) `)

// lan6 is an IPv6 lab: a namespace with bridge br (the given addresses, no
// duplicate address detection, so dnsmasq can advertise at once), tap0 on
// it for the guest, dnsmasq serving it with the given ranges and options,
// and lastgaspd listening on :6666.
type lan6 struct {
	vmNS  func(name string, o BootOpts) (*VM, error)
	c     *Collector
	brMAC string
}

func newLAN6(e *Env, br string, addrs []string, dnsmasqArgs ...string) (*lan6, error) {
	l, err := newLab(e)
	if err != nil {
		return nil, err
	}
	lan, err := l.ns()
	if err != nil {
		return nil, err
	}
	if err := l.sh(lan,
		"ip link set lo up",
		"ip link add "+br+" type bridge",
	); err != nil {
		return nil, err
	}
	// /proc/sys/net is per namespace; the write is made by a child
	// running in lan. br is a name this machine has not, so a write that
	// escaped the namespace would fail.
	knob := "/proc/sys/net/ipv6/conf/" + br + "/accept_dad"
	if _, err := os.Stat(knob); err == nil {
		return nil, fmt.Errorf("%s exists outside the lab namespace; refusing to touch it", knob)
	}
	cmd := exec.Command("sh", "-c", "echo 0 > "+knob+" && cat "+knob)
	out, err := cmdOutput(lan, cmd)
	fmt.Fprintf(l.log, "$ %s\n%s", cmd, out)
	if err != nil || strings.TrimSpace(out) != "0" {
		return nil, fmt.Errorf("in namespace: %s: %v: %q", knob, err, out)
	}
	lines := []string{"ip tuntap add tap0 mode tap", "ip link set tap0 master " + br}
	for _, a := range addrs {
		if strings.Contains(a, ":") {
			lines = append(lines, "ip addr add "+a+" dev "+br+" nodad")
		} else {
			lines = append(lines, "ip addr add "+a+" dev "+br)
		}
	}
	if err := l.sh(lan, append(lines, "ip link set "+br+" up", "ip link set tap0 up")...); err != nil {
		return nil, err
	}
	brl, err := lan.NL.LinkByName(br)
	if err != nil {
		return nil, err
	}
	args := append([]string{"dnsmasq", "-d", "--no-ping", "--no-resolv", "--no-hosts", "--leasefile-ro",
		"--pid-file=" + filepath.Join(e.Dir, "dnsmasq.pid"), "--conf-file=/dev/null", "--port=0",
		"--user=root", "--group=root", "--log-dhcp",
		"--interface=" + br, "--bind-interfaces", "--except-interface=lo",
		"--enable-ra", "--ra-param=" + br + ",3"}, dnsmasqArgs...)
	if err := l.start(lan, "dnsmasq", args...); err != nil {
		return nil, err
	}
	c, err := l.collector(lan)
	if err != nil {
		return nil, err
	}
	return &lan6{
		c: c, brMAC: brl.Attrs().HardwareAddr.String(),
		vmNS: func(name string, o BootOpts) (*VM, error) { return l.bootIn(lan, name, o) },
	}, nil
}

// boot boots the guest on tap0 with mac and kernel arguments args, waits
// for the armed line with want in it and for the rescue shell, and returns
// the guest console up to there.
func (n *lan6) boot(mac, args string, want ...string) (string, error) {
	vm, err := n.vmNS("vm", BootOpts{Append: args, NetArgs: tapNIC("tap0", mac)})
	if err != nil {
		return "", err
	}
	if err := n.c.WaitLog(bootTimeout, append([]string{"lastgasp: netconsole armed", "mac=" + n.brMAC}, want...)...); err != nil {
		return "", fmt.Errorf("%w (the bridge is %s)", err, n.brMAC)
	}
	end, err := vm.WaitSerial(bootTimeout, 0, "handoff: rescue shell")
	if err != nil {
		return "", err
	}
	return vm.Serial()[:end], nil
}

// receiverIPv6: the collector listens on the bridge's IPv6 address.
//
//	guest eth0 ── tap0 ─ lgbr6 (lan ns: 10.67.0.1/24, fd00:67::1/64;
//	                            dnsmasq: DHCPv4 + RA for fd00:67::/64, SLAAC only;
//	                            lastgaspd on :6666)
//
// The agent gets an IPv4 lease (its NIC bring-up is DHCPv4), waits for the
// kernel's SLAAC address, solicits fd00:67::1 and arms netconsole to
// [fd00:67::1]:6666. The armed line must reach the collector over IPv6 with
// the bridge's MAC.
func receiverIPv6(e *Env) (string, error) {
	n, err := newLAN6(e, "lgbr6", []string{"10.67.0.1/24", "fd00:67::1/64"},
		"--dhcp-range=10.67.0.50,10.67.0.99,255.255.255.0,1h",
		"--dhcp-range=::,constructor:lgbr6,ra-only,64,1h")
	if err != nil {
		return "", err
	}
	out, err := n.boot("52:54:00:67:00:10", "lastgasp.receiver=[fd00:67::1]:6666 lastgasp.upload=http://10.67.0.1:6667",
		"remote=[fd00:67::1]:6666")
	if err != nil {
		return "", err
	}
	m := reNDPStep.FindStringSubmatch(out)
	if m == nil || m[1] != "fd00:67::1" || m[2] != n.brMAC {
		return "", fmt.Errorf("ndp step %q: want fd00:67::1 is at %s", m, n.brMAC)
	}
	a := regexp.MustCompile(`lastgasp: ipv6: (\S+) on`).FindStringSubmatch(out)
	if a == nil || !strings.HasPrefix(a[1], "fd00:67:") {
		return "", errors.New("no ipv6 step line with a SLAAC address in fd00:67::/64 on the console")
	}
	return fmt.Sprintf("armed to [fd00:67::1]:6666 from %s, mac=%s by NDP; %s", a[1], n.brMAC, stepTimes(out)), nil
}

// receiverDHCPv6: a managed IPv6 network. dnsmasq advertises fd00:68::/64
// as on-link but not for SLAAC (stateful DHCPv6: the M flag, no A flag), so
// the guest's only global IPv6 address is the one DHCPv6 leases; the
// receiver is in DHCPv6 option 65001 (DHCPv6 has no standard log server
// option), selected with lastgasp.dhcp6_option=65001 and
// lastgasp.receiver=dhcp. DHCPv4 (bring-up) carries no option 7, so the
// IPv6 receiver is the only one.
//
//	guest eth0 ── tap0 ─ lgbr8 (lan ns: 10.68.0.1/24, fd00:68::1/64; dnsmasq: DHCPv4,
//	                            RA + DHCPv6 fd00:68::100-1ff, option 65001 = fd00:68::1; lastgaspd)
func receiverDHCPv6(e *Env) (string, error) {
	n, err := newLAN6(e, "lgbr8", []string{"10.68.0.1/24", "fd00:68::1/64"},
		"--dhcp-range=10.68.0.50,10.68.0.99,255.255.255.0,1h",
		"--dhcp-range=fd00:68::100,fd00:68::1ff,64,1h",
		"--dhcp-option=option6:65001,[fd00:68::1]")
	if err != nil {
		return "", err
	}
	out, err := n.boot("52:54:00:68:00:10", "lastgasp.receiver=dhcp lastgasp.dhcp6_option=65001 lastgasp.upload=http://10.68.0.1:6667",
		"remote=[fd00:68::1]:6666", "local=fd00:68::1")
	if err != nil {
		return "", err
	}
	a := regexp.MustCompile(`lastgasp: ipv6: (fd00:68::1[0-9a-f]{2})/128 on eth0 \(DHCPv6 from `).FindStringSubmatch(out)
	if a == nil {
		return "", errors.New("no ipv6 step line with a DHCPv6 address from fd00:68::100-1ff on the console")
	}
	if !strings.Contains(out, "receiver: [[fd00:68::1]:6666] from DHCPv6 option 65001") {
		return "", errors.New("the receiver line does not name DHCPv6 option 65001 as the source")
	}
	return fmt.Sprintf("address %s by DHCPv6, receiver [fd00:68::1]:6666 from option 65001, mac=%s; %s", a[1], n.brMAC, stepTimes(out)), nil
}

// receiverIPv6Only: an IPv6-only network (router advertisements for SLAAC,
// no DHCPv4 server at all). With dracut's ip=auto6 the agent skips DHCPv4,
// takes the first usable IPv6 address (SLAAC here; DHCPv6 races it) and
// arms netconsole to the IPv6 receiver.
//
//	guest eth0 ── tap0 ─ lgbr9 (lan ns: fd00:69::1/64 only; dnsmasq: RA, SLAAC; lastgaspd)
func receiverIPv6Only(e *Env) (string, error) {
	n, err := newLAN6(e, "lgbr9", []string{"fd00:69::1/64"}, "--dhcp-range=::,constructor:lgbr9,ra-only,64,1h")
	if err != nil {
		return "", err
	}
	out, err := n.boot("52:54:00:69:00:10", "ip=auto6 lastgasp.receiver=[fd00:69::1]:6666",
		"remote=[fd00:69::1]:6666", "local=fd00:69::5054:ff:fe69:10")
	if err != nil {
		return "", err
	}
	if strings.Contains(out, "lastgasp: dhcp:") {
		return "", errors.New("the agent ran DHCPv4 despite ip=auto6")
	}
	if !strings.Contains(out, "lastgasp: ipv6: fd00:69::5054:ff:fe69:10/64 on eth0 (SLAAC by the kernel") {
		return "", errors.New("no ipv6 bring-up line with the SLAAC address on the console")
	}
	return fmt.Sprintf("no DHCPv4; SLAAC fd00:69::5054:ff:fe69:10, mac=%s; %s", n.brMAC, stepTimes(out)), nil
}

// receiverDHCPv6Stateless: SLAAC for addresses, stateless DHCPv6 for options
// (dnsmasq ra-stateless: the O flag). The server refuses Solicits; the
// agent then asks with an Information-request and takes the receiver from
// option 65001, while the address stays the SLAAC one.
//
//	guest eth0 ── tap0 ─ lgbr10 (lan ns: 10.70.0.1/24, fd00:70::1/64; dnsmasq: DHCPv4,
//	                             RA (SLAAC + other config), DHCPv6 options only; lastgaspd)
func receiverDHCPv6Stateless(e *Env) (string, error) {
	n, err := newLAN6(e, "lgbr10", []string{"10.70.0.1/24", "fd00:70::1/64"},
		"--dhcp-range=10.70.0.50,10.70.0.99,255.255.255.0,1h",
		"--dhcp-range=fd00:70::,ra-stateless,64,1h",
		"--dhcp-option=option6:65001,[fd00:70::1]")
	if err != nil {
		return "", err
	}
	out, err := n.boot("52:54:00:70:00:10", "lastgasp.receiver=dhcp lastgasp.dhcp6_option=65001 lastgasp.upload=http://10.70.0.1:6667",
		"remote=[fd00:70::1]:6666", "local=fd00:70::5054:ff:fe70:10")
	if err != nil {
		return "", err
	}
	if !strings.Contains(out, "(stateless; the address is SLAAC's)") {
		return "", errors.New("no stateless dhcpv6 line on the console")
	}
	if !strings.Contains(out, "receiver: [[fd00:70::1]:6666] from DHCPv6 option 65001") {
		return "", errors.New("the receiver line does not name DHCPv6 option 65001 as the source")
	}
	return fmt.Sprintf("SLAAC address, receiver [fd00:70::1]:6666 from option 65001 by Information-request, mac=%s; %s", n.brMAC, stepTimes(out)), nil
}
