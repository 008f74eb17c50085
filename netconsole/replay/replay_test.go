package replay

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/lastgasp/lastgasp/netconsole/wire"
)

// records is a Source of canned /dev/kmsg reads: a record, or an error.
type records []any

func (r *records) Read(b []byte) (int, error) {
	if len(*r) == 0 {
		return 0, syscall.EAGAIN
	}
	x := (*r)[0]
	*r = (*r)[1:]
	if err, ok := x.(error); ok {
		return 0, err
	}
	return copy(b, x.(string)), nil
}

// TestRunLoopback replays records over real UDP sockets on loopback and
// checks what a receiver gets: every record, in order, marked, from the
// address the sending socket is bound to, and the overwritten ones counted.
func TestRunLoopback(t *testing.T) {
	rx1, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer rx1.Close()
	rx2, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer rx2.Close()
	// The kernel target's source, 127.0.0.2:<free port>, in user space.
	tx, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2)})
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()

	long := "6,12,300,-;" + strings.Repeat("y", 1500) + "\n"
	src := &records{
		"6,3,100,-;first kept\n", // 0..2 overwritten before the open
		"6,4,110,-;second\n SUBSYSTEM=net\n",
		syscall.EPIPE, // 5..9 overwritten while reading
		"6,10,200,-;after the wrap\n",
		"not a record", // skipped, counted
		"6,11,210,c;cont\n",
		long,
	}
	dests := []Dest{{Conn: tx, To: rx1.LocalAddr()}, {Conn: tx, To: rx2.LocalAddr(), Release: "6.12.0"}}
	res, err := Run(context.Background(), src, dests, Config{Rate: 100000, Burst: 2})
	if err != nil {
		t.Fatal(err)
	}
	// Per receiver: 4 short records, 2 fragments of the long one, and the
	// first record's second copy (Config.Prime).
	want := Result{Records: 5, First: 3, Last: 12, Overwritten: 3 + 5, Datagrams: 2 * (4 + 2 + 1), Malformed: 1}
	if diff := cmp.Diff(want, res); diff != "" {
		t.Errorf("Result (-want +got):\n%s", diff)
	}
	for i, rx := range []*net.UDPConn{rx1, rx2} {
		var seqs []uint64
		rx.SetReadDeadline(time.Now().Add(2 * time.Second))
		buf := make([]byte, 2048)
		for range 7 {
			n, from, err := rx.ReadFromUDP(buf)
			if err != nil {
				t.Fatalf("receiver %d: %v", i, err)
			}
			if from.String() != tx.LocalAddr().String() {
				t.Errorf("receiver %d: datagram from %v, want %v", i, from, tx.LocalAddr())
			}
			p, err := wire.Parse(buf[:n])
			if err != nil || !p.Replay {
				t.Fatalf("receiver %d: %q: %+v, %v", i, buf[:n], p, err)
			}
			if i == 1 && p.Release != "6.12.0" {
				t.Errorf("receiver 1: release %q, want 6.12.0", p.Release)
			}
			seqs = append(seqs, p.Seq)
		}
		if diff := cmp.Diff([]uint64{3, 3, 4, 10, 11, 12, 12}, seqs); diff != "" {
			t.Errorf("receiver %d: seqs (-want +got):\n%s", i, diff)
		}
	}
}

// TestRunPaced checks the rate: 200 datagrams at 1000/s take ~0.2 s.
func TestRunPaced(t *testing.T) {
	rx, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	rx.SetReadBuffer(1 << 20)
	tx, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	var src records
	for i := range 200 {
		src = append(src, "6,"+strconv.Itoa(i)+",1,-;x\n")
	}
	t0 := time.Now()
	res, err := Run(context.Background(), &src, []Dest{{Conn: tx, To: rx.LocalAddr()}}, Config{Rate: 1000, Burst: 10, Prime: -1})
	if err != nil || res.Datagrams != 200 {
		t.Fatalf("Run = %+v, %v", res, err)
	}
	if d := time.Since(t0); d < 180*time.Millisecond {
		t.Errorf("200 datagrams at 1000/s took %v, want about 200ms", d)
	}
}

// TestRunStops checks that a read error and a cancelled context end a
// replay with an error naming it.
func TestRunStops(t *testing.T) {
	broken := errors.New("device gone")
	src := &records{"6,0,1,-;x\n", broken}
	if _, err := Run(context.Background(), src, nil, Config{}); !errors.Is(err, broken) {
		t.Errorf("Run with a read error = %v, want %v", err, broken)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Run(ctx, &records{"6,0,1,-;x\n"}, nil, Config{}); !errors.Is(err, context.Canceled) {
		t.Errorf("Run cancelled = %v", err)
	}
	res, err := Run(context.Background(), &records{"6,0,1,-;x\n", io.EOF, "6,1,1,-;y\n"}, nil, Config{})
	if err != nil || res.Records != 1 {
		t.Errorf("Run stopping at io.EOF = %+v, %v", res, err)
	}
}

// TestKmsg reads this machine's own /dev/kmsg (read only) and parses
// every record: the kernel's format, not a copy of it.
func TestKmsg(t *testing.T) {
	k, err := OpenKmsg("/dev/kmsg")
	if errors.Is(err, os.ErrPermission) || errors.Is(err, os.ErrNotExist) {
		t.Skipf("no readable /dev/kmsg: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	buf := make([]byte, 8192)
	n, prev := 0, int64(-1)
	for n < 100000 {
		m, err := k.Read(buf)
		if errors.Is(err, syscall.EPIPE) {
			continue
		}
		if errors.Is(err, syscall.EAGAIN) {
			break
		}
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		r, err := ParseRecord(buf[:m])
		if err != nil {
			t.Fatalf("record %q: %v", buf[:m], err)
		}
		if int64(r.Seq) <= prev {
			t.Fatalf("seq %d after %d", r.Seq, prev)
		}
		prev = int64(r.Seq)
		n++
	}
	if n == 0 {
		t.Skip("empty kernel log")
	}
	t.Logf("%d records, last seq %d", n, prev)
}
