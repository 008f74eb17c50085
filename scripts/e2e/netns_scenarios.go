package main

// Scenarios whose guest network is not (only) QEMU's user-mode network: a
// second NIC, and taps inside network namespaces this runner creates (a
// bridge, dnsmasq, a router, a collector), so the agent meets a real DHCP
// server, a routed receiver and DHCP option 7. Everything lives in
// anonymous namespaces (netnstest.Create, held by file descriptors): they
// vanish with the runner, and nothing touches this machine's interfaces,
// routes or files outside the scenario's directory.

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/lastgasp/lastgasp/netconsole/link/netnstest"
)

var (
	reCarrierToLease = regexp.MustCompile(`carrier_to_lease=([0-9.]+(?:[µmnu])?s)\)`)
	reLeaseToMAC     = regexp.MustCompile(`lease_to_mac=([0-9.]+(?:[µmnu])?s)`)
	reCandidates     = regexp.MustCompile(`lastgasp: nic: candidates \[([^\]]*)\]`)
	reArmedDev       = regexp.MustCompile(`lastgasp: netconsole armed .* dev=(\S+) `)
)

// stepTimes returns the agent's carrier-to-lease and lease-to-MAC figures
// from the console, for the PASS line.
func stepTimes(serial string) string {
	c2l, l2m := "?", "?"
	if m := reCarrierToLease.FindStringSubmatch(serial); m != nil {
		c2l = m[1]
	}
	if m := reLeaseToMAC.FindStringSubmatch(serial); m != nil {
		l2m = m[1]
	}
	return fmt.Sprintf("carrier->lease=%s lease->mac=%s", c2l, l2m)
}

// nicSecondGetsLease: two NICs; the first (eth0) has carrier but no DHCP
// server (its frames go to a dead loopback UDP port), the second is QEMU's
// user network. All candidates are tried at once: the agent must arm
// netconsole on the second without waiting out the first.
func nicSecondGetsLease(e *Env) (string, error) {
	c, err := e.StartCollector("collector")
	if err != nil {
		return "", err
	}
	const deadMAC, liveMAC = "52:54:00:12:00:01", "52:54:00:12:00:02"
	netArgs := []string{
		"-netdev", fmt.Sprintf("socket,id=dead,udp=127.0.0.1:%d,localaddr=127.0.0.1:%d", freePort("udp"), freePort("udp")),
		"-device", "virtio-net-pci,netdev=dead,romfile=,mac=" + deadMAC,
		"-netdev", "user,id=live",
		"-device", "virtio-net-pci,netdev=live,romfile=,mac=" + liveMAC,
	}
	vm, err := e.Boot("vm", BootOpts{Append: agentArgs(c), NetArgs: netArgs})
	if err != nil {
		return "", err
	}
	if err := c.WaitLog(bootTimeout, "lastgasp: netconsole armed", "mac="+gatewayMAC); err != nil {
		return "", err
	}
	end, err := vm.WaitSerial(bootTimeout, 0, "handoff: rescue shell")
	if err != nil {
		return "", err
	}
	out := vm.Serial()[:end]
	m := reCandidates.FindStringSubmatch(out)
	if m == nil {
		return "", fmt.Errorf("no nic candidates line on the console")
	}
	cands := regexp.MustCompile(`\S+\([^)]*\)`).FindAllString(m[1], -1)
	if len(cands) != 2 {
		return "", fmt.Errorf("want 2 NIC candidates, got %q", m[1])
	}
	name := func(c string) string { n, _, _ := strings.Cut(c, "("); return n }
	if !strings.Contains(cands[0], deadMAC) || !strings.Contains(cands[1], liveMAC) {
		return "", fmt.Errorf("candidates %q: want the NIC without DHCP (%s) first, then %s", m[1], deadMAC, liveMAC)
	}
	dead, live := name(cands[0]), name(cands[1])
	a := reArmedDev.FindStringSubmatch(out)
	if a == nil || a[1] != live {
		return "", fmt.Errorf("netconsole armed on %v, want %s (the NIC with a DHCP server)", a, live)
	}
	if !strings.Contains(out, "link: "+dead+": carrier after") {
		return "", fmt.Errorf("the agent never tried %s (no carrier line for it)", dead)
	}
	return fmt.Sprintf("armed on %s, %s had no server; %s", live, dead, stepTimes(out)), nil
}

// lab is a set of network namespaces for one scenario, torn down by the
// scenario's cleanups (processes first, then the namespaces).
type lab struct {
	e   *Env
	log *bytes.Buffer
}

func newLab(e *Env) (*lab, error) {
	for _, tool := range []string{"ip", "dnsmasq", "qemu-system-x86_64"} {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, fmt.Errorf("prerequisite missing: %s not in PATH (scripts/setup-deps.sh installs iproute2, dnsmasq-base, qemu-system-x86)", tool)
		}
	}
	l := &lab{e: e, log: &bytes.Buffer{}}
	e.cleanups = append(e.cleanups, func() { os.WriteFile(filepath.Join(e.Dir, "lab.log"), l.log.Bytes(), 0o644) })
	return l, nil
}

func (l *lab) ns() (*netnstest.NS, error) {
	n, err := netnstest.Create()
	if err != nil {
		return nil, fmt.Errorf("prerequisite missing: %w (the scenario runs as root in CI)", err)
	}
	l.e.cleanups = append(l.e.cleanups, n.Close)
	return n, nil
}

// sh runs each command line (split on spaces) inside n, in order.
func (l *lab) sh(n *netnstest.NS, lines ...string) error {
	for _, line := range lines {
		f := strings.Fields(line)
		out, err := cmdOutput(n, exec.Command(f[0], f[1:]...))
		fmt.Fprintf(l.log, "$ %s\n%s", line, out)
		if err != nil {
			return fmt.Errorf("in namespace: %s: %v: %s", line, err, strings.TrimSpace(out))
		}
	}
	return nil
}

// start starts a long-running process inside n; the scenario's cleanup
// kills it.
func (l *lab) start(n *netnstest.NS, name string, args ...string) error {
	logf, err := os.Create(filepath.Join(l.e.Dir, name+".log"))
	if err != nil {
		return err
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := n.Do(cmd.Start); err != nil {
		logf.Close()
		return fmt.Errorf("start %s in namespace: %w", name, err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); logf.Close(); close(done) }()
	l.e.cleanups = append(l.e.cleanups, func() { cmd.Process.Kill(); <-done })
	select {
	case <-done:
		b, _ := os.ReadFile(filepath.Join(l.e.Dir, name+".log"))
		return fmt.Errorf("%s exited at once: %s", name, strings.TrimSpace(string(b)))
	case <-time.After(200 * time.Millisecond):
	}
	return nil
}

// forward turns IPv4 forwarding on inside n only: the write is made by a
// child process that runs in n, and /proc/sys/net is per namespace.
func (l *lab) forward(n *netnstest.NS) error {
	const knob = "/proc/sys/net/ipv4/ip_forward"
	before, _ := os.ReadFile(knob)
	cmd := exec.Command("sh", "-c", "echo 1 > "+knob+" && cat "+knob)
	out, err := cmdOutput(n, cmd)
	fmt.Fprintf(l.log, "$ %s\n%s", cmd, out)
	if err != nil || strings.TrimSpace(out) != "1" {
		return fmt.Errorf("in namespace: ip_forward: %v: %q", err, out)
	}
	if after, _ := os.ReadFile(knob); !bytes.Equal(before, after) {
		return fmt.Errorf("ip_forward of this machine's namespace changed (%q -> %q): the write escaped the namespace", before, after)
	}
	return nil
}

func cmdOutput(n *netnstest.NS, cmd *exec.Cmd) (string, error) {
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := n.Do(cmd.Run)
	return out.String(), err
}

// dnsmasq serves DHCP on ifname (which must have an address in the range's
// subnet) inside n, writing no file outside the scenario directory.
func (l *lab) dnsmasq(n *netnstest.NS, ifname, dhcpRange string, options ...string) error {
	args := []string{"dnsmasq", "-d", "--no-ping", "--no-resolv", "--no-hosts", "--leasefile-ro",
		"--pid-file=" + filepath.Join(l.e.Dir, "dnsmasq.pid"), "--conf-file=/dev/null", "--port=0",
		"--user=root", "--group=root", "--log-dhcp",
		"--interface=" + ifname, "--bind-interfaces", "--except-interface=lo",
		"--dhcp-range=" + dhcpRange}
	for _, o := range options {
		args = append(args, "--dhcp-option="+o)
	}
	return l.start(n, "dnsmasq", args...)
}

// collector starts lastgaspd inside n on UDP :6666 (all addresses) and HTTP
// 127.0.0.1:6667 of that namespace, and waits until it answers.
func (l *lab) collector(n *netnstest.NS) (*Collector, error) {
	c := &Collector{UDPPort: 6666, HTTPPort: 6667, Store: filepath.Join(l.e.Dir, "collector-store")}
	if err := l.start(n, "collector", l.e.Collector, "-netconsole", ":6666", "-http", "127.0.0.1:6667", "-store", c.Store); err != nil {
		return nil, err
	}
	err := waitFor(10*time.Second, func() (bool, string) {
		err := n.Do(func() error {
			conn, err := net.DialTimeout("tcp", "127.0.0.1:6667", time.Second)
			if err == nil {
				conn.Close()
			}
			return err
		})
		return err == nil, fmt.Sprintf("collector in its namespace does not answer: %v", err)
	})
	return c, err
}

// bootIn boots the guest with QEMU started from a thread inside n, so that
// its tap device (created in n beforehand) is n's.
func (l *lab) bootIn(n *netnstest.NS, name string, o BootOpts) (*VM, error) {
	var vm *VM
	err := n.Do(func() (err error) {
		vm, err = l.e.Boot(name, o)
		return err
	})
	return vm, err
}

// tapNIC is the guest NIC on tap device ifname.
func tapNIC(ifname, mac string) []string {
	return []string{"-netdev", "tap,id=n0,ifname=" + ifname + ",script=no,downscript=no",
		"-device", "virtio-net-pci,netdev=n0,romfile=,mac=" + mac}
}

// receiverRouted: the receiver is on another subnet, behind a router.
//
//	guest eth0 ── tap0 ─ br0 (lan ns: dnsmasq 192.168.77.2, router option 192.168.77.1)
//	                      └─ lan-rtr ── rtr-lan 192.168.77.1 (router ns, forwarding)
//	                                    rtr-col 10.88.0.1 ── col0 10.88.0.2 (collector ns: lastgaspd :6666)
//
// The agent must pick the gateway's MAC (rtr-lan's): the router only
// forwards frames addressed to it, so frames arriving at the collector prove
// the choice.
func receiverRouted(e *Env) (string, error) {
	l, err := newLab(e)
	if err != nil {
		return "", err
	}
	lan, err := l.ns()
	if err != nil {
		return "", err
	}
	rtr, err := l.ns()
	if err != nil {
		return "", err
	}
	col, err := l.ns()
	if err != nil {
		return "", err
	}
	if err := netnstest.AddVeth(lan, "lan-rtr", rtr, "rtr-lan"); err != nil {
		return "", err
	}
	if err := netnstest.AddVeth(rtr, "rtr-col", col, "col0"); err != nil {
		return "", err
	}
	if err := l.sh(lan,
		"ip link add br0 type bridge",
		"ip tuntap add tap0 mode tap",
		"ip link set tap0 master br0",
		"ip link set lan-rtr master br0",
		"ip addr add 192.168.77.2/24 dev br0",
		"ip link set br0 up",
		"ip link set tap0 up",
	); err != nil {
		return "", err
	}
	if err := l.sh(rtr,
		"ip addr add 192.168.77.1/24 dev rtr-lan",
		"ip addr add 10.88.0.1/24 dev rtr-col",
	); err != nil {
		return "", err
	}
	if err := l.forward(rtr); err != nil {
		return "", err
	}
	if err := l.sh(col,
		"ip link set lo up",
		"ip addr add 10.88.0.2/24 dev col0",
		"ip route add default via 10.88.0.1",
	); err != nil {
		return "", err
	}
	gw, err := rtr.NL.LinkByName("rtr-lan")
	if err != nil {
		return "", err
	}
	gwMAC := gw.Attrs().HardwareAddr.String()
	if err := l.dnsmasq(lan, "br0", "192.168.77.50,192.168.77.99,255.255.255.0,1h", "3,192.168.77.1"); err != nil {
		return "", err
	}
	c, err := l.collector(col)
	if err != nil {
		return "", err
	}
	vm, err := l.bootIn(lan, "vm", BootOpts{
		Append:  "lastgasp.receiver=10.88.0.2:6666 lastgasp.upload=http://10.88.0.2:6667",
		NetArgs: tapNIC("tap0", "52:54:00:77:00:10"),
	})
	if err != nil {
		return "", err
	}
	if err := c.WaitLog(bootTimeout, "lastgasp: netconsole armed", "mac="+gwMAC, "via=192.168.77.1"); err != nil {
		return "", fmt.Errorf("%w (gateway rtr-lan is %s)", err, gwMAC)
	}
	end, err := vm.WaitSerial(bootTimeout, 0, "handoff: rescue shell")
	if err != nil {
		return "", err
	}
	out := vm.Serial()[:end]
	if !strings.Contains(out, "routed: frames carry the gateway's MAC") {
		return "", errors.New("the agent's route line does not say it chose the gateway")
	}
	return fmt.Sprintf("frames reached 10.88.0.2 via gateway 192.168.77.1 mac=%s; %s", gwMAC, stepTimes(out)), nil
}

// receiverDHCPOption7: the receiver comes from DHCP option 7 (RFC 2132 log
// server) only. The image's board names a default receiver (10.0.2.2), so
// the kernel command line says lastgasp.receiver=dhcp: "use option 7, not
// the board's". dnsmasq in the namespace hands out 10.66.0.0/24 with option
// 7 = 10.66.0.1, where lastgaspd listens on the default port 6666.
func receiverDHCPOption7(e *Env) (string, error) {
	return receiverFromDHCP(e, 7)
}

// receiverDHCPSiteOption: as receiverDHCPOption7, but the network's option
// 7 names a syslog server (10.66.0.99, where nothing listens) and the
// receivers are in site-specific option 224, which the kernel command line
// selects (lastgasp.dhcp_option=224; a board says receiver.dhcp_option).
func receiverDHCPSiteOption(e *Env) (string, error) {
	return receiverFromDHCP(e, 224)
}

func receiverFromDHCP(e *Env, code int) (string, error) {
	l, err := newLab(e)
	if err != nil {
		return "", err
	}
	lan, err := l.ns()
	if err != nil {
		return "", err
	}
	if err := l.sh(lan,
		"ip link set lo up",
		"ip link add br0 type bridge",
		"ip tuntap add tap0 mode tap",
		"ip link set tap0 master br0",
		"ip addr add 10.66.0.1/24 dev br0",
		"ip link set br0 up",
		"ip link set tap0 up",
	); err != nil {
		return "", err
	}
	opts := []string{"7,10.66.0.1"}
	args := "lastgasp.receiver=dhcp lastgasp.upload=http://10.66.0.1:6667"
	if code != 7 {
		opts = []string{"7,10.66.0.99", fmt.Sprintf("%d,10.66.0.1", code)}
		args += fmt.Sprintf(" lastgasp.dhcp_option=%d", code)
	}
	if err := l.dnsmasq(lan, "br0", "10.66.0.50,10.66.0.98,255.255.255.0,1h", opts...); err != nil {
		return "", err
	}
	c, err := l.collector(lan)
	if err != nil {
		return "", err
	}
	vm, err := l.bootIn(lan, "vm", BootOpts{
		Append:  args,
		NetArgs: tapNIC("tap0", "52:54:00:66:00:10"),
	})
	if err != nil {
		return "", err
	}
	if err := c.WaitLog(bootTimeout, "lastgasp: netconsole armed", "remote=10.66.0.1:6666"); err != nil {
		return "", err
	}
	end, err := vm.WaitSerial(bootTimeout, 0, "handoff: rescue shell")
	if err != nil {
		return "", err
	}
	out := vm.Serial()[:end]
	if want := fmt.Sprintf("receiver: [10.66.0.1:6666] from DHCP option %d", code); !strings.Contains(out, want) {
		return "", fmt.Errorf("the agent's receiver line does not say %q", want)
	}
	if strings.Contains(out, "remote=10.0.2.2") || strings.Contains(out, "remote=10.66.0.99") {
		return "", errors.New("the agent also armed the board's receiver 10.0.2.2 or option 7's 10.66.0.99")
	}
	return fmt.Sprintf("receiver 10.66.0.1:6666 from option %d; %s", code, stepTimes(out)), nil
}

// ipStatic: the kernel's own ip= argument with a client address: the agent
// applies it instead of running DHCP (QEMU's user network answers ARP for
// 10.0.2.2 whether or not the guest asked for a lease), and takes the host
// name from it.
func ipStatic(e *Env) (string, error) {
	c, err := e.StartCollector("collector")
	if err != nil {
		return "", err
	}
	vm, err := e.Boot("vm", BootOpts{Append: agentArgs(c, "ip=10.0.2.15::10.0.2.2:255.255.255.0:box-static:eth0:off")})
	if err != nil {
		return "", err
	}
	if err := c.WaitLog(bootTimeout, "lastgasp: netconsole armed host=box-static ", "mac="+gatewayMAC); err != nil {
		return "", err
	}
	end, err := vm.WaitSerial(bootTimeout, 0, "handoff: rescue shell")
	if err != nil {
		return "", err
	}
	out := vm.Serial()[:end]
	if !strings.Contains(out, "lastgasp: ipconfig: static 10.0.2.15/24 gw 10.0.2.2 on eth0") || !strings.Contains(out, "lastgasp: static: eth0 addr=10.0.2.15/24") {
		return "", errors.New("no static ipconfig/static step lines on the console")
	}
	if strings.Contains(out, "lastgasp: dhcp") {
		return "", errors.New("the agent ran DHCP despite a static ip=")
	}
	return stepTimes(out), nil
}
