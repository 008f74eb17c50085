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
// package's and versioned by it. v2 added the replay backfill fields; v1
// files are still read (backfill state zero: a replay after the restart is
// dropped as duplicates).
const (
	stateHeader   = "lastgaspd-sources v2"
	stateHeaderV1 = "lastgaspd-sources v1"
)

// saved is one identity as written in the state file: a line of
//
//	<addr:port> <host|-> <boot|-> <flags|-> <next> <last ts> <release|-> <last heard unix ns> <base> <fill>
//
// (v1 lines end after <last heard>; base and fill are wire.State's Base and
// Fill, where a replayed backfill of the boot stands)
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
	b = append(b, ' ')
	b = strconv.AppendUint(b, sv.st.Base, 10)
	b = append(b, ' ')
	b = strconv.AppendUint(b, sv.st.Fill, 10)
	return append(b, '\n')
}

var errBadState = errors.New("malformed state line")

// parseSaved parses one state line (without its newline), checking names
// as the store would: a state file is not trusted more than a datagram.
func parseSaved(line string) (saved, error) {
	f := strings.Split(line, " ")
	if len(f) != 8 && len(f) != 10 {
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
	if len(f) == 10 {
		if sv.st.Base, err = strconv.ParseUint(f[8], 10, 64); err != nil {
			return saved{}, fmt.Errorf("%w: %v", errBadState, err)
		}
		if sv.st.Fill, err = strconv.ParseUint(f[9], 10, 64); err != nil {
			return saved{}, fmt.Errorf("%w: %v", errBadState, err)
		}
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
			if sc.Text() != stateHeader && sc.Text() != stateHeaderV1 {
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

// statePath is the state file of the ingest with index i: StateFile for the
// first socket, StateFile.<i> for the others, so that each writes its own
// senders and nothing holds a snapshot once it is written.
func (s *Server) statePath(i int) string {
	if i == 0 {
		return s.StateFile
	}
	return s.StateFile + "." + strconv.Itoa(i)
}

// loadState loads the StateFile and the other sockets' files beside it,
// keeping for each sender the entry heard from last, and drops identities
// older than HostTTL.
func (s *Server) loadState() {
	if s.StateFile == "" {
		return
	}
	paths, _ := filepath.Glob(s.StateFile + ".*")
	paths = append([]string{s.StateFile}, paths...)
	m := make(map[netip.AddrPort]saved)
	bad := 0
	for _, p := range paths {
		if n := strings.TrimPrefix(p, s.StateFile+"."); p != s.StateFile && !isDigitsOnly(n) {
			continue
		}
		f, err := os.Open(p)
		if err != nil {
			if !errors.Is(err, os.ErrNotExist) && s.Logf != nil {
				s.Logf("receiver: state: %v", err)
			}
			continue
		}
		part, b, err := readState(f)
		f.Close()
		if err != nil {
			if s.Logf != nil {
				s.Logf("receiver: state %s: %v", p, err)
			}
			continue
		}
		bad += b
		for k, sv := range part {
			if old, ok := m[k]; !ok || sv.lastHeard > old.lastHeard {
				m[k] = sv
			}
		}
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
	if s.Logf != nil && (len(m) > 0 || bad > 0) {
		s.Logf("receiver: state %s: %d senders restored, %d bad lines skipped", s.StateFile, len(m), bad)
	}
}

func isDigitsOnly(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// save writes in's identities, and the restored ones not heard from yet,
// to its state file from a goroutine, so that receiving goes on; with
// wait, it returns once they are written. A save while the previous one
// is still being written is skipped (the next one comes a SaveInterval
// later) unless wait.
func (in *ingest) save(now time.Time, wait bool) {
	if in.saving != nil {
		if !wait {
			select {
			case <-in.saving:
			default:
				return
			}
		} else {
			<-in.saving
		}
	}
	snap := make([]saved, 0, len(in.idents))
	for _, id := range in.idents {
		if id.key.Addr().Zone() != "" && id.key.Port() == 0 {
			continue // not an IP sender
		}
		snap = append(snap, savedOf(id))
	}
	done := make(chan struct{})
	in.saving = done
	path, srv := in.statePath(in.index), in.Server
	go func() {
		defer close(done)
		srv.restored.mu.Lock()
		left := make([]saved, 0, len(srv.restored.m))
		for _, r := range srv.restored.m {
			left = append(left, r)
		}
		srv.restored.mu.Unlock()
		if err := writeStateFile(path, [][]saved{snap, left}); err != nil && srv.Logf != nil {
			srv.Logf("receiver: %v", err)
		}
	}()
	if wait {
		<-done
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
