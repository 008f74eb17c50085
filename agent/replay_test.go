package agent

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lastgasp/lastgasp/netconsole/target"
	"github.com/lastgasp/lastgasp/netconsole/wire"
)

// TestReplayKmsg replays this machine's own /dev/kmsg (read only) to two
// receivers on loopback, as the agent does after arming: every datagram is
// a marked extended record from the target's local address and port, each
// receiver gets the whole log from its oldest record, and one step line
// says what was sent.
func TestReplayKmsg(t *testing.T) {
	if f, err := os.Open("/dev/kmsg"); err != nil {
		t.Skipf("no readable /dev/kmsg: %v", err)
	} else {
		f.Close()
	}
	var rx []*net.UDPConn
	for range 2 {
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		c.SetReadBuffer(4 << 20)
		defer c.Close()
		rx = append(rx, c)
	}
	// A free port for the targets' local_port, as netconsole's 6665 is
	// in the guest.
	p, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2)})
	if err != nil {
		t.Fatal(err)
	}
	local := p.LocalAddr().(*net.UDPAddr).AddrPort()
	p.Close()
	var targets []armed
	for i, c := range rx {
		r := c.LocalAddr().(*net.UDPAddr).AddrPort()
		targets = append(targets, armed{target: target.Target{Name: "lastgasp" + string(rune('0'+i)), Dev: "lo",
			LocalIP: local.Addr(), LocalPort: int(local.Port()), RemoteIP: r.Addr(), RemotePort: int(r.Port()), Extended: true}})
	}
	targets = append(targets, armed{target: target.Target{Name: "plain", LocalIP: local.Addr(), LocalPort: int(local.Port()),
		RemoteIP: netip.MustParseAddr("127.0.0.1"), RemotePort: 9}}) // not extended: skipped
	var kmsg strings.Builder
	a := &agent{Config: config{Kmsg: "/dev/kmsg"}, Log: &logger{kmsg: &kmsg}}
	a.replayKmsg(context.Background(), targets)

	step := regexp.MustCompile(`^<6>lastgasp: replay: kernel log seq=(\d+)-(\d+) \((\d+) records, (\d+) overwritten before they could be read, 0 malformed\) sent to 2 receivers as (\d+) datagrams \(.*\)\n$`)
	if !step.MatchString(kmsg.String()) {
		t.Fatalf("step line %q does not match %v", kmsg.String(), step)
	}
	for i, c := range rx {
		buf := make([]byte, 2048)
		var first, n uint64
		for {
			c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
			m, from, err := c.ReadFromUDP(buf)
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if from.AddrPort() != local {
				t.Fatalf("receiver %d: datagram from %v, want the target's %v", i, from, local)
			}
			pk, err := wire.Parse(buf[:m])
			if err != nil || !pk.Extended || !pk.Replay {
				t.Fatalf("receiver %d: %q parsed as %+v, %v", i, buf[:m], pk, err)
			}
			if n == 0 {
				first = pk.Seq
			}
			n++
		}
		sm := step.FindStringSubmatch(kmsg.String())
		if sm[1] != itoaU(first) {
			t.Errorf("receiver %d: first seq %d, step line says %s", i, first, sm[1])
		}
		if n == 0 {
			t.Errorf("receiver %d: nothing received", i)
		}
	}
}

func itoaU(u uint64) string { return strconv.FormatUint(u, 10) }
