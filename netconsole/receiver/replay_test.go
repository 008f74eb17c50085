package receiver

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/lastgasp/lastgasp/netconsole/replay"
	"github.com/lastgasp/lastgasp/netconsole/wire"
	"github.com/lastgasp/lastgasp/store"
)

// kmsgRecords is a replay.Source of /dev/kmsg reads.
type kmsgRecords []string

func (k *kmsgRecords) Read(b []byte) (int, error) {
	if len(*k) == 0 {
		return 0, syscall.EAGAIN
	}
	n := copy(b, (*k)[0])
	*k = (*k)[1:]
	return n, nil
}

// TestServeReplay sends a boot's live stream from seq 10 (the kernel's
// netconsole target), then the agent's replay of /dev/kmsg from the same
// socket, and checks the boot's log: the replayed start is there, marked,
// once; no gap, no reboot; a ring buffer that wrapped is one counted gap.
func TestServeReplay(t *testing.T) {
	for _, tt := range []struct {
		name      string
		first     uint64 // oldest record left in the kernel's buffer
		wantGap   []string
		wantGaps  uint64
		wantLines int
	}{
		{name: "whole buffer", first: 0, wantLines: 15},
		{name: "wrapped ring buffer", first: 4, wantGap: []string{"lastgaspd: gap seq=0-3 lost=4"}, wantGaps: 1, wantLines: 12},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ts := startServer(t, &Server{})
			// The target's source address and port, shared by the
			// kernel (netpoll) and the agent's replay.
			src, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			to, err := net.ResolveUDPAddr("udp", ts.addr)
			if err != nil {
				t.Fatal(err)
			}
			// What the kernel logs, as /dev/kmsg shows it.
			text := func(q uint64) string {
				if q == 10 {
					return announceLine
				}
				return fmt.Sprintf("record %d", q)
			}
			var kmsg kmsgRecords
			for q := tt.first; q <= 14; q++ {
				kmsg = append(kmsg, fmt.Sprintf("6,%d,%d,-;%s\n", q, 1_000_000+q*1000, text(q)))
			}
			for q := uint64(10); q <= 14; q++ { // live, from the armed target on
				if _, err := src.WriteTo([]byte(ext(q, text(q))), to); err != nil {
					t.Fatal(err)
				}
			}
			ts.waitStats(t, "the live stream", func(st Stats) bool { return st.Messages == 5 })
			res, err := replay.Run(context.Background(), &kmsg, []replay.Dest{{Conn: src, To: to}}, replay.Config{})
			if err != nil {
				t.Fatal(err)
			}
			if res.Overwritten != tt.first {
				t.Errorf("Overwritten = %d, want %d", res.Overwritten, tt.first)
			}
			// The first record comes twice (replay.Config.Prime).
			ts.waitStats(t, "the replay", func(st Stats) bool { return st.Messages+st.Duplicates == 5+15-tt.first+1 })
			ts.stop()

			var want []string
			for q := uint64(10); q <= 14; q++ {
				want = append(want, fmt.Sprintf("6 seq=%d ts=1.%03d000 %s", q, q, text(q)))
			}
			want = append(want, tt.wantGap...)
			for q := tt.first; q < 10; q++ {
				want = append(want, fmt.Sprintf("6r seq=%d ts=1.%03d000 %s", q, q, text(q)))
			}
			got := readLog(t, ts.srv.Store, "52-54-00-12-34-56", "1b6f0a")
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("log (-want +got):\n%s", diff)
			}
			if len(got) != tt.wantLines {
				t.Errorf("%d lines, want %d", len(got), tt.wantLines)
			}
			st := ts.srv.Stats()
			if st.Gaps != tt.wantGaps || st.Reboots != 0 || st.Duplicates != 6 {
				t.Errorf("Stats: gaps %d reboots %d duplicates %d, want %d, 0, 6 (10-14 and the first record's second copy)", st.Gaps, st.Reboots, st.Duplicates, tt.wantGaps)
			}
		})
	}
}

// TestReplayAcrossRestart checks that where a boot's backfill stands
// survives a collector restart (the state file): the replay goes on where
// it was, and what was backfilled is not written twice.
func TestReplayAcrossRestart(t *testing.T) {
	root := t.TempDir()
	state := filepath.Join(root, store.StateDir, "sources")
	rep := func(d *direct, seq uint64) {
		d.send(addr(1), wire.Packet{Extended: true, Replay: true, Level: 6, Seq: seq, TimestampUsec: 1_000_000 + seq*1000, Text: fmt.Sprintf("kmsg %d", seq)})
	}
	a := newDirect(t, &Server{Store: &store.Store{Root: root}, StateFile: state})
	a.msg(addr(1), 10, announceText("box", "b1"))
	a.msg(addr(1), 11, "live")
	rep(a, 0)
	rep(a, 1)
	a.stop()

	b := newDirect(t, &Server{Store: &store.Store{Root: root}, StateFile: state})
	for q := uint64(1); q <= 3; q++ {
		rep(b, q) // 1 again, then 2 and 3
	}
	b.stop()
	want := []string{
		"6 seq=10 ts=1.010000 " + announceText("box", "b1"),
		"6 seq=11 ts=1.011000 live",
		"6r seq=0 ts=1.000000 kmsg 0",
		"6r seq=1 ts=1.001000 kmsg 1",
		"6r seq=2 ts=1.002000 kmsg 2",
		"6r seq=3 ts=1.003000 kmsg 3",
	}
	if diff := cmp.Diff(want, b.lines("box", "b1")); diff != "" {
		t.Errorf("box's log across the restart (-want +got):\n%s", diff)
	}
	if st := b.srv.Stats(); st.Duplicates != 1 || st.Reboots != 0 || st.Gaps != 0 {
		t.Errorf("after the restart: duplicates %d reboots %d gaps %d, want 1, 0, 0", st.Duplicates, st.Reboots, st.Gaps)
	}
}
