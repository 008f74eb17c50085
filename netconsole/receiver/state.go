package receiver

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/lastgasp/lastgasp/netconsole/wire"
	"github.com/lastgasp/lastgasp/pstore/ship"
	"github.com/lastgasp/lastgasp/store"
)

// stateHeader is the first line of a state file; the format is this
// package's and versioned by it.
const stateHeader = "lastgaspd-sources v1"

// saved is one identity as written in the state file: a line of
//
//	<addr:port> <host|-> <boot|-> <flags|-> <next> <last ts> <release|-> <last heard unix ns>
//
// where flags has s (sequence started), f (bound to its address for want of
// an announcement) and n (the "no announcement" line was written).
type saved struct {
	key       netip.AddrPort
	host      string
	boot      string
	fallback  bool
	noted     bool
	st        wire.State
	lastHeard int64
}

func (sv saved) apply(id *ident) {
	id.host, id.boot, id.fallback, id.noted = sv.host, sv.boot, sv.fallback, sv.noted
	id.st, id.lastHeard = sv.st, sv.lastHeard
}

func savedOf(id *ident) saved {
	st := id.st
	if id.h != nil {
		st = id.h.host.State()
	}
	return saved{key: id.key, host: id.host, boot: id.boot, fallback: id.fallback, noted: id.noted, st: st, lastHeard: id.lastHeard}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func unDash(s string) string {
	if s == "-" {
		return ""
	}
	return s
}

// appendSaved appends sv's line to b.
func appendSaved(b []byte, sv saved) []byte {
	b = sv.key.AppendTo(b)
	b = append(b, ' ')
	b = append(b, orDash(sv.host)...)
	b = append(b, ' ')
	b = append(b, orDash(sv.boot)...)
	b = append(b, ' ')
	flags := len(b)
	if sv.st.Started {
		b = append(b, 's')
	}
	if sv.fallback {
		b = append(b, 'f')
	}
	if sv.noted {
		b = append(b, 'n')
	}
	if len(b) == flags {
		b = append(b, '-')
	}
	b = append(b, ' ')
	b = strconv.AppendUint(b, sv.st.Next, 10)
	b = append(b, ' ')
	b = strconv.AppendUint(b, sv.st.LastTS, 10)
	b = append(b, ' ')
	b = append(b, orDash(sv.st.Release)...)
	b = append(b, ' ')
	b = strconv.AppendInt(b, sv.lastHeard, 10)
	return append(b, '\n')
}

var errBadState = errors.New("malformed state line")

// parseSaved parses one state line (without its newline), checking names
// as the store would: a state file is not trusted more than a datagram.
func parseSaved(line string) (saved, error) {
	f := strings.Split(line, " ")
	if len(f) != 8 {
		return saved{}, errBadState
	}
	var sv saved
	var err error
	if sv.key, err = netip.ParseAddrPort(f[0]); err != nil {
		return saved{}, fmt.Errorf("%w: %v", errBadState, err)
	}
	sv.host, sv.boot = unDash(f[1]), unDash(f[2])
	if f[3] != "-" {
		for _, c := range f[3] {
			switch c {
			case 's':
				sv.st.Started = true
			case 'f':
				sv.fallback = true
			case 'n':
				sv.noted = true
			default:
				return saved{}, fmt.Errorf("%w: flag %q", errBadState, c)
			}
		}
	}
	switch {
	case sv.host == "" && (sv.boot != "" || sv.fallback):
		return saved{}, fmt.Errorf("%w: boot without host", errBadState)
	case sv.host != "" && ship.CheckHost(sv.host) != nil:
		if _, err := netip.ParseAddr(sv.host); err != nil || !sv.fallback {
			return saved{}, fmt.Errorf("%w: host %q", errBadState, sv.host)
		}
	}
	if err := store.CheckBoot(sv.boot); err != nil {
		return saved{}, fmt.Errorf("%w: %v", errBadState, err)
	}
	if sv.st.Next, err = strconv.ParseUint(f[4], 10, 64); err != nil {
		return saved{}, fmt.Errorf("%w: %v", errBadState, err)
	}
	if sv.st.LastTS, err = strconv.ParseUint(f[5], 10, 64); err != nil {
		return saved{}, fmt.Errorf("%w: %v", errBadState, err)
	}
	sv.st.Release = unDash(f[6])
	if len(sv.st.Release) > 64 {
		return saved{}, fmt.Errorf("%w: release too long", errBadState)
	}
	if sv.lastHeard, err = strconv.ParseInt(f[7], 10, 64); err != nil {
		return saved{}, fmt.Errorf("%w: %v", errBadState, err)
	}
	return sv, nil
}

// readState reads a state file, skipping (and counting) bad lines.
func readState(r io.Reader) (map[netip.AddrPort]saved, int, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), 4096)
	m := make(map[netip.AddrPort]saved)
	bad := 0
	first := true
	for sc.Scan() {
		if first {
			first = false
			if sc.Text() != stateHeader {
				return nil, 0, fmt.Errorf("receiver: state file: not a %q file", stateHeader)
			}
			continue
		}
		sv, err := parseSaved(sc.Text())
		if err != nil {
			bad++
			continue
		}
		m[sv.key] = sv
	}
	return m, bad, sc.Err()
}

// restoredTable holds the identities loaded from the state file until
// their senders are heard from.
type restoredTable struct {
	mu sync.Mutex
	m  map[netip.AddrPort]saved
}

func (t *restoredTable) take(key netip.AddrPort) (saved, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	sv, ok := t.m[key]
	if ok {
		delete(t.m, key)
	}
	return sv, ok
}

// loadState loads the StateFile, if any, dropping identities older than
// HostTTL.
func (s *Server) loadState() {
	if s.StateFile == "" {
		return
	}
	f, err := os.Open(s.StateFile)
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) && s.Logf != nil {
			s.Logf("receiver: state: %v", err)
		}
		return
	}
	defer f.Close()
	m, bad, err := readState(f)
	if err != nil {
		if s.Logf != nil {
			s.Logf("receiver: state %s: %v", s.StateFile, err)
		}
		return
	}
	if ttl := cmpOr(s.HostTTL, DefaultHostTTL); s.HostTTL >= 0 {
		cutoff := time.Now().Add(-ttl).UnixNano()
		for k, sv := range m {
			if sv.lastHeard < cutoff {
				delete(m, k)
			}
		}
	}
	s.restored.mu.Lock()
	s.restored.m = m
	s.restored.mu.Unlock()
	if s.Logf != nil {
		s.Logf("receiver: state %s: %d senders restored, %d bad lines skipped", s.StateFile, len(m), bad)
	}
}

// saver writes the StateFile from the latest snapshot of every ingest, in
// the background so that receiving goes on.
type saver struct {
	mu      sync.Mutex
	parts   map[int][]saved
	running bool
	again   bool
	done    *sync.Cond
}

// save hands in's identities to the saver; with wait, it returns once they
// are written.
func (in *ingest) save(now time.Time, wait bool) {
	snap := make([]saved, 0, len(in.idents))
	for _, id := range in.idents {
		if id.key.Addr().Zone() != "" && id.key.Port() == 0 {
			continue // not an IP sender
		}
		snap = append(snap, savedOf(id))
	}
	sv := &in.saver
	sv.mu.Lock()
	if sv.parts == nil {
		sv.parts = make(map[int][]saved)
		sv.done = sync.NewCond(&sv.mu)
	}
	sv.parts[in.index] = snap
	if sv.running {
		sv.again = true
	} else {
		sv.running = true
		go in.Server.writeState()
	}
	for wait && sv.running {
		sv.done.Wait()
	}
	sv.mu.Unlock()
}

// writeState writes the StateFile until no newer snapshot is waiting.
func (s *Server) writeState() {
	sv := &s.saver
	for {
		sv.mu.Lock()
		parts := make([][]saved, 0, len(sv.parts))
		for _, p := range sv.parts {
			parts = append(parts, p)
		}
		sv.again = false
		sv.mu.Unlock()
		s.restored.mu.Lock()
		left := make([]saved, 0, len(s.restored.m))
		for _, r := range s.restored.m {
			left = append(left, r)
		}
		s.restored.mu.Unlock()
		if err := writeStateFile(s.StateFile, append(parts, left)); err != nil && s.Logf != nil {
			s.Logf("receiver: %v", err)
		}
		sv.mu.Lock()
		if !sv.again {
			sv.running = false
			sv.done.Broadcast()
			sv.mu.Unlock()
			return
		}
		sv.mu.Unlock()
	}
}

// writeStateFile replaces path with the identities in parts: a temporary
// file renamed over it, so that a crash leaves the old or the new file.
func writeStateFile(path string, parts [][]saved) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("state: %w", err)
	}
	f, err := os.CreateTemp(dir, ".sources-*")
	if err != nil {
		return fmt.Errorf("state: %w", err)
	}
	defer os.Remove(f.Name())
	w := bufio.NewWriterSize(f, 64<<10)
	w.WriteString(stateHeader + "\n")
	var line []byte
	for _, p := range parts {
		for _, sv := range p {
			line = appendSaved(line[:0], sv)
			w.Write(line)
		}
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("state: write %s: %w", f.Name(), err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("state: write %s: %w", f.Name(), err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("state: %w", err)
	}
	return nil
}
