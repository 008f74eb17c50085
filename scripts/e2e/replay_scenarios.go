package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// replayStoredLine matches a message line of a collector kernel.log; an "r"
// after the level marks a record the agent replayed from /dev/kmsg
// (store/logline).
var replayStoredLine = regexp.MustCompile(`^\S+ ([0-7])(r?) seq=(\d+) ts=(\d+\.\d{6}) (.*)$`)

// consoleLine matches a kernel console line: "[    0.000000] text".
var consoleLine = regexp.MustCompile(`^\[\s*(\d+\.\d{6})\] (.*)$`)

var (
	reArmedBoot = regexp.MustCompile(`netconsole armed host=(\S+) boot=(\S+)`)
	reReplayDur = regexp.MustCompile(`lastgasp: replay: kernel log seq=(\d+)-(\d+) \((\d+) records, (\d+) overwritten[^)]*\) sent to \d+ receivers as \d+ datagrams.*\(([0-9.]+[a-z]+)\)`)
)

// earlyBootComplete: the collector's log of a boot that panics holds the
// kernel log from its first record (seq=0, "Linux version", which the agent
// replays from /dev/kmsg after arming netconsole) to the panic, every
// sequence number once, with no gap line. The expectations come from the
// guest's own console: the banner's text, the panic's timestamp, and the
// boot id the agent announced.
func earlyBootComplete(e *Env) (string, error) {
	c, err := e.StartCollector("collector")
	if err != nil {
		return "", err
	}
	vm, second, err := bootAndPanic(e, agentArgs(c))
	if err != nil {
		return "", err
	}
	first := vm.Serial()[:second]
	m := reArmedBoot.FindStringSubmatch(first)
	if m == nil {
		return "", fmt.Errorf("the first boot's console has no armed line")
	}
	host, boot := m[1], m[2]
	banner, panicTS, ok := consoleFacts(first)
	if !ok {
		return "", fmt.Errorf("the first boot's console lacks the Linux version banner or the panic line")
	}
	path := filepath.Join(c.Store, host, boot, "kernel.log")
	var log string
	// The collector writes within its write delay (1 s); the panic line
	// is the last one that matters.
	err = waitFor(30*time.Second, func() (bool, string) {
		b, _ := os.ReadFile(path)
		log = string(b)
		return strings.Contains(log, panicLine) && strings.Contains(log, " seq=0 "), fmt.Sprintf("%s lacks seq=0 or the panic line", path)
	})
	if err != nil {
		return "", err
	}
	seen := map[uint64]string{}
	var panicSeq uint64
	havePanic := false
	replayed := 0
	firstLive := int64(-1)
	for _, l := range strings.Split(strings.TrimSuffix(log, "\n"), "\n") {
		if strings.Contains(l, " lastgaspd: gap ") {
			return "", fmt.Errorf("gap line in the first boot's log: %q", l)
		}
		lm := replayStoredLine.FindStringSubmatch(l)
		if lm == nil {
			continue
		}
		seq, _ := strconv.ParseUint(lm[3], 10, 64)
		if prev, dup := seen[seq]; dup {
			return "", fmt.Errorf("seq=%d written twice: %q and %q", seq, prev, l)
		}
		seen[seq] = l
		if lm[2] == "r" {
			replayed++
		} else if firstLive < 0 {
			firstLive = int64(seq)
		}
		if strings.Contains(lm[5], panicLine) && !havePanic {
			panicSeq, havePanic = seq, true
			if lm[4] != panicTS {
				return "", fmt.Errorf("the panic line is stored with ts=%s, the console printed it at %s", lm[4], panicTS)
			}
		}
	}
	zero := replayStoredLine.FindStringSubmatch(seen[0])
	if zero == nil || zero[5] != banner {
		return "", fmt.Errorf("seq=0 is %q, want the console's banner %q", seen[0], banner)
	}
	if !havePanic {
		return "", fmt.Errorf("no panic line in %s", path)
	}
	var missing []uint64
	for q := uint64(0); q <= panicSeq; q++ {
		if _, ok := seen[q]; !ok {
			missing = append(missing, q)
		}
	}
	if len(missing) > 0 {
		return "", fmt.Errorf("%d sequence numbers below the panic's %d missing from the log: %v", len(missing), panicSeq, head(missing, 20))
	}
	dur := "?"
	if rm := reReplayDur.FindStringSubmatch(log); rm != nil {
		if rm[4] != "0" {
			return "", fmt.Errorf("the agent says %s records were overwritten", rm[4])
		}
		dur = rm[5]
	}
	return fmt.Sprintf("seq 0-%d complete, %d replayed, live from seq=%d, replay took %s", panicSeq, replayed, firstLive, dur), nil
}

// consoleFacts returns the text of the kernel's banner and the timestamp
// of the panic as the guest console printed them.
func consoleFacts(console string) (banner, panicTS string, ok bool) {
	for _, l := range strings.Split(console, "\n") {
		m := consoleLine.FindStringSubmatch(strings.TrimRight(l, "\r"))
		if m == nil {
			continue
		}
		if banner == "" && strings.HasPrefix(m[2], "Linux version ") {
			banner = m[2]
		}
		if panicTS == "" && strings.HasPrefix(m[2], panicLine) {
			panicTS = m[1]
		}
	}
	return banner, panicTS, banner != "" && panicTS != ""
}

func head(s []uint64, n int) []uint64 {
	if len(s) > n {
		return s[:n]
	}
	return s
}
