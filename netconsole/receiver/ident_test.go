package receiver

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/lastgasp/lastgasp/netconsole/wire"
	"github.com/lastgasp/lastgasp/store"
)

// direct drives one ingest of srv without sockets, with times it chooses:
// the identity table's logic, with a real store in a temporary directory.
type direct struct {
	t   *testing.T
	srv *Server
	in  *ingest
	now time.Time
}

func newDirect(t *testing.T, srv *Server) *direct {
	t.Helper()
	if srv.Store == nil {
		srv.Store = &store.Store{Root: t.TempDir()}
	}
	srv.Logf = t.Logf
	srv.loadOnce.Do(srv.loadState)
	return &direct{t: t, srv: srv, in: srv.newIngest(), now: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)}
}

// addr returns the i-th simulated sender: 127.1.x.y port 6665, as the load
// generator's raw mode sends them.
func addr(i int) *net.UDPAddr {
	return &net.UDPAddr{IP: net.IPv4(127, 1, byte(i>>8), byte(i)), Port: 6665}
}

func (d *direct) send(from *net.UDPAddr, p wire.Packet) {
	d.now = d.now.Add(time.Millisecond)
	d.in.datagram(d.now, from, wire.Format(p), false)
}

func (d *direct) msg(from *net.UDPAddr, seq uint64, text string) {
	d.send(from, wire.Packet{Extended: true, Level: 6, Seq: seq, TimestampUsec: 1_000_000 + seq*1000, Text: text})
}

// stop writes out everything, as Serve does when it returns.
func (d *direct) stop() {
	d.in.shutdown(d.now)
	if err := d.srv.Store.Close(); err != nil {
		d.t.Fatal(err)
	}
}

// lines returns host/boot's log lines without their receive times.
func (d *direct) lines(host, boot string) []string {
	d.t.Helper()
	b, err := os.ReadFile(d.srv.Store.Path(host, boot))
	if err != nil {
		d.t.Fatalf("log of %s/%s: %v", host, boot, err)
	}
	var out []string
	for l := range strings.Lines(string(b)) {
		_, rest, _ := strings.Cut(strings.TrimSuffix(l, "\n"), " ")
		out = append(out, rest)
	}
	return out
}

func announceText(host, boot string) string {
	return "lastgasp: netconsole armed host=" + host + " boot=" + boot + " dev=eth0"
}

// TestIdentitySurvivesShed is the fleet-scale failure of the issue: more
// senders than heavy states, each heard in turn. Every message must land
// under its own host, and a loss must still be a gap.
func TestIdentitySurvivesShed(t *testing.T) {
	const senders = 300
	d := newDirect(t, &Server{MaxActive: 8})
	for i := range senders {
		d.msg(addr(i), 0, announceText(fmt.Sprintf("h%d", i), "b"))
	}
	for i := range senders {
		d.msg(addr(i), 1, "one")
	}
	for i := range senders {
		d.msg(addr(i), 5, "five") // 2-4 lost
	}
	d.stop()
	want := []string{
		"6 seq=0 ts=1.000000 " + announceText("h7", "b"),
		"6 seq=1 ts=1.001000 one",
		"lastgaspd: gap seq=2-4 lost=3",
		"6 seq=5 ts=1.005000 five",
	}
	if diff := cmp.Diff(want, d.lines("h7", "b")); diff != "" {
		t.Errorf("h7's log (-want +got):\n%s", diff)
	}
	st := d.srv.Stats()
	if st.Lost != 3*senders || st.Gaps != senders || st.Messages != 3*senders {
		t.Errorf("Stats: lost %d gaps %d messages %d, want %d, %d, %d", st.Lost, st.Gaps, st.Messages, 3*senders, senders, 3*senders)
	}
	if st.Evictions < senders || st.Hosts != senders || st.NoAnnouncement != 0 {
		t.Errorf("Stats: evictions %d hosts %d no-announcement %d, want >= %d, %d, 0", st.Evictions, st.Hosts, st.NoAnnouncement, senders, senders)
	}
	if ents, _ := os.ReadDir(d.srv.Store.Root); len(ents) != senders {
		t.Errorf("%d host directories, want %d (nothing under a source address)", len(ents), senders)
	}
}

// TestNoAnnouncementOnce checks that an unannounced sender gets one "no
// announcement" line per boot however often its heavy state is shed.
func TestNoAnnouncementOnce(t *testing.T) {
	d := newDirect(t, &Server{MaxActive: 1, AnnounceTimeout: time.Hour})
	quiet, other := addr(1), addr(2)
	for seq := range uint64(20) {
		d.msg(quiet, seq, "unannounced")
		d.msg(other, seq, "also unannounced") // sheds quiet's heavy state
	}
	d.stop()
	got := d.lines("127.1.0.1", "")
	n := 0
	for _, l := range got {
		if strings.Contains(l, "no announcement") {
			n++
		}
	}
	if n != 1 || len(got) != 21 {
		t.Errorf("log has %d lines, %d of them no-announcement notes; want 21 and 1:\n%s", len(got), n, strings.Join(got, "\n"))
	}
	if st := d.srv.Stats(); st.NoAnnouncement != 2 {
		t.Errorf("NoAnnouncement = %d, want 2 (one per sender)", st.NoAnnouncement)
	}
}

func TestRateLimit(t *testing.T) {
	d := newDirect(t, &Server{RateLimit: 10, RateBurst: 5})
	flood, calm := addr(1), addr(2)
	d.msg(flood, 0, announceText("flood", "b"))
	d.msg(calm, 0, announceText("calm", "b"))
	for seq := uint64(1); seq <= 50; seq++ {
		d.in.datagram(d.now, flood, wire.Format(wire.Packet{Extended: true, Level: 6, Seq: seq, Text: "x"}), false)
	}
	d.now = d.now.Add(time.Second) // 10 more tokens
	for seq := uint64(51); seq <= 70; seq++ {
		d.in.datagram(d.now, flood, wire.Format(wire.Packet{Extended: true, Level: 6, Seq: seq, Text: "x"}), false)
	}
	for seq := uint64(1); seq <= 5; seq++ {
		d.msg(calm, seq, "calm")
	}
	d.stop()
	// Burst 5 of the first 50, then the bucket refilled to its size, 5,
	// in the second that passed (10/s, but it holds no more than 5).
	flooded := d.lines("flood", "b")
	stored, notes := 0, []string{}
	for _, l := range flooded {
		switch {
		case strings.HasSuffix(l, " x"):
			stored++
		case strings.Contains(l, "rate-limited"):
			notes = append(notes, l)
		}
	}
	if stored != 10 {
		t.Errorf("flood stored %d messages, want 10", stored)
	}
	if len(notes) != 1 || !strings.Contains(notes[0], "rate-limited 60 messages seq=6-70") {
		t.Errorf("rate-limit notes = %q, want one for 60 messages seq=6-70", notes)
	}
	if got := len(d.lines("calm", "b")); got != 6 {
		t.Errorf("calm host has %d lines, want 6", got)
	}
	st := d.srv.Stats()
	if st.RateLimited != 60 || st.Lost != 0 {
		t.Errorf("RateLimited %d Lost %d, want 60 and 0 (limited messages are not gaps)", st.RateLimited, st.Lost)
	}
	if diff := cmp.Diff([]HostCount{{"flood", 60}}, d.srv.RateLimitedHosts(10)); diff != "" {
		t.Errorf("RateLimitedHosts (-want +got):\n%s", diff)
	}
}

// TestRestartMidBoot checks that a collector restarted in the middle of a
// boot, with a state file, files the rest under the same host and boot and
// counts what it missed as a gap.
func TestRestartMidBoot(t *testing.T) {
	root := t.TempDir()
	state := filepath.Join(root, store.StateDir, "sources")
	a := newDirect(t, &Server{Store: &store.Store{Root: root}, StateFile: state})
	a.msg(addr(1), 0, announceText("box", "b1"))
	a.msg(addr(1), 1, "before restart")
	a.stop()

	b := newDirect(t, &Server{Store: &store.Store{Root: root}, StateFile: state})
	b.msg(addr(1), 4, "after restart") // 2-3 sent while it was down
	b.msg(addr(2), 0, "a sender the first never heard")
	b.stop()
	want := []string{
		"6 seq=0 ts=1.000000 " + announceText("box", "b1"),
		"6 seq=1 ts=1.001000 before restart",
		"lastgaspd: gap seq=2-3 lost=2",
		"6 seq=4 ts=1.004000 after restart",
	}
	if diff := cmp.Diff(want, b.lines("box", "b1")); diff != "" {
		t.Errorf("box's log across the restart (-want +got):\n%s", diff)
	}
	if st := b.srv.Stats(); st.HostsRestored != 1 || st.Lost != 2 {
		t.Errorf("restored %d lost %d, want 1 and 2", st.HostsRestored, st.Lost)
	}
}

func TestMaxHostsForgets(t *testing.T) {
	d := newDirect(t, &Server{MaxHosts: 10})
	for i := range 25 {
		d.msg(addr(i), 0, announceText(fmt.Sprintf("h%d", i), "b"))
	}
	d.stop()
	st := d.srv.Stats()
	if st.Hosts != 10 || st.HostsForgotten != 15 {
		t.Errorf("Hosts %d HostsForgotten %d, want 10 and 15", st.Hosts, st.HostsForgotten)
	}
	for i := range 25 {
		if got := d.lines(fmt.Sprintf("h%d", i), "b"); len(got) != 1 {
			t.Errorf("h%d: %d lines, want its announcement", i, len(got))
		}
	}
}

func TestAnnouncementRefused(t *testing.T) {
	pin, err := ParsePin("db-*=10.0.0.0/8")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, host, boot string
	}{
		{"pinned host from another network", "db-1", "b"},
		{"reserved boot crash", "box", "crash"},
		{"reserved boot unknown", "box", "boot-unknown"},
		{"host name the store refuses", "../etc", "b"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := newDirect(t, &Server{Pins: []Pin{pin}, AnnounceTimeout: time.Millisecond})
			d.msg(addr(1), 0, announceText(tt.host, tt.boot))
			d.now = d.now.Add(time.Second)
			d.stop()
			if st := d.srv.Stats(); st.Refused != 1 || st.Announcements != 0 {
				t.Errorf("Refused %d Announcements %d, want 1 and 0", st.Refused, st.Announcements)
			}
			if got := d.lines("127.1.0.1", ""); len(got) != 2 {
				t.Errorf("lines under the source address: %q, want the note and the line", got)
			}
		})
	}
	d := newDirect(t, &Server{Pins: []Pin{pin}})
	d.msg(&net.UDPAddr{IP: net.IPv4(10, 1, 2, 3), Port: 6665}, 0, announceText("db-1", "b"))
	d.stop()
	if st := d.srv.Stats(); st.Announcements != 1 {
		t.Errorf("pinned host from its network: Announcements %d, want 1", st.Announcements)
	}
}

func TestClaimConflict(t *testing.T) {
	d := newDirect(t, &Server{})
	real, spoof := addr(1), addr(2)
	d.msg(real, 0, announceText("box", "b1"))
	d.msg(spoof, 0, announceText("box", "b1"))
	d.msg(real, 1, "still here")
	d.stop()
	st := d.srv.Stats()
	if st.Conflicts < 1 {
		t.Errorf("Conflicts = %d, want at least 1", st.Conflicts)
	}
	notes := 0
	for _, l := range d.lines("box", "b1") {
		if strings.Contains(l, "host name also claimed by") {
			notes++
		}
	}
	if notes != 1 {
		t.Errorf("%d conflict notes in box's log, want 1", notes)
	}
}

// TestUserdataBinds checks binding by host= and boot= userdata entries,
// which Linux 6.9+ puts on every message: a collector that missed the
// announcement still files the stream.
func TestUserdataBinds(t *testing.T) {
	d := newDirect(t, &Server{})
	d.send(addr(1), wire.Packet{Extended: true, Level: 4, Seq: 900, Text: "late in the boot", Dict: []string{"host=box", "boot=b7"}})
	d.send(addr(1), wire.Packet{Extended: true, Level: 4, Seq: 901, Text: "more", Dict: []string{"host=box", "boot=b7"}})
	d.stop()
	if got := d.lines("box", "b7"); len(got) != 2 {
		t.Errorf("box/b7 = %q, want both messages", got)
	}
	if st := d.srv.Stats(); st.Announcements != 1 {
		t.Errorf("Announcements = %d, want 1 (the second message is the same binding)", st.Announcements)
	}
}

func TestStateLine(t *testing.T) {
	sv := saved{key: netip.MustParseAddrPort("[fe80::1%eth0]:6665"), host: "fe80::1%eth0", fallback: true, noted: true,
		st: wire.State{Started: true, Next: 17, LastTS: 123456, Release: "6.1.0-28-amd64", Base: 5, Fill: 3}, lastHeard: 42}
	line := string(appendSaved(nil, sv))
	if want := "[fe80::1%eth0]:6665 fe80::1%eth0 - sfn 17 123456 6.1.0-28-amd64 42 5 3\n"; line != want {
		t.Errorf("appendSaved = %q, want %q", line, want)
	}
	// A v1 line (before the replay's backfill state) still reads.
	v1, err := parseSaved("127.0.0.1:6665 box b1 sn 17 123456 6.1.0-28-amd64 42")
	if want := (wire.State{Started: true, Next: 17, LastTS: 123456, Release: "6.1.0-28-amd64"}); err != nil || v1.st != want {
		t.Errorf("parseSaved(v1 line) = %+v, %v; want state %+v", v1, err, want)
	}
	for _, bad := range []string{
		"127.0.0.1:6665 ../x b s 1 1 - 1",
		"127.0.0.1:6665 box crash s 1 1 - 1",
		"127.0.0.1:6665 - b s 1 1 - 1",
		"127.0.0.1:6665 box b x 1 1 - 1",
		"127.0.0.1:6665 box b s -1 1 - 1",
		"127.0.0.1 box b s 1 1 - 1",
		"127.0.0.1:6665 fe80::1 - s 1 1 - 1", // an address as host only for fallback
		"127.0.0.1:6665 box b s 1 1 - 1 5",   // base without fill
		"127.0.0.1:6665 box b s 1 1 - 1 x 0",
	} {
		if _, err := parseSaved(bad); err == nil {
			t.Errorf("parseSaved(%q) = nil error, want one", bad)
		}
	}
}

func FuzzStateLine(f *testing.F) {
	f.Add("127.0.0.1:6665 box b1 sn 17 123456 6.1.0-28-amd64 42")
	f.Add("[::1]:6665 - - - 0 0 - 0")
	f.Add("127.0.0.1:6665 box b1 s 400 3000000 - 42 395 395")
	f.Fuzz(func(t *testing.T, line string) {
		sv, err := parseSaved(line)
		if err != nil {
			return
		}
		back, err := parseSaved(strings.TrimSuffix(string(appendSaved(nil, sv)), "\n"))
		if err != nil || back != sv {
			t.Fatalf("round trip of %q: %+v, %v; want %+v", line, back, err, sv)
		}
	})
}

// BenchmarkFleet feeds one ingest 65,536 hosts in turn at 150k messages a
// second of simulated time, flushing as Serve does: the per-message cost of
// the fleet-scale path (identity lookup, heavy state shed and attached,
// batching, store writes).
func BenchmarkFleet(b *testing.B) {
	const hosts = 1 << 16
	srv := &Server{Store: &store.Store{Root: b.TempDir()}}
	in := srv.newIngest()
	now := time.Now()
	addrs := make([]*net.UDPAddr, hosts)
	for i := range addrs {
		addrs[i] = &net.UDPAddr{IP: net.IPv4(127, 1, byte(i>>8), byte(i)), Port: 6665}
		in.datagram(now, addrs[i], wire.Format(wire.Packet{Extended: true, Level: 6, Seq: 0, Text: fmt.Sprintf("lastgasp: netconsole armed host=h%d boot=b", i)}), false)
	}
	in.flush(now, true)
	step := time.Second / 150000
	nextFlush := now.Add(in.flushInterval)
	text := strings.Repeat("x", 100)
	b.ReportAllocs()
	b.ResetTimer()
	for n := range b.N {
		h := n % hosts
		seq := uint64(n/hosts + 1)
		now = now.Add(step)
		in.datagram(now, addrs[h], wire.Format(wire.Packet{Extended: true, Level: 6, Seq: seq, TimestampUsec: seq * 1000, Text: text}), false)
		if !now.Before(nextFlush) {
			in.flush(now, false)
			nextFlush = now.Add(in.flushInterval)
		}
	}
	in.shutdown(now)
	b.StopTimer()
	b.ReportMetric(float64(srv.Store.Stats().Opens)/(float64(b.N)/150000), "opens/s")
	srv.Store.Close()
}

// BenchmarkIdentityMemory measures the heap one sender's identity costs:
// b.N senders, each announcing itself and sending one message, with heavy
// state for few of them (as with a large, mostly quiet fleet). Reported as
// B/host; the README's memory budget comes from it.
func BenchmarkIdentityMemory(b *testing.B) {
	srv := &Server{Store: &store.Store{Root: b.TempDir()}, MaxActive: 1024, RateLimit: -1}
	in := srv.newIngest()
	in.startWriter()
	now := time.Now()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	boot := "1b6f0a2c-0d2f-4c4e-9c1e-3f1b2a4c5d6e"
	for i := range b.N {
		a := &net.UDPAddr{IP: net.IPv4(10, byte(i>>16), byte(i>>8), byte(i)), Port: 6665}
		in.datagram(now, a, wire.Format(wire.Packet{Extended: true, Level: 6, Seq: 391, TimestampUsec: 2_500_000, Text: announceText(fmt.Sprintf("52-54-00-%02x-%02x-%02x", byte(i>>16), byte(i>>8), byte(i)), boot)}), false)
		in.datagram(now, a, wire.Format(wire.Packet{Extended: true, Level: 6, Seq: 392, TimestampUsec: 2_500_100, Text: "after"}), false)
		if i%4096 == 4095 {
			in.flush(now.Add(2*time.Second), true) // write the batches out
		}
	}
	in.flush(now.Add(2*time.Second), true)
	for in.active.Len() > 0 {
		in.shed(now, in.active.Front().Value.(*ident), true)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if p := os.Getenv("HEAPPROFILE"); p != "" {
		f, _ := os.Create(p)
		pprof.WriteHeapProfile(f)
		f.Close()
	}
	b.ReportMetric(float64(after.HeapInuse-before.HeapInuse)/float64(b.N), "B/host")
	runtime.KeepAlive(in)
	in.stopWriter()
	srv.Store.Close()
}

// TestNamesPerSender is the hostile sender: one source announcing
// a new host name with every datagram. Only MaxNamesPerSender directories
// are made; a reboot keeping its name is not a new name.
func TestNamesPerSender(t *testing.T) {
	d := newDirect(t, &Server{MaxNamesPerSender: 3})
	src := addr(1)
	for i := range 100 {
		d.msg(src, uint64(i), announceText(fmt.Sprintf("fake-%d", i), "b"))
	}
	d.stop()
	st := d.srv.Stats()
	if st.Announcements != 3 || st.Refused != 97 {
		t.Errorf("Announcements %d Refused %d, want 3 and 97", st.Announcements, st.Refused)
	}
	ents, _ := os.ReadDir(d.srv.Store.Root)
	if len(ents) != 3 {
		t.Errorf("%d host directories, want 3", len(ents))
	}

	d = newDirect(t, &Server{MaxNamesPerSender: 1})
	for boot := range 5 {
		// Seq 0 with another timestamp: a reboot each time.
		ts := uint64(boot+1) * 7
		d.send(src, wire.Packet{Extended: true, Level: 6, Seq: 0, TimestampUsec: ts, Text: announceText("box", fmt.Sprintf("boot%d", boot))})
		d.send(src, wire.Packet{Extended: true, Level: 6, Seq: 1, TimestampUsec: ts + 1, Text: "up"})
	}
	d.stop()
	if st := d.srv.Stats(); st.Refused != 0 || st.Announcements != 5 {
		t.Errorf("reboots under one name: Refused %d Announcements %d, want 0 and 5", st.Refused, st.Announcements)
	}
}

// TestRestartTwoSockets checks that each socket's senders are saved to a
// file of their own and all come back, whichever socket hears them next.
func TestRestartTwoSockets(t *testing.T) {
	root := t.TempDir()
	state := filepath.Join(root, store.StateDir, "sources")
	a := newDirect(t, &Server{Store: &store.Store{Root: root}, StateFile: state})
	second := a.srv.newIngest()
	a.msg(addr(1), 0, announceText("one", "b"))
	second.datagram(a.now, addr(2), wire.Format(wire.Packet{Extended: true, Level: 6, Seq: 0, TimestampUsec: 1_000_000, Text: announceText("two", "b")}), false)
	second.shutdown(a.now)
	a.stop()
	if _, err := os.Stat(state + ".1"); err != nil {
		t.Fatalf("second socket's state file: %v", err)
	}
	b := newDirect(t, &Server{Store: &store.Store{Root: root}, StateFile: state})
	b.msg(addr(2), 3, "two, after the restart") // 1-2 missed
	b.msg(addr(1), 1, "one, after the restart")
	b.stop()
	if st := b.srv.Stats(); st.HostsRestored != 2 || st.Lost != 2 {
		t.Errorf("restored %d lost %d, want 2 and 2", st.HostsRestored, st.Lost)
	}
	if got := b.lines("two", "b"); len(got) != 3 {
		t.Errorf("two's log = %q, want announcement, gap, line", got)
	}
}

// TestShedSendersInOrder: more bound senders than heavy states, heard in
// turn. Their in-order messages are delivered from their identities
// (wire.State.Advance) without shedding another sender's heavy state each;
// a gap, a fragmented message and a reboot still go through a Host and
// come out as before.
func TestShedSendersInOrder(t *testing.T) {
	const senders, rounds = 6, 20
	d := newDirect(t, &Server{MaxActive: 2})
	for i := range senders {
		d.msg(addr(i), 0, announceText(fmt.Sprintf("h%d", i), "b"))
	}
	for seq := uint64(1); seq <= rounds; seq++ {
		for i := range senders {
			switch {
			case i == 1 && seq == 10:
				continue // lost: a gap
			case i == 2 && seq == 12:
				body := strings.Repeat("f", 30) + "\n"
				for off := 0; off < len(body); off += 16 {
					p := wire.Packet{Extended: true, Level: 6, Seq: seq, TimestampUsec: 1_000_000 + seq*1000,
						FragOffset: off, FragTotal: len(body), Text: body[off:min(off+16, len(body))]}
					d.send(addr(i), p)
				}
				continue
			}
			d.msg(addr(i), seq, fmt.Sprintf("m%d", seq))
		}
	}
	d.stop()
	st := d.srv.Stats()
	if st.Messages != senders*(rounds+1)-1 || st.Lost != 1 || st.Gaps != 1 || st.Dropped != 0 {
		t.Errorf("Stats: messages %d lost %d gaps %d dropped %d, want %d, 1, 1, 0", st.Messages, st.Lost, st.Gaps, st.Dropped, senders*(rounds+1)-1)
	}
	// Heavy states go to new senders, the gap and the fragments: a few
	// evictions, not one per datagram.
	if st.Evictions > 3*senders {
		t.Errorf("Evictions = %d, want at most %d (in-order messages need no heavy state)", st.Evictions, 3*senders)
	}
	for i := range senders {
		lines := d.lines(fmt.Sprintf("h%d", i), "b")
		want := rounds + 1 // h1: the gap note in seq 10's place
		if len(lines) != want {
			t.Errorf("h%d: %d lines, want %d:\n%s", i, len(lines), want, strings.Join(lines, "\n"))
		}
	}
	h1 := d.lines("h1", "b")
	if h1[10] != "lastgaspd: gap seq=10-10 lost=1" || h1[11] != "6 seq=11 ts=1.011000 m11" {
		t.Errorf("h1 around its gap: %q, want the gap note, then seq 11", h1[9:12])
	}
	if h2 := d.lines("h2", "b"); h2[12] != "6 seq=12 ts=1.012000 "+strings.Repeat("f", 30) {
		t.Errorf("h2 seq 12 = %q, want the reassembled message", h2[12])
	}
}

// TestFlushVisitsOnlyWhatIsDue: a flush hands the writer the batches whose
// write delay has passed, oldest first, and leaves younger ones waiting; a
// batch reaching WriteBytes goes at once. Timeouts are run for the senders
// holding something only (ingest.timed), and a held message is still
// delivered past its gap when its wait is over.
func TestFlushVisitsOnlyWhatIsDue(t *testing.T) {
	d := newDirect(t, &Server{WriteDelay: time.Second, WriteBytes: 400})
	for i := range 3 {
		d.msg(addr(i), 0, announceText(fmt.Sprintf("h%d", i), "b"))
	}
	d.in.flush(d.now, true)
	t0 := d.now
	waiting := func(i int) bool { return d.in.idents[sourceKey(addr(i))].o != nil }
	d.msg(addr(0), 1, "one")
	d.now = t0.Add(600 * time.Millisecond)
	d.msg(addr(1), 1, "one")
	if len(d.in.timed) != 0 {
		t.Errorf("%d senders on timed after in-order messages, want 0", len(d.in.timed))
	}
	d.in.flush(t0.Add(500*time.Millisecond), false)
	if !waiting(0) || !waiting(1) {
		t.Errorf("before the delay: h0 waiting %v, h1 waiting %v; want both", waiting(0), waiting(1))
	}
	d.in.flush(t0.Add(1100*time.Millisecond), false)
	if waiting(0) || !waiting(1) {
		t.Errorf("after h0's delay: h0 waiting %v, h1 waiting %v; want only h1", waiting(0), waiting(1))
	}
	d.in.flush(t0.Add(1700*time.Millisecond), false)
	if waiting(1) {
		t.Errorf("after h1's delay: h1 still waiting")
	}
	for seq := uint64(1); waiting(2) || seq == 1; seq++ {
		if seq > 20 {
			t.Fatalf("h2's batch not written at WriteBytes")
		}
		d.msg(addr(2), seq, strings.Repeat("b", 60))
	}
	d.now = t0.Add(2 * time.Second)
	d.msg(addr(0), 4, "four") // 2-3 lost: held for the reorder wait
	if len(d.in.timed) != 1 {
		t.Errorf("%d senders on timed with one message held, want 1", len(d.in.timed))
	}
	d.in.flush(d.now.Add(5*time.Second), false)
	if len(d.in.timed) != 0 {
		t.Errorf("%d senders on timed after the wait, want 0", len(d.in.timed))
	}
	d.stop()
	got := d.lines("h0", "b")
	want := []string{"6 seq=0 ts=1.000000 " + announceText("h0", "b"), "6 seq=1 ts=1.001000 one", "lastgaspd: gap seq=2-3 lost=2", "6 seq=4 ts=1.004000 four"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("h0's log (-want +got):\n%s", diff)
	}
}
