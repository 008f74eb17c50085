package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// deadNIC is a NIC whose frames go to a loopback UDP port nobody listens
// on: no DHCP server, no ARP answers, nothing leaves this machine.
func deadNIC(device string) []string {
	return []string{"-netdev", fmt.Sprintf("socket,id=n0,udp=127.0.0.1:%d,localaddr=127.0.0.1:%d", freePort("udp"), freePort("udp")),
		"-device", device + ",netdev=n0,romfile="}
}

var reStep = regexp.MustCompile(`lastgasp: (\w+): FAILED after ([0-9.]+)(ms|s): (.*)`)

// dhcpSilent: no DHCP server on the link: one clear error within the
// board's deadline (10 s), then the rescue shell.
func dhcpSilent(e *Env) (string, error) {
	c, err := e.StartCollector("collector")
	if err != nil {
		return "", err
	}
	vm, err := e.Boot("vm", BootOpts{Append: agentArgs(c), NetArgs: deadNIC("virtio-net-pci")})
	if err != nil {
		return "", err
	}
	end, err := vm.WaitSerial(bootTimeout, 0, "handoff: rescue shell")
	if err != nil {
		return "", err
	}
	out := vm.Serial()[:end]
	m := reStep.FindStringSubmatch(out)
	if m == nil || m[1] != "dhcp" || !strings.Contains(m[4], "no DHCP lease") {
		return "", fmt.Errorf("no clear DHCP error line on the console (got %q)", m)
	}
	d, _ := strconv.ParseFloat(m[2], 64)
	if m[3] == "ms" {
		d /= 1000
	}
	if d > 12 {
		return "", fmt.Errorf("DHCP gave up after %.1fs, deadline is 10s", d)
	}
	if strings.Contains(out, "netconsole armed") {
		return "", fmt.Errorf("armed a target without a lease")
	}
	return fmt.Sprintf("gave up after %.1fs", d), nil
}

// arpSilent: the receiver is on-link but nobody answers ARP for it: a clear
// error, no target with a wrong MAC, and crash-record shipping (to another
// address) still works.
func arpSilent(e *Env) (string, error) {
	c, err := e.StartCollector("collector")
	if err != nil {
		return "", err
	}
	vm, err := e.Boot("vm", BootOpts{Append: fmt.Sprintf("lastgasp.receiver=10.0.2.99:%d lastgasp.upload=http://10.0.2.2:%d", c.UDPPort, c.HTTPPort)})
	if err != nil {
		return "", err
	}
	end, err := vm.WaitSerial(bootTimeout, 0, "handoff: rescue shell")
	if err != nil {
		return "", err
	}
	out := vm.Serial()[:end]
	m := reStep.FindStringSubmatch(out)
	if m == nil || m[1] != "arp" || !strings.Contains(m[4], "no ARP answer") {
		return "", fmt.Errorf("no clear ARP error line on the console (got %q)", m)
	}
	if strings.Contains(out, "netconsole armed") || !strings.Contains(out, "targets=0") {
		return "", fmt.Errorf("a target was armed for an unresolved receiver")
	}
	return fmt.Sprintf("gave up after %s%s", m[2], m[3]), nil
}

// twoReceivers: two collectors; both get every line of the boot.
func twoReceivers(e *Env) (string, error) {
	c1, err := e.StartCollector("collector1")
	if err != nil {
		return "", err
	}
	c2, err := e.StartCollector("collector2")
	if err != nil {
		return "", err
	}
	args := fmt.Sprintf("lastgasp.receiver=10.0.2.2:%d,10.0.2.2:%d lastgasp.upload=http://10.0.2.2:%d lastgasp.test_panic=1", c1.UDPPort, c2.UDPPort, c1.HTTPPort)
	if _, err := e.Boot("vm", BootOpts{Append: args}); err != nil {
		return "", err
	}
	// The panic's last line, "Rebooting in 1 seconds..", written: the
	// collector writes a host's lines in order, so every earlier line is
	// in the log too (a fixed sleep raced the 1 s write delay).
	for _, c := range []*Collector{c1, c2} {
		if err := c.WaitLog(bootTimeout, "lastgasp: netconsole armed", panicLine, "Rebooting in"); err != nil {
			return "", err
		}
	}
	s1, s2 := firstBootSeqs(c1), firstBootSeqs(c2)
	if len(s1) == 0 {
		return "", fmt.Errorf("no sequence numbers stored")
	}
	// The second target is armed after the first; compare from there on.
	from := s2[0]
	var a []uint64
	for _, s := range s1 {
		if s >= from {
			a = append(a, s)
		}
	}
	if fmt.Sprint(a) != fmt.Sprint(s2) {
		return "", fmt.Errorf("receivers differ: first has %d lines from seq %d, second %d", len(a), from, len(s2))
	}
	return fmt.Sprintf("lines=%d each (seq %d-%d)", len(s2), s2[0], s2[len(s2)-1]), nil
}

var reSeq = regexp.MustCompile(` seq=(\d+) `)

// firstBootSeqs returns the sorted sequence numbers stored for the boot
// whose log holds the panic.
func firstBootSeqs(c *Collector) []uint64 {
	files, _ := filepath.Glob(filepath.Join(c.Store, "*", "*", "kernel.log"))
	for _, f := range files {
		b, _ := os.ReadFile(f)
		if !strings.Contains(string(b), panicLine) {
			continue
		}
		var out []uint64
		for _, m := range reSeq.FindAllStringSubmatch(string(b), -1) {
			n, _ := strconv.ParseUint(m[1], 10, 64)
			out = append(out, n)
		}
		sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
		return out
	}
	return nil
}

// nicE1000: an e1000 NIC instead of virtio-net.
func nicE1000(e *Env) (string, error) {
	c, err := e.StartCollector("collector")
	if err != nil {
		return "", err
	}
	vm, err := e.Boot("vm", BootOpts{Initrd: labInitrd(e), Append: agentArgs(c), NetArgs: []string{"-netdev", "user,id=n0", "-device", "e1000,netdev=n0,romfile="}})
	if err != nil {
		return "", err
	}
	if err := c.WaitLog(bootTimeout, "lastgasp: netconsole armed", "mac="+gatewayMAC); err != nil {
		return "", err
	}
	if !regexp.MustCompile(`e1000 [0-9a-f:.]+ eth0: `).MatchString(vm.Serial()) {
		return "", fmt.Errorf("eth0 was not driven by e1000")
	}
	return "", nil
}

// nicByDriver: two NICs that would both get a lease (virtio-net and e1000);
// lastgasp.iface=driver:e1000 picks the e1000 one, by its driver.
func nicByDriver(e *Env) (string, error) {
	c, err := e.StartCollector("collector")
	if err != nil {
		return "", err
	}
	netArgs := []string{
		"-netdev", "user,id=a", "-device", "virtio-net-pci,netdev=a,romfile=,mac=52:54:00:12:00:0a",
		"-netdev", "user,id=b", "-device", "e1000,netdev=b,romfile=,mac=52:54:00:12:00:0b",
	}
	vm, err := e.Boot("vm", BootOpts{Initrd: labInitrd(e), Append: agentArgs(c, "lastgasp.iface=driver:e1000"), NetArgs: netArgs})
	if err != nil {
		return "", err
	}
	if err := c.WaitLog(bootTimeout, "lastgasp: netconsole armed host=52-54-00-12-00-0b"); err != nil {
		return "", err
	}
	end, err := vm.WaitSerial(bootTimeout, 0, "handoff: rescue shell")
	if err != nil {
		return "", err
	}
	m := regexp.MustCompile(`lastgasp: nic: candidates \[([^\]]*)\]`).FindStringSubmatch(vm.Serial()[:end])
	if m == nil || !strings.Contains(m[1], "e1000") || strings.Contains(m[1], "virtio") {
		return "", fmt.Errorf("candidates %q: want only the e1000 NIC", m)
	}
	return "candidates " + m[1], nil
}
