package agent

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lastgasp/lastgasp/boards"
	"github.com/lastgasp/lastgasp/pstore/ramoops"
	"github.com/lastgasp/lastgasp/pstore/records"
	"github.com/lastgasp/lastgasp/pstore/ring"
	"github.com/lastgasp/lastgasp/pstore/ship"
)

// Names of the records the ring yields: the tail of the kernel log (the
// console record) and the agent's own lines (the pmsg record) of a boot
// that ended uncleanly; N is the half of the ring region they were in.
const (
	ringConsoleName = "console-lastgasp-%d"
	ringPmsgName    = "pmsg-lastgasp-%d"
)

// Markers the agent and its console copier write into the ring.
const (
	markDone     = "done"     // pmsg: the agent's run reached its handoff
	markKexec    = "kexec"    // console: the boot ended in a kexec by the agent
	markShutdown = "shutdown" // console: the copier got SIGTERM (the main system shuts down)
)

// devMem is where the ring region is mapped from.
const devMem = "/dev/mem"

// ringEnv passes the console copier (the agent binary re-executed before
// the handoff) what it needs: "addr:size:half:kmsgseq".
const ringEnv = "LASTGASP_RING_COPIER"

// prevRecord is a record a previous boot left in the ring.
type prevRecord struct {
	half int
	flag uint32 // the header flag that marks it shipped
	rec  records.Record
}

// ringState is the agent's side of the ring: the mapped region, the half
// this boot writes, the records earlier boots left, and the goroutine that
// copies the kernel log into it.
type ringState struct {
	region  []byte
	halves  [2][]byte
	cur     *ring.Ring
	curHalf int
	prev    []prevRecord
	// prevMidRun: a previous boot's agent died before its handoff.
	prevMidRun bool
	desc       string // for the summary line

	stop    chan struct{}
	done    chan struct{}
	lastSeq atomic.Uint64 // the last /dev/kmsg sequence number copied
	stopMu  sync.Mutex
}

// monoStamp formats the time since boot like the kernel log does.
func monoStamp(d time.Duration) string {
	us := d.Microseconds()
	return fmt.Sprintf("[%5d.%06d]", us/1e6, us%1e6)
}

// startRing maps the board's ring region, keeps what the previous boot
// left there as records to ship, formats a half for this boot, and starts
// copying the agent's own lines (pmsg) and the kernel log (console) into
// it. It refuses a region that is not reserved, like ramoops.
func (a *agent) startRing(b *boards.Board, bootID string) {
	t0 := time.Now()
	g := b.Ring
	if !g.Enabled() {
		a.Log.Step("ring", t0, nil, "not configured for this board")
		return
	}
	if err := ramoops.Check(a.Config.Iomem, g.MemAddress, g.MemSize); err != nil {
		a.Log.Step("ring", t0, fmt.Errorf("refusing to map %#x+%#x: %w", g.MemAddress, g.MemSize, err), "")
		return
	}
	region, err := mapRegion(devMem, g.MemAddress, g.MemSize)
	if err != nil {
		a.Log.Step("ring", t0, err, "")
		return
	}
	halves, err := ring.Halves(region)
	if err != nil {
		a.Log.Step("ring", t0, err, "")
		return
	}
	rs := &ringState{region: region, halves: halves}
	var snaps [2]*ring.Snapshot
	var gen uint64
	var found []string
	for i, h := range halves {
		// Parse a copy: the mapping is uncached, and the parser reads
		// every slot.
		s, err := ring.Parse(append([]byte(nil), h...))
		if err != nil {
			found = append(found, fmt.Sprintf("half %d: %v", i, err))
			continue
		}
		snaps[i] = &s
		gen = max(gen, s.Generation)
		found = append(found, fmt.Sprintf("half %d: boot %s generation %d console=%d lines%s pmsg=%d lines%s markers=%v",
			i, s.BootID, s.Generation, len(s.Console.Lines), tornNote(s.Console), len(s.Pmsg.Lines), tornNote(s.Pmsg), append(s.Pmsg.Markers, s.Console.Markers...)))
		if s.BootID == bootID {
			continue // this boot's own (the agent started twice)
		}
		if len(s.Pmsg.Lines) > 0 && !s.Pmsg.HasMarker(markDone) && s.Flags&ring.FlagPmsgShipped == 0 {
			rs.prevMidRun = true
			rs.prev = append(rs.prev, prevRecord{i, ring.FlagPmsgShipped, ringRecord(fmt.Sprintf(ringPmsgName, i), s.BootID, s.Pmsg)})
		}
		clean := s.Console.HasMarker(markKexec) || s.Console.HasMarker(markShutdown)
		if len(s.Console.Lines) > 0 && !clean && s.Flags&ring.FlagConsoleShipped == 0 {
			rs.prev = append(rs.prev, prevRecord{i, ring.FlagConsoleShipped, ringRecord(fmt.Sprintf(ringConsoleName, i), s.BootID, s.Console)})
		}
	}
	// Write the half that holds nothing still to ship; if both do, the
	// older one (its records are lost: said below).
	rs.curHalf = 0
	pending := func(i int) bool {
		for _, p := range rs.prev {
			if p.half == i {
				return true
			}
		}
		return false
	}
	switch {
	case !pending(0):
	case !pending(1):
		rs.curHalf = 1
	case snaps[1].Generation < snaps[0].Generation:
		rs.curHalf = 1
	}
	if pending(rs.curHalf) {
		a.Log.Logf(levelWarn, "ring: both halves hold unshipped records; overwriting boot %s's", snaps[rs.curHalf].BootID)
		rs.prev = dropHalf(rs.prev, rs.curHalf)
	}
	pmsg := int(g.PmsgSize)
	if pmsg == 0 {
		pmsg = len(halves[rs.curHalf]) / 4
	}
	cur, err := ring.Format(halves[rs.curHalf], bootID, gen+1, pmsg, time.Now().Unix())
	if err != nil {
		a.Log.Step("ring", t0, err, "")
		return
	}
	rs.cur = cur
	a.ring = rs
	// The agent's own lines from here on: the pmsg equivalent.
	a.Log.setTee(func(msg string) {
		cur.Append(ring.Pmsg, monoStamp(sinceBoot())+" lastgasp: "+msg)
	})
	rs.startKmsg(a.Config.Kmsg, 0)
	h := cur.Header()
	a.Log.Step("ring", t0, nil, "region %#x+%#x via %s: %s; %d records to ship; this boot writes half %d (generation %d, pmsg %d slots, console %d slots of %d bytes)",
		g.MemAddress, g.MemSize, devMem, strings.Join(found, "; "), len(rs.prev), rs.curHalf, h.Generation, h.PmsgSlots, h.ConsoleSlots, ring.SlotSize)
}

func tornNote(l ring.Lines) string {
	s := ""
	if l.Overwritten {
		s += " (wrapped)"
	}
	if l.Torn {
		s += " (torn)"
	}
	return s
}

func dropHalf(ps []prevRecord, half int) []prevRecord {
	var out []prevRecord
	for _, p := range ps {
		if p.half != half {
			out = append(out, p)
		}
	}
	return out
}

func ringRecord(name, boot string, l ring.Lines) records.Record {
	data := []byte(l.Text())
	typ, backend, id, _, _ := records.ParseName(name)
	return records.Record{Name: name, Type: typ, Backend: backend, ID: id, Data: data, Size: int64(len(data)), BootID: boot}
}

// ringTestPanic panics the kernel mid-run for lastgasp.test_panic=midrun,
// unless the previous boot's agent already died mid-run (this is the boot
// after the test panic).
func (a *agent) ringTestPanic(test boards.Cmdline) {
	if !test.TestPanicMidRun {
		return
	}
	if a.ring != nil && a.ring.prevMidRun {
		a.Log.Infof("test_panic=midrun: the previous boot's agent died mid-run; not panicking")
		return
	}
	a.Log.Logf(levelWarn, "test_panic=midrun: panicking the kernel via sysrq in the middle of the agent's run")
	time.Sleep(100 * time.Millisecond)
	writeSysrq(a.Config.SysrqTrigger)
}

// shipRing uploads the records earlier boots left in the ring, each with
// the boot it came from, and marks each shipped in the ring once the
// collector acknowledged it. It returns the summary's words on how the
// previous boot ended.
func (a *agent) shipRing(ctx context.Context, b *boards.Board, host, bootID, release string, recs []records.Record) string {
	rs := a.ring
	if rs == nil {
		return "ring=off"
	}
	if len(rs.prev) == 0 {
		return "ring=nothing-to-ship"
	}
	t0 := time.Now()
	var list []records.Record
	byName := map[string]prevRecord{}
	for _, p := range rs.prev {
		list = append(list, p.rec)
		byName[p.rec.Name] = p
	}
	shipped, kept := 0, len(list)
	var err error
	consoleShipped := false
	if c, _, _, cerr := a.uploadClient(b, host, bootID, release); cerr != nil {
		err = cerr
	} else {
		sctx, cancel := context.WithTimeout(ctx, b.UploadTimeout)
		shipped, kept, err = ship.ShipAll(sctx, c, list, func(r records.Record) error {
			p := byName[r.Name]
			if p.rec.Type == "console" {
				consoleShipped = true
			}
			// Acknowledged: only now may the ring forget it.
			return ring.MarkShipped(rs.halves[p.half], p.flag)
		}, a.Log.Infof)
		cancel()
	}
	var names []string
	for _, r := range list {
		names = append(names, fmt.Sprintf("%s(boot %s, %d bytes)", r.Name, r.BootID, r.Size))
	}
	a.Log.Step("ring ship", t0, err, "shipped=%d kept=%d: %s", shipped, kept, strings.Join(names, " "))
	dmesg := false
	for _, r := range recs {
		if r.Type == "dmesg" {
			dmesg = true
		}
	}
	out := fmt.Sprintf("ring_records=%d ring_shipped=%d", len(list), shipped)
	if consoleShipped && !dmesg {
		out += " previous boot ended without panic: reset (console record shipped)"
	}
	return out
}

// startKmsg copies the kernel log into the console stream, from after
// sequence number after (0: from the start of the printk buffer).
func (rs *ringState) startKmsg(path string, after uint64) {
	rs.stop, rs.done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(rs.done)
		copyKmsg(path, after, rs.cur, &rs.lastSeq, rs.stop, nil)
	}()
}

// stopKmsg stops the copying goroutine and waits for it: one writer of
// the console stream at a time.
func (rs *ringState) stopKmsg() {
	rs.stopMu.Lock()
	defer rs.stopMu.Unlock()
	if rs.stop == nil {
		return
	}
	close(rs.stop)
	<-rs.done
	rs.stop = nil
}

// parseKmsg reads one /dev/kmsg record ("prio,seq,usec,flags;text" and
// continuation lines) and returns its sequence number and the line the
// console stream keeps.
func parseKmsg(rec string) (seq uint64, line string, ok bool) {
	head, text, found := strings.Cut(rec, ";")
	if !found {
		return 0, "", false
	}
	text, _, _ = strings.Cut(text, "\n") // KEY=VALUE continuation lines
	f := strings.SplitN(head, ",", 4)
	if len(f) < 3 {
		return 0, "", false
	}
	seq, err1 := strconv.ParseUint(f[1], 10, 64)
	us, err2 := strconv.ParseUint(f[2], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, "", false
	}
	return seq, fmt.Sprintf("[%5d.%06d] %s", us/1e6, us%1e6, text), true
}

// setTee sends every line the logger writes to f as well (nil: no more).
func (l *logger) setTee(f func(msg string)) {
	l.mu.Lock()
	l.tee = f
	l.mu.Unlock()
}
