package journal

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/lastgasp/lastgasp/netconsole/journal/journaltest"
	"github.com/lastgasp/lastgasp/netconsole/sink"
)

func runSink(t *testing.T, s *Sink) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run = %v, want nil", err)
		}
	})
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestNew(t *testing.T) {
	for _, tt := range []struct {
		in, want string
	}{
		{"http://127.0.0.1:19532", "http://127.0.0.1:19532/upload"},
		{"http://127.0.0.1:19532/", "http://127.0.0.1:19532/upload"},
		{"https://logs.example:19532/upload", "https://logs.example:19532/upload"},
		{"tcp://127.0.0.1:19532", ""},
		{"127.0.0.1:19532", ""},
		{"http://127.0.0.1:19532/upload?x=1", ""},
		{"http:///upload", ""},
	} {
		s, err := New(tt.in)
		if tt.want == "" {
			if err == nil {
				t.Errorf("New(%q) = %q, want an error", tt.in, s.URL)
			}
			continue
		}
		if err != nil || s.URL != tt.want {
			t.Errorf("New(%q) = %v, %v, want %q", tt.in, s, err, tt.want)
		}
	}
}

func TestQueueFull(t *testing.T) {
	s := &Sink{URL: "http://127.0.0.1:1/upload", QueueSize: 3}
	for i := range 5 {
		s.Send(sink.Message{Host: "h", Text: fmt.Sprint(i)})
	}
	if got, want := s.Stats(), (Stats{Enqueued: 3, Dropped: 2, Queued: 3}); got != want {
		t.Errorf("Stats() = %+v, want %+v", got, want)
	}
}

// TestRemote sends messages to a real systemd-journal-remote that is down
// at first, and reads them back with journalctl.
func TestRemote(t *testing.T) {
	addr := journaltest.FreeAddr(t) // nothing listens yet
	s, err := New("http://" + addr)
	if err != nil {
		t.Fatal(err)
	}
	s.MinBackoff, s.MaxBackoff, s.Logf = 20*time.Millisecond, 100*time.Millisecond, t.Logf
	runSink(t, s)
	boot := "1b6f0a2e-3d4c-5b6a-7988-0123456789ab"
	msgs := []sink.Message{
		{Host: "box1", Boot: boot, Extended: true, Seq: 811, TimestampUsec: 3100000, Level: 6, Release: "6.1.0-28-amd64",
			Received: t0, Text: "sysrq: Trigger a crash"},
		{Host: "box1", Boot: boot, Extended: true, Seq: 812, TimestampUsec: 3163223, Level: 0, Release: "6.1.0-28-amd64",
			Received: t0.Add(time.Millisecond), Text: "Kernel panic - not syncing: sysrq triggered crash"},
		// Legacy text from another host, unknown boot, with a newline and
		// an attempt to forge a field.
		{Host: "10.0.2.15", Level: 4, Received: t0.Add(2 * time.Millisecond), Text: "line one\nPRIORITY=0\n"},
	}
	for _, m := range msgs {
		s.Send(m)
	}
	waitFor(t, "failed POSTs while the remote is down", func() bool { return s.Stats().PostFailures >= 2 })
	r := journaltest.Start(t, addr)
	es := r.WaitEntries(len(msgs), 20*time.Second)
	type got struct {
		Host, BootID, Boot, Seq, KernelTS, Priority, Ident, Transport, Message, Realtime, Monotonic, Release string
	}
	var gots []got
	for _, e := range es {
		gots = append(gots, got{e["_HOSTNAME"], e["_BOOT_ID"], e["LASTGASP_BOOT"], e["LASTGASP_SEQ"], e["LASTGASP_KERNEL_TS"],
			e["PRIORITY"], e["SYSLOG_IDENTIFIER"], e["_TRANSPORT"], e["MESSAGE"], e["__REALTIME_TIMESTAMP"],
			e["__MONOTONIC_TIMESTAMP"], e["LASTGASP_RELEASE"]})
	}
	// t0 is 2026-11-25T16:04:05.123456Z: 1795622645 s (date -u -d ... +%s).
	want := []got{
		{"box1", "1b6f0a2e3d4c5b6a79880123456789ab", boot, "811", "3100000", "6", "kernel", "kernel",
			"sysrq: Trigger a crash", "1795622645123456", "3100000", "6.1.0-28-amd64"},
		{"box1", "1b6f0a2e3d4c5b6a79880123456789ab", boot, "812", "3163223", "0", "kernel", "kernel",
			"Kernel panic - not syncing: sysrq triggered crash", "1795622645124456", "3163223", "6.1.0-28-amd64"},
		{"10.0.2.15", "00000000000000000000000000000000", "", "", "", "4", "kernel", "kernel",
			"line one\nPRIORITY=0\n", "1795622645125456", "0", ""},
	}
	if diff := cmp.Diff(want, gots); diff != "" {
		t.Errorf("journal entries (-want +got):\n%s", diff)
	}
	st := s.Stats()
	if st.Sent != 3 || st.Enqueued != 3 || st.Dropped != 0 || st.Rejected != 0 || st.Queued != 0 {
		t.Errorf("Stats() = %+v, want 3 enqueued and sent, none dropped, rejected or queued", st)
	}
}

// TestRemoteRefuses checks that a batch the remote refuses (404 for a path
// other than /upload) is counted and not sent again.
func TestRemoteRefuses(t *testing.T) {
	r := journaltest.Start(t, "")
	s := &Sink{URL: r.URL + "/not-upload", Logf: t.Logf}
	runSink(t, s)
	s.Send(sink.Message{Host: "box1", Level: 6, Received: t0, Text: "refused"})
	waitFor(t, "the refusal", func() bool { return s.Stats().Rejected == 1 })
	time.Sleep(100 * time.Millisecond) // a retry would show as a second POST
	if st := s.Stats(); st.Posts != 1 || st.PostFailures != 0 || st.Sent != 0 || st.Queued != 0 {
		t.Errorf("Stats() = %+v, want one POST, refused, not retried", st)
	}
}

// BenchmarkRemote measures entries per second through a Sink into a real
// systemd-journal-remote on loopback (POST, parse, journal file write).
func BenchmarkRemote(b *testing.B) {
	r := journaltest.Start(b, "")
	s := &Sink{URL: r.URL + "/upload", QueueSize: 1 << 16}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer func() { cancel(); <-done }()
	m := sink.Message{Host: "box1", Boot: "1b6f0a2e-3d4c-5b6a-7988-0123456789ab", Extended: true, Level: 6, Received: t0,
		Text: "e1000e 0000:00:19.0 eth0: NIC Link is Up 1000 Mbps Full Duplex, Flow Control: Rx/Tx"}
	b.ResetTimer()
	for i := range b.N {
		m.Seq, m.TimestampUsec = uint64(i), uint64(i)*10
		for s.Stats().Queued >= 1<<15 {
			time.Sleep(time.Millisecond) // stay below the queue bound: measure the remote, not drops
		}
		s.Send(m)
	}
	for s.Stats().Sent+s.Stats().Rejected < uint64(b.N) {
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
	if st := s.Stats(); st.Dropped != 0 || st.Rejected != 0 {
		b.Fatalf("Stats() = %+v", st)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "entries/s")
}
