package main

import (
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lastgasp/lastgasp/netconsole/wire"
)

func TestRunSendsWhatItCounts(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	var mu sync.Mutex
	sources := map[string]bool{}
	var datagrams, frags, announces int
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 2048)
		for {
			pc.SetReadDeadline(time.Now().Add(time.Second))
			n, addr, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			p, err := wire.Parse(buf[:n])
			if err != nil || !p.Extended {
				t.Errorf("datagram %q: %v", buf[:n], err)
				continue
			}
			mu.Lock()
			datagrams++
			sources[addr.String()] = true
			if p.Fragmented() {
				frags++
			}
			if strings.HasPrefix(p.Text, "lastgasp: netconsole armed host=") {
				announces++
			}
			mu.Unlock()
		}
	}()
	res, err := Run(t.Context(), Config{Addr: pc.LocalAddr().String(), Hosts: 4, Rate: 20000, Count: 400,
		Size: 50, FragEvery: 10, FragSize: 2500, GapEvery: 7, Trailer: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	<-done
	mu.Lock()
	defer mu.Unlock()
	if res.Messages != 404 || res.Datagrams != uint64(datagrams) || len(sources) != 4 || announces != 4 || res.Gaps == 0 || res.Fragmented == 0 {
		t.Errorf("Run = %+v; received %d datagrams (%d fragments) from %d sources, %d announcements", res, datagrams, frags, len(sources), announces)
	}
	if !strings.HasPrefix(res.String(), "sent: hosts=4 messages=404 ") {
		t.Errorf("String() = %q", res.String())
	}
}
