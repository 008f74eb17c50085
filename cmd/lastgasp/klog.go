package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// Logger writes the agent's lines into the kernel log (/dev/kmsg), so they
// reach the console and, once armed, netconsole; without /dev/kmsg it writes
// to a fallback writer.
type Logger struct {
	mu       sync.Mutex
	kmsg     io.Writer
	fallback io.Writer
	start    time.Time
}

// OpenKmsg opens path (normally /dev/kmsg) for writing; on failure the logger
// writes to fallback.
func OpenKmsg(path string, fallback io.Writer) *Logger {
	l := &Logger{fallback: fallback, start: time.Now()}
	if f, err := os.OpenFile(path, os.O_WRONLY, 0); err == nil {
		l.kmsg = f
	}
	return l
}

// Reopen retries opening the kernel log, e.g. once /dev is mounted.
func (l *Logger) Reopen(path string) {
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
	LevelErr    = 3
	LevelWarn   = 4
	LevelNotice = 5
	LevelInfo   = 6
	LevelDebug  = 7
)

// Logf writes one line at the given kernel log level.
func (l *Logger) Logf(level int, format string, a ...any) {
	msg := fmt.Sprintf(format, a...)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.kmsg != nil {
		// One write is one kernel log record.
		if _, err := fmt.Fprintf(l.kmsg, "<%d>lastgasp: %s\n", level, msg); err == nil {
			return
		}
	}
	fmt.Fprintf(l.fallback, "lastgasp: %s\n", msg)
}

// Infof logs at info level.
func (l *Logger) Infof(format string, a ...any) { l.Logf(LevelInfo, format, a...) }

// Debugf logs at debug level: the detail of a stage (each DHCP message,
// carrier waits). It stays in the kernel log (dmesg) but, at the default
// console loglevel 7, does not cost a line on a slow serial console while
// the network comes up; lastgasp.ignore_loglevel=1 shows it everywhere.
func (l *Logger) Debugf(format string, a ...any) { l.Logf(LevelDebug, format, a...) }

// Errorf logs at error level.
func (l *Logger) Errorf(format string, a ...any) { l.Logf(LevelErr, format, a...) }

// Step logs the outcome of one stage with its duration and returns err.
func (l *Logger) Step(name string, t0 time.Time, err error, format string, a ...any) error {
	d := time.Since(t0).Round(100 * time.Microsecond)
	if err != nil {
		l.Errorf("%s: FAILED after %v: %v", name, d, err)
		return err
	}
	l.Infof("%s: %s (%v)", name, fmt.Sprintf(format, a...), d)
	return nil
}
