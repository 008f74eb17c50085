package receiver

import (
	"context"
	"fmt"
	"github.com/lastgasp/lastgasp/store"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/lastgasp/lastgasp/netconsole/wire"
)

// testServer runs srv on a loopback UDP socket until the test ends.
type testServer struct {
	srv  *Server
	addr string
	stop func()
}

func startServer(t *testing.T, srv *Server) *testServer {
	t.Helper()
	if srv.Store == nil {
		srv.Store = &store.Store{Root: t.TempDir()}
	}
	if srv.Logf == nil {
		srv.Logf = t.Logf
	}
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("ListenPacket: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, conn) }()
	ts := &testServer{srv: srv, addr: conn.LocalAddr().String()}
	stopped := false
	ts.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve = %v, want nil after cancel", err)
		}
		if err := srv.Store.Close(); err != nil {
			t.Errorf("Store.Close = %v", err)
		}
	}
	t.Cleanup(ts.stop)
	return ts
}

// dial returns a UDP socket sending to ts: one simulated netconsole sender.
func (ts *testServer) dial(t *testing.T) *sender {
	t.Helper()
	c, err := net.Dial("udp", ts.addr)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return &sender{t: t, c: c}
}

type sender struct {
	t *testing.T
	c net.Conn
}

func (s *sender) send(datagrams ...string) {
	s.t.Helper()
	for _, d := range datagrams {
		if _, err := s.c.Write([]byte(d)); err != nil {
			s.t.Fatalf("Write(%q): %v", d, err)
		}
	}
}

// ip returns the sender's address as the server files it.
func (s *sender) ip() string { return s.c.LocalAddr().(*net.UDPAddr).IP.String() }

// ext formats an unfragmented extended message at level 6.
func ext(seq uint64, text string) string {
	return string(wire.Format(wire.Packet{Extended: true, Level: 6, Seq: seq, TimestampUsec: 1_000_000 + seq*1000, Text: text}))
}

// waitFor polls cond until it holds or the test times out.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (ts *testServer) waitStats(t *testing.T, what string, cond func(Stats) bool) {
	t.Helper()
	waitFor(t, what, func() bool { return cond(ts.srv.Stats()) })
}

// readLog returns the lines of host/boot's log without their receive times,
// checking that each starts with an RFC 3339 time.
func readLog(t *testing.T, st *store.Store, host, boot string) []string {
	t.Helper()
	b, err := os.ReadFile(st.Path(host, boot))
	if err != nil {
		t.Fatalf("reading log: %v", err)
	}
	var out []string
	for l := range strings.Lines(string(b)) {
		l = strings.TrimSuffix(l, "\n")
		stamp, rest, _ := strings.Cut(l, " ")
		if _, err := time.Parse(time.RFC3339Nano, stamp); err != nil {
			t.Errorf("log line %q: time: %v", l, err)
		}
		out = append(out, rest)
	}
	return out
}

// hosts returns the host directories under the store root.
func hosts(t *testing.T, st *store.Store) []string {
	t.Helper()
	ents, err := os.ReadDir(st.Root)
	if err != nil {
		t.Fatalf("ReadDir: %v", err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

const announceLine = "lastgasp: netconsole armed host=52-54-00-12-34-56 boot=1b6f0a dev=eth0 remote=10.0.2.2:6666 mac=52:55:0a:00:02:02"

func TestServeAnnouncementBindsHeldLines(t *testing.T) {
	ts := startServer(t, &Server{AnnounceTimeout: time.Minute})
	s := ts.dial(t)
	s.send(ext(420, "netconsole: network logging started"), ext(421, "before"), ext(422, announceLine), ext(423, "after"))
	ts.waitStats(t, "4 messages", func(st Stats) bool { return st.Messages == 4 })
	ts.stop()

	want := []string{
		"6 seq=420 ts=1.420000 netconsole: network logging started",
		"6 seq=421 ts=1.421000 before",
		"6 seq=422 ts=1.422000 " + announceLine,
		"6 seq=423 ts=1.423000 after",
	}
	if diff := cmp.Diff(want, readLog(t, ts.srv.Store, "52-54-00-12-34-56", "1b6f0a")); diff != "" {
		t.Errorf("log mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"52-54-00-12-34-56"}, hosts(t, ts.srv.Store)); diff != "" {
		t.Errorf("host directories mismatch (-want +got):\n%s", diff)
	}
	if got := ts.srv.Stats().Announcements; got != 1 {
		t.Errorf("Stats().Announcements = %d, want 1", got)
	}
}

func TestServeAnnouncementTimeout(t *testing.T) {
	ts := startServer(t, &Server{AnnounceTimeout: 100 * time.Millisecond, FlushInterval: 10 * time.Millisecond})
	s := ts.dial(t)
	s.send(ext(1, "early one"), ext(2, "early two"))
	path := ts.srv.Store.Path(s.ip(), "")
	waitFor(t, "lines filed under the source address", func() bool {
		b, _ := os.ReadFile(path)
		return strings.Count(string(b), "\n") == 3
	})
	s.send(ext(3, announceLine), ext(4, "bound"))
	ts.waitStats(t, "4 messages", func(st Stats) bool { return st.Messages == 4 })
	ts.stop()

	if diff := cmp.Diff([]string{
		"lastgaspd: no announcement from " + s.c.LocalAddr().String(),
		"6 seq=1 ts=1.001000 early one",
		"6 seq=2 ts=1.002000 early two",
	}, readLog(t, ts.srv.Store, s.ip(), "")); diff != "" {
		t.Errorf("unannounced log mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{
		"6 seq=3 ts=1.003000 " + announceLine,
		"6 seq=4 ts=1.004000 bound",
	}, readLog(t, ts.srv.Store, "52-54-00-12-34-56", "1b6f0a")); diff != "" {
		t.Errorf("announced log mismatch (-want +got):\n%s", diff)
	}
}

func TestServeHeldLinesLimit(t *testing.T) {
	ts := startServer(t, &Server{AnnounceTimeout: time.Minute, AnnounceLines: 2})
	s := ts.dial(t)
	s.send(ext(1, "a"), ext(2, "b"), ext(3, "c"))
	path := ts.srv.Store.Path(s.ip(), "")
	waitFor(t, "held lines written when over the limit", func() bool {
		b, _ := os.ReadFile(path)
		return strings.Count(string(b), "\n") == 4
	})
}

func TestServeFragments(t *testing.T) {
	ts := startServer(t, &Server{})
	s := ts.dial(t)
	body := strings.Repeat("0123456789", 150) + "\n SUBSYSTEM=net\n"
	total := len(body)
	frag := func(off, end int) string {
		return fmt.Sprintf("6.1.0-56-amd64,4,7,1007000,-,ncfrag=%d/%d;%s", off, total, body[off:end])
	}
	// Fragments arrive out of order, one twice.
	s.send(ext(6, announceLine), frag(1000, total), frag(0, 1000), frag(1000, total), ext(8, "next"))
	ts.waitStats(t, "3 messages", func(st Stats) bool { return st.Messages == 3 })
	ts.stop()

	want := []string{
		"6 seq=6 ts=1.006000 " + announceLine,
		"4 seq=7 ts=1.007000 " + strings.Repeat("0123456789", 150),
		"6 seq=8 ts=1.008000 next",
	}
	if diff := cmp.Diff(want, readLog(t, ts.srv.Store, "52-54-00-12-34-56", "1b6f0a")); diff != "" {
		t.Errorf("log mismatch (-want +got):\n%s", diff)
	}
	if got := ts.srv.Stats(); got.Duplicates != 1 || got.Datagrams != 5 {
		t.Errorf("Stats() = %+v, want 5 datagrams, 1 duplicate", got)
	}
}

func TestServeGapAccounting(t *testing.T) {
	ts := startServer(t, &Server{
		Config:        wire.Config{ReorderWait: 20 * time.Millisecond},
		FlushInterval: 10 * time.Millisecond,
	})
	s := ts.dial(t)
	s.send(ext(10, announceLine), ext(11, "a"), ext(14, "d"), ext(13, "c"), ext(20, "j"))
	ts.waitStats(t, "gaps", func(st Stats) bool { return st.Messages == 5 })
	ts.stop()

	want := []string{
		"6 seq=10 ts=1.010000 " + announceLine,
		"6 seq=11 ts=1.011000 a",
		"lastgaspd: gap seq=12-12 lost=1",
		"6 seq=13 ts=1.013000 c",
		"6 seq=14 ts=1.014000 d",
		"lastgaspd: gap seq=15-19 lost=5",
		"6 seq=20 ts=1.020000 j",
	}
	if diff := cmp.Diff(want, readLog(t, ts.srv.Store, "52-54-00-12-34-56", "1b6f0a")); diff != "" {
		t.Errorf("log mismatch (-want +got):\n%s", diff)
	}
	if got := ts.srv.Stats(); got.Gaps != 2 || got.Lost != 6 {
		t.Errorf("Stats() = %+v, want 2 gaps, 6 lost", got)
	}
}

func TestServeReboot(t *testing.T) {
	ts := startServer(t, &Server{AnnounceTimeout: time.Minute})
	s := ts.dial(t)
	for seq := uint64(500); seq < 600; seq++ {
		text := "old boot"
		if seq == 500 {
			text = announceLine
		}
		s.send(ext(seq, text))
	}
	ts.waitStats(t, "old boot", func(st Stats) bool { return st.Messages == 100 })
	newAnnounce := strings.Replace(announceLine, "boot=1b6f0a", "boot=2c7e1b", 1)
	s.send(ext(420, "netconsole: network logging started"), ext(421, newAnnounce), ext(422, "new boot"))
	ts.waitStats(t, "new boot", func(st Stats) bool { return st.Messages == 103 })
	ts.stop()

	old := readLog(t, ts.srv.Store, "52-54-00-12-34-56", "1b6f0a")
	if got, want := old[len(old)-1], "lastgaspd: reboot seq=420 expected=600"; got != want {
		t.Errorf("last line of old boot log = %q, want %q", got, want)
	}
	want := []string{
		"6 seq=420 ts=1.420000 netconsole: network logging started",
		"6 seq=421 ts=1.421000 " + newAnnounce,
		"6 seq=422 ts=1.422000 new boot",
	}
	if diff := cmp.Diff(want, readLog(t, ts.srv.Store, "52-54-00-12-34-56", "2c7e1b")); diff != "" {
		t.Errorf("new boot log mismatch (-want +got):\n%s", diff)
	}
	if got := ts.srv.Stats().Reboots; got != 1 {
		t.Errorf("Stats().Reboots = %d, want 1", got)
	}
}

func TestServeRebootWithoutAnnouncement(t *testing.T) {
	ts := startServer(t, &Server{AnnounceTimeout: 50 * time.Millisecond, FlushInterval: 10 * time.Millisecond})
	s := ts.dial(t)
	s.send(ext(900, announceLine), ext(901, "old"))
	ts.waitStats(t, "old boot", func(st Stats) bool { return st.Messages == 2 })
	s.send(ext(5, "new boot, no agent"))
	path := ts.srv.Store.Path("52-54-00-12-34-56", "")
	waitFor(t, "new boot filed under the known host", func() bool {
		b, _ := os.ReadFile(path)
		return strings.Contains(string(b), "new boot, no agent")
	})
}

func TestServeLegacyMalformedDuplicate(t *testing.T) {
	ts := startServer(t, &Server{AnnounceTimeout: time.Minute})
	s := ts.dial(t)
	s.send("[    1.000000] lastgasp: legacy host=legacy-box boot=b1\n",
		"[    1.100000] first\nsecond \x1b[0m\n",
		"6,1,2,-,ncfrag=5/5;x",
		ext(7, "once"), ext(7, "once"))
	ts.waitStats(t, "datagrams", func(st Stats) bool { return st.Datagrams == 5 && st.Messages == 3 })
	ts.stop()

	want := []string{
		"- - - [    1.000000] lastgasp: legacy host=legacy-box boot=b1",
		"- - - [    1.100000] first",
		`- - - second \x1b[0m`,
		"6 seq=7 ts=1.007000 once",
	}
	if diff := cmp.Diff(want, readLog(t, ts.srv.Store, "legacy-box", "b1")); diff != "" {
		t.Errorf("log mismatch (-want +got):\n%s", diff)
	}
	got := ts.srv.Stats()
	want2 := Stats{Datagrams: 5, Messages: 3, Legacy: 2, Malformed: 1, Duplicates: 1, Announcements: 1, Hosts: 1, Sources: 1}
	if diff := cmp.Diff(want2, got, cmpopts.IgnoreFields(Stats{}, "DroppedByReason")); diff != "" {
		t.Errorf("Stats() mismatch (-want +got):\n%s", diff)
	}
}

func TestServeSeparatesSenders(t *testing.T) {
	ts := startServer(t, &Server{AnnounceTimeout: time.Minute})
	a, b := ts.dial(t), ts.dial(t)
	a.send(ext(1, "lastgasp: armed host=alpha boot=A"))
	b.send(ext(1, "lastgasp: armed host=beta boot=B"))
	a.send(ext(2, "from alpha"))
	b.send(ext(2, "from beta"))
	ts.waitStats(t, "4 messages", func(st Stats) bool { return st.Messages == 4 })
	ts.stop()
	for _, tt := range []struct{ host, boot, last string }{
		{"alpha", "A", "6 seq=2 ts=1.002000 from alpha"},
		{"beta", "B", "6 seq=2 ts=1.002000 from beta"},
	} {
		got := readLog(t, ts.srv.Store, tt.host, tt.boot)
		if len(got) != 2 || got[1] != tt.last {
			t.Errorf("log of %s = %q, want 2 lines ending %q", tt.host, got, tt.last)
		}
	}
}

func TestServeEvictsLeastRecentSender(t *testing.T) {
	ts := startServer(t, &Server{MaxActive: 1, AnnounceTimeout: time.Minute})
	a, b := ts.dial(t), ts.dial(t)
	a.send(ext(1, "held from a"))
	ts.waitStats(t, "first", func(st Stats) bool { return st.Messages == 1 })
	b.send(ext(1, "lastgasp: armed host=beta boot=B"))
	ts.waitStats(t, "eviction", func(st Stats) bool { return st.Evictions == 1 })
	ts.stop()
	got := readLog(t, ts.srv.Store, a.ip(), "")
	if len(got) != 2 || got[1] != "6 seq=1 ts=1.001000 held from a" {
		t.Errorf("evicted sender's log = %q", got)
	}
}

func TestServeNeedsStore(t *testing.T) {
	var srv Server
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := srv.Serve(t.Context(), conn); err == nil {
		t.Errorf("Serve without Store = nil, want error")
	}
}

func TestListenAndServe(t *testing.T) {
	srv := &Server{Store: &store.Store{Root: t.TempDir()}}
	if err := srv.ListenAndServe(t.Context(), "127.0.0.1:notaport"); err == nil {
		t.Errorf("ListenAndServe(bad address) = nil, want error")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if err := srv.ListenAndServe(ctx, "127.0.0.1:0"); err != nil {
		t.Errorf("ListenAndServe until cancelled = %v, want nil", err)
	}
}

func TestServeReadError(t *testing.T) {
	srv := &Server{Store: &store.Store{Root: t.TempDir()}}
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	conn.Close()
	if err := srv.Serve(t.Context(), conn); err == nil {
		t.Errorf("Serve on closed conn = nil, want error")
	}
}

func TestServeNotesBoots(t *testing.T) {
	ts := startServer(t, &Server{})
	// Loaded (as by an upload): from now on the store follows
	// announcements in memory, not only through the logs on disk.
	ts.srv.Store.PrevBootDir("h", "b0")
	ts.dial(t).send(ext(0, "lastgasp: netconsole armed host=h boot=b1"))
	ts.waitStats(t, "announcement", func(st Stats) bool { return st.Announcements == 1 })
	ts.dial(t).send(ext(0, "lastgasp: netconsole armed host=h boot=b2"))
	ts.waitStats(t, "second announcement", func(st Stats) bool { return st.Announcements == 2 })
	// Recorded by the writer with each boot's first batch.
	waitFor(t, "b1 before b2 in the boot index", func() bool { return ts.srv.Store.PrevBootDir("h", "b2") == "h/b1" })
	if _, from := ts.srv.Store.PrevBootFrom("h", "b2"); from.String() != "127.0.0.1" {
		t.Errorf("b1 announced from %v, want 127.0.0.1", from)
	}
}
