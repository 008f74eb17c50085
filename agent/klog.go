package agent

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// logger writes the agent's lines into the kernel log (/dev/kmsg), so they
// reach the console and, once armed, netconsole; without /dev/kmsg it writes
// to a fallback writer.
type logger struct {
	mu       sync.Mutex
	kmsg     io.Writer
	fallback io.Writer
	start    time.Time
	// tee, if set, gets every line too (the ring's pmsg stream).
	tee func(msg string)
}

// openKmsg opens path (normally /dev/kmsg) for writing; on failure the logger
// writes to fallback.
func openKmsg(path string, fallback io.Writer) *logger {
	l := &logger{fallback: fallback, start: time.Now()}
	if f, err := os.OpenFile(path, os.O_WRONLY, 0); err == nil {
		l.kmsg = f
	}
	return l
}

// Reopen retries opening the kernel log, e.g. once /dev is mounted.
func (l *logger) Reopen(path string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.kmsg != nil {
		return
	}
	if f, err := os.OpenFile(path, os.O_WRONLY, 0); err == nil {
		l.kmsg = f
	}
}

// Kernel log levels used by the agent.
const (
	levelErr    = 3
	levelWarn   = 4
	levelNotice = 5
	levelInfo   = 6
	levelDebug  = 7
)

// Logf writes one line at the given kernel log level.
func (l *logger) Logf(level int, format string, a ...any) {
	// Durations print "µs", which the kernel escapes to "\xc2\xb5s" in
	// netconsole's extended format: write the ASCII unit instead (Go's
	// time.ParseDuration reads both).
	msg := strings.ReplaceAll(fmt.Sprintf(format, a...), "µs", "us")
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.tee != nil && level <= levelInfo {
		l.tee(msg)
	}
	if l.kmsg != nil {
		// One write is one kernel log record.
		if _, err := fmt.Fprintf(l.kmsg, "<%d>lastgasp: %s\n", level, msg); err == nil {
			return
		}
	}
	fmt.Fprintf(l.fallback, "lastgasp: %s\n", msg)
}

// Infof logs at info level.
func (l *logger) Infof(format string, a ...any) { l.Logf(levelInfo, format, a...) }

// Debugf logs at debug level: the detail of a stage (each DHCP message,
// carrier waits). It stays in the kernel log (dmesg) but, at the default
// console loglevel 7, does not cost a line on a slow serial console while
// the network comes up; lastgasp.ignore_loglevel=1 shows it everywhere.
func (l *logger) Debugf(format string, a ...any) { l.Logf(levelDebug, format, a...) }

// Errorf logs at error level.
func (l *logger) Errorf(format string, a ...any) { l.Logf(levelErr, format, a...) }

// Step logs the outcome of one stage with its duration and returns err.
func (l *logger) Step(name string, t0 time.Time, err error, format string, a ...any) error {
	d := time.Since(t0).Round(100 * time.Microsecond)
	if err != nil {
		l.Errorf("%s: FAILED after %v: %v", name, d, err)
		return err
	}
	l.Infof("%s: %s (%v)", name, fmt.Sprintf(format, a...), d)
	return nil
}
