package main

import (
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/lastgasp/lastgasp/netconsole/link/netnstest"
	"github.com/mdlayher/ethernet"
	"golang.org/x/sys/unix"
)

// trunk is one 802.1Q trunk port, in user space: the guest NIC's frames
// come from QEMU's UDP socket netdev (one frame per datagram, on the
// loopback of the lab namespace); frames tagged with the trunk's VLAN ID
// are untagged and written to a tap device in that namespace, frames from
// the tap are tagged and sent back to QEMU. Everything else is counted and
// dropped. This machine's kernel may have no 8021q (and the scenario loads
// no module on it), so the switch is here, built on mdlayher/ethernet.
type trunk struct {
	id   uint16
	udp  *net.UDPConn
	tap  *os.File
	peer *net.UDPAddr // QEMU's end

	tagged, untaggedIP, otherVLAN, toGuest atomic.Int64
	wg                                     sync.WaitGroup
}

// openTap attaches to (creating) tap device name in the calling thread's
// network namespace, without packet information headers.
func openTap(name string) (*os.File, error) {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open /dev/net/tun: %w", err)
	}
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	ifr.SetUint16(unix.IFF_TAP | unix.IFF_NO_PI)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("TUNSETIFF %s: %w", name, err)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return os.NewFile(uintptr(fd), "tap:"+name), nil
}

// newTrunk creates the tap device and the UDP socket inside n; QEMU (also
// in n) is to use "-netdev socket,udp=<t.udp addr>,localaddr=127.0.0.1:<qemuPort>".
func newTrunk(n *netnstest.NS, tapName string, id uint16, qemuPort int) (*trunk, error) {
	t := &trunk{id: id, peer: &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: qemuPort}}
	err := n.Do(func() (err error) {
		if t.tap, err = openTap(tapName); err != nil {
			return err
		}
		t.udp, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		return err
	})
	if err != nil {
		if t.tap != nil {
			t.tap.Close()
		}
		return nil, err
	}
	t.wg.Add(2)
	go t.fromGuest()
	go t.toGuestLoop()
	return t, nil
}

func (t *trunk) port() int { return t.udp.LocalAddr().(*net.UDPAddr).Port }

func (t *trunk) fromGuest() {
	defer t.wg.Done()
	buf := make([]byte, 65536)
	for {
		n, _, err := t.udp.ReadFromUDP(buf)
		if err != nil {
			return
		}
		var f ethernet.Frame
		if err := f.UnmarshalBinary(buf[:n]); err != nil {
			continue
		}
		switch {
		case f.VLAN == nil:
			if f.EtherType == ethernet.EtherTypeIPv4 || f.EtherType == ethernet.EtherTypeARP {
				t.untaggedIP.Add(1)
			}
			continue
		case f.VLAN.ID != t.id || f.ServiceVLAN != nil:
			t.otherVLAN.Add(1)
			continue
		}
		t.tagged.Add(1)
		f.VLAN = nil
		b, err := f.MarshalBinary()
		if err != nil {
			continue
		}
		t.tap.Write(b)
	}
}

func (t *trunk) toGuestLoop() {
	defer t.wg.Done()
	buf := make([]byte, 65536)
	for {
		n, err := t.tap.Read(buf)
		if err != nil {
			return
		}
		var f ethernet.Frame
		if err := f.UnmarshalBinary(buf[:n]); err != nil {
			continue
		}
		f.VLAN = &ethernet.VLAN{ID: t.id}
		b, err := f.MarshalBinary()
		if err != nil {
			continue
		}
		if _, err := t.udp.WriteToUDP(b, t.peer); err == nil {
			t.toGuest.Add(1)
		}
	}
}

func (t *trunk) Close() {
	t.udp.Close()
	t.tap.Close()
	t.wg.Wait()
}

func (t *trunk) String() string {
	return fmt.Sprintf("tagged=%d to_guest=%d untagged_ipv4_arp=%d other_vlan=%d", t.tagged.Load(), t.toGuest.Load(), t.untaggedIP.Load(), t.otherVLAN.Load())
}

// nicVLAN: the guest's NIC is on an 802.1Q trunk where only VLAN 100
// carries a network (DHCP from dnsmasq, the collector at 10.100.0.1);
// untagged frames go nowhere. lastgasp.vlan=100 on the kernel command line
// makes the agent load 8021q (modules.ondemand), create eth0.100 and run
// DHCP, ARP and netconsole there. The collector receiving the armed line
// proves the tagging; the trunk's counters prove nothing IPv4 left untagged.
//
//	guest eth0 ─ QEMU socket netdev ─ trunk (VLAN 100 <-> untagged) ─ tapv 10.100.0.1 (lab ns: dnsmasq, lastgaspd)
func nicVLAN(e *Env) (string, error) {
	return vlanScenario(e, "lastgasp.vlan=100", "eth0.100")
}

// nicVLANDracut: as nicVLAN, but the VLAN comes from dracut's own
// vlan=<name>:<phys> argument, and the interface gets dracut's name.
func nicVLANDracut(e *Env) (string, error) {
	return vlanScenario(e, "vlan=prod100:eth0", "prod100")
}

func vlanScenario(e *Env, arg, dev string) (string, error) {
	l, err := newLab(e)
	if err != nil {
		return "", err
	}
	lan, err := l.ns()
	if err != nil {
		return "", err
	}
	if err := l.sh(lan, "ip link set lo up"); err != nil {
		return "", err
	}
	qemuPort := freePort("udp") // free here means free in the fresh namespace too
	tr, err := newTrunk(lan, "tapv", 100, qemuPort)
	if err != nil {
		return "", fmt.Errorf("trunk: %w", err)
	}
	e.cleanups = append(e.cleanups, tr.Close)
	if err := l.sh(lan,
		"ip addr add 10.100.0.1/24 dev tapv",
		"ip link set tapv up",
	); err != nil {
		return "", err
	}
	if err := l.dnsmasq(lan, "tapv", "10.100.0.50,10.100.0.99,255.255.255.0,1h"); err != nil {
		return "", err
	}
	c, err := l.collector(lan)
	if err != nil {
		return "", err
	}
	vm, err := l.bootIn(lan, "vm", BootOpts{
		Initrd: labInitrd(e), // 8021q
		Append: arg + " lastgasp.receiver=10.100.0.1:6666 lastgasp.upload=http://10.100.0.1:6667",
		NetArgs: []string{
			"-netdev", fmt.Sprintf("socket,id=n0,udp=127.0.0.1:%d,localaddr=127.0.0.1:%d", tr.port(), qemuPort),
			"-device", "virtio-net-pci,netdev=n0,romfile=,mac=52:54:00:64:00:10",
		},
	})
	if err != nil {
		return "", err
	}
	if err := c.WaitLog(bootTimeout, "lastgasp: netconsole armed", "dev="+dev+" ", "remote=10.100.0.1:6666"); err != nil {
		return "", fmt.Errorf("%w (trunk: %s)", err, tr)
	}
	end, err := vm.WaitSerial(bootTimeout, 0, "handoff: rescue shell")
	if err != nil {
		return "", err
	}
	out := vm.Serial()[:end]
	if want := "lastgasp: vlan: " + dev + " is VLAN 100 on eth0"; !strings.Contains(out, want) {
		return "", fmt.Errorf("no %q line on the console", want)
	}
	if !strings.Contains(out, "dhcp: "+dev+" addr=10.100.0.") {
		return "", fmt.Errorf("the lease is not on %s from the VLAN's dnsmasq", dev)
	}
	if n := tr.untaggedIP.Load(); n != 0 {
		return "", fmt.Errorf("%d untagged IPv4/ARP frames left the guest (%s)", n, tr)
	}
	return fmt.Sprintf("armed on %s; trunk %s; %s", dev, tr, stepTimes(out)), nil
}
