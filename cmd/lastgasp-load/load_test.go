package main

import (
	"cmp"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/lastgasp/lastgasp/netconsole/announce"
	"github.com/lastgasp/lastgasp/netconsole/wire"
)

// sink is a real UDP socket on 127.0.0.1 that tallies what arrives, per
// source address.
type sink struct {
	pc   net.PacketConn
	done chan struct{}
	t    *testing.T

	mu      sync.Mutex
	bySrc   map[string]*tally
	hostSrc map[string]string // announced host -> source
}

type tally struct {
	datagrams, frags, messages int
	host, boot                 string
	wrongHost                  int            // messages whose text names another host
	seqs                       map[uint64]int // datagrams received per sequence number
}

func newSink(t *testing.T) *sink {
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pc.(*net.UDPConn).SetReadBuffer(8 << 20)
	s := &sink{pc: pc, done: make(chan struct{}), t: t, bySrc: map[string]*tally{}, hostSrc: map[string]string{}}
	go s.loop()
	t.Cleanup(func() { pc.Close() })
	return s
}

func (s *sink) loop() {
	defer close(s.done)
	buf := make([]byte, 2048)
	for {
		s.pc.SetReadDeadline(time.Now().Add(time.Second))
		n, addr, err := s.pc.ReadFrom(buf)
		if err != nil {
			return
		}
		p, err := wire.Parse(buf[:n])
		if err != nil || !p.Extended {
			s.t.Errorf("datagram %q: %v", buf[:n], err)
			continue
		}
		s.mu.Lock()
		src := addr.String()
		tl := s.bySrc[src]
		if tl == nil {
			tl = &tally{seqs: map[uint64]int{}}
			s.bySrc[src] = tl
		}
		tl.datagrams++
		tl.seqs[p.Seq]++
		if p.Fragmented() {
			tl.frags++
		}
		if !p.Fragmented() || p.FragOffset == 0 {
			tl.messages++
			if a, ok := announce.Parse(p.Text); ok {
				tl.host, tl.boot = a.Host, a.Boot
				s.hostSrc[a.Host] = src
			} else if tl.host != "" && !strings.HasPrefix(p.Text, tl.host+" ") {
				tl.wrongHost++
			}
		}
		s.mu.Unlock()
	}
}

// wait waits until nothing arrived for a second.
func (s *sink) wait() { <-s.done }

func TestRunSendsWhatItCounts(t *testing.T) {
	for _, tt := range []struct {
		name    string
		sources string
		// srcOf is the source address host i must send from ("" means
		// any, as long as hosts' sources are distinct).
		srcOf func(i int) string
	}{
		{"sockets", SourcesSockets, nil},
		{"raw", SourcesRaw, func(i int) string { return fmt.Sprintf("127.1.0.%d:6665", i) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.sources == SourcesRaw {
				rawOrSkip(t).Close()
			}
			s := newSink(t)
			cfg := Config{Addr: s.pc.LocalAddr().String(), Hosts: 4, Rate: 20000, Count: 400, Sources: tt.sources, Boot: "b00t",
				Size: 50, FragEvery: 10, FragSize: 2500, GapEvery: 7, Trailer: 10 * time.Millisecond}
			res, err := Run(t.Context(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			s.wait()
			s.mu.Lock()
			defer s.mu.Unlock()
			var datagrams, messages int
			for _, tl := range s.bySrc {
				datagrams += tl.datagrams
				messages += tl.messages
			}
			// 400 messages (4 announcements among them) plus 4 trailers.
			if res.Messages != 404 || res.Datagrams != uint64(datagrams) || messages != 404 || res.Trailers != 4 || res.Gaps == 0 || res.Fragmented == 0 || res.Errors != 0 {
				t.Errorf("Run = %+v; received %d datagrams, %d messages", res, datagrams, messages)
			}
			if len(s.bySrc) != 4 || len(s.hostSrc) != 4 {
				t.Errorf("received from %d sources, %d announced hosts; want 4 each", len(s.bySrc), len(s.hostSrc))
			}
			for i := range 4 {
				name := fmt.Sprintf("load-%04d", i)
				src, ok := s.hostSrc[name]
				if !ok {
					t.Errorf("host %s never announced", name)
					continue
				}
				if tt.srcOf != nil && src != tt.srcOf(i) {
					t.Errorf("host %s sent from %s, want %s", name, src, tt.srcOf(i))
				}
				if tl := s.bySrc[src]; tl.boot != "b00t" || tl.wrongHost != 0 || tl.messages != 101 {
					t.Errorf("host %s: %+v; want boot b00t, 101 messages, all naming it", name, *tl)
				}
			}
			if want := "sent: hosts=4 messages=404 "; !strings.HasPrefix(res.String(), want) {
				t.Errorf("String() = %q, want prefix %q", res.String(), want)
			}
		})
	}
}

// TestRunRecordsWhatWasSent: with Record, Result.Sent says per host what a
// loss-free receiver got: its first and last sequence numbers, the numbers
// between them it never got (the skipped ones), and the messages that came
// in more than one datagram.
func TestRunRecordsWhatWasSent(t *testing.T) {
	s := newSink(t)
	cfg := Config{Addr: s.pc.LocalAddr().String(), Hosts: 3, Rate: 20000, Count: 300, Boot: "b",
		Size: 50, FragEvery: 10, FragSize: 2500, GapEvery: 7, SeqStart: 1000, Trailer: 10 * time.Millisecond, Record: true}
	res, err := Run(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	s.wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(res.Sent) != 3 {
		t.Fatalf("Run recorded %d hosts, want 3", len(res.Sent))
	}
	var skipped uint64
	for _, h := range res.Sent {
		tl := s.bySrc[s.hostSrc[h.Name]]
		if tl == nil {
			t.Errorf("host %s: nothing received", h.Name)
			continue
		}
		want := HostSent{Name: h.Name, First: ^uint64(0)}
		for seq, n := range tl.seqs {
			want.First = min(want.First, seq)
			want.Last = max(want.Last, seq)
			if n > 1 {
				want.Multi = append(want.Multi, Multi{seq, n})
			}
		}
		for seq := want.First; seq <= want.Last; seq++ {
			if tl.seqs[seq] == 0 {
				want.Skipped = append(want.Skipped, seq)
			}
		}
		// The number after the last may have been skipped too; no
		// receiver can tell.
		got := h
		if n := len(got.Skipped); n > 0 && got.Skipped[n-1] == got.Last+1 {
			got.Skipped = got.Skipped[:n-1]
		}
		slices.SortFunc(want.Multi, func(a, b Multi) int { return cmp.Compare(a.Seq, b.Seq) })
		if diff := gocmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("host %s: Sent differs from what was received (-received +Sent):\n%s", h.Name, diff)
		}
		skipped += uint64(len(h.Skipped))
	}
	if skipped != res.Skipped {
		t.Errorf("Sent lists %d skipped numbers, Result.Skipped = %d", skipped, res.Skipped)
	}
}

func TestWriteSent(t *testing.T) {
	var b strings.Builder
	err := WriteSent(&b, []HostSent{
		{Name: "load-0007", First: 1002, Last: 1027, Skipped: []uint64{1010, 1020}, Multi: []Multi{{1024, 3}}},
		{Name: "load-0008", First: 1002, Last: 1002},
		{Name: "load-0009"},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := "load-0007 first=1002 last=1027 skipped=1010,1020 multi=1024:3\n" +
		"load-0008 first=1002 last=1002 skipped=- multi=-\n" +
		"load-0009 first=0 last=0 skipped=- multi=-\n"
	if b.String() != want {
		t.Errorf("WriteSent wrote\n%s\nwant\n%s", b.String(), want)
	}
}

// TestRunFlood: the flooding host sends on its own, at full speed, while
// the others keep their pace; Result.Flood is what came from its source.
func TestRunFlood(t *testing.T) {
	rawOrSkip(t).Close()
	s := newSink(t)
	cfg := Config{Addr: s.pc.LocalAddr().String(), Hosts: 4, Rate: 2000, Count: 400, Sources: SourcesRaw, Boot: "b",
		Size: 50, Flood: true, FloodHost: 2, Trailer: 10 * time.Millisecond}
	res, err := Run(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	s.wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	flood := s.bySrc["127.1.0.2:6665"]
	if flood == nil || flood.host != "load-0002" {
		t.Fatalf("no announcement from the flooding host's source 127.1.0.2:6665: %+v", flood)
	}
	// Received, not sent: a full-speed flood may overrun the socket.
	if flood.messages > int(res.Flood) || res.Flood < 4*400 {
		t.Errorf("flood: sent %d, received %d; want at least 1600 sent (4x the others), no more received", res.Flood, flood.messages)
	}
	for src, tl := range s.bySrc {
		if tl != flood && tl.messages != 134 && tl.messages != 135 {
			// 400 messages over 3 hosts (133 or 134 each) plus a trailer.
			t.Errorf("ordinary host %s (%s): %d messages, want 134 or 135", tl.host, src, tl.messages)
		}
	}
	if res.Messages-res.Flood != 403 || !strings.Contains(res.String(), fmt.Sprintf(" flood=%d ", res.Flood)) {
		t.Errorf("Run = %s; want 403 messages besides the flood", res)
	}
}

func TestRawRefusesNonLoopback(t *testing.T) {
	for _, addr := range []string{"10.0.0.1:6666", "[::1]:6666", "192.168.1.1:6666", "localhost:6666"} {
		t.Run(addr, func(t *testing.T) {
			_, err := Run(t.Context(), Config{Addr: addr, Hosts: 2, Count: 10, Sources: SourcesRaw})
			if err == nil {
				t.Fatalf("Run(-addr %s) sent; want it refused", addr)
			}
			if addr != "localhost:6666" && !errors.Is(err, errNotLoopback) {
				t.Errorf("Run(-addr %s) = %v; want errNotLoopback", addr, err)
			}
		})
	}
	if _, err := Run(t.Context(), Config{Addr: "127.0.0.1:6666", Hosts: 2, Count: 10, Sources: SourcesRaw, SourceBase: mustAddr("10.0.0.1")}); !errors.Is(err, errNotLoopback) {
		t.Errorf("Run(-source-base 10.0.0.1) = %v; want errNotLoopback", err)
	}
}
