package receiver

import (
	"container/list"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// UnknownBoot is the boot directory for lines whose boot is not known.
const UnknownBoot = "boot-unknown"

// LogName is the name of the log file in each boot directory.
const LogName = "kernel.log"

// DefaultMaxOpenFiles is the Store's default limit on open log files.
const DefaultMaxOpenFiles = 64

// maxNameLen bounds an escaped name; longer ones are cut and hashed.
const maxNameLen = 128

// Store appends lines to per-host, per-boot log files
// <Root>/<host>/<boot>/kernel.log. Host and boot names are escaped with
// EscapeName, and an empty boot is UnknownBoot. It keeps up to MaxOpenFiles
// files open; a Store is safe for concurrent use. Close it when done.
type Store struct {
	// Root is the directory holding one directory per host.
	Root string
	// MaxOpenFiles bounds the log files kept open. Zero means
	// DefaultMaxOpenFiles.
	MaxOpenFiles int

	mu    sync.Mutex
	files map[string]*list.Element // path -> element holding *openFile
	lru   list.List                // most recently used first
}

type openFile struct {
	path string
	f    *os.File
}

// Path returns the log file for host and boot.
func (s *Store) Path(host, boot string) string {
	b := UnknownBoot
	if boot != "" {
		b = EscapeName(boot)
	}
	return filepath.Join(s.Root, EscapeName(host), b, LogName)
}

// Append appends lines, each followed by a newline, to the log of host and
// boot, creating directories and the file as needed. Lines must not contain
// newlines.
func (s *Store) Append(host, boot string, lines ...string) error {
	if len(lines) == 0 {
		return nil
	}
	if s.Root == "" {
		return errors.New("receiver: store root not set")
	}
	n := 0
	for _, l := range lines {
		n += len(l) + 1
	}
	buf := make([]byte, 0, n)
	for _, l := range lines {
		buf = append(buf, l...)
		buf = append(buf, '\n')
	}
	path := s.Path(host, boot)
	s.mu.Lock()
	defer s.mu.Unlock()
	of, err := s.open(path)
	if err != nil {
		return err
	}
	if _, err := of.f.Write(buf); err != nil {
		s.closeLocked(path)
		return fmt.Errorf("receiver: append to %s: %w", path, err)
	}
	return nil
}

// open returns the open log file at path, opening it and closing the least
// recently used file if needed.
func (s *Store) open(path string) (*openFile, error) {
	if e, ok := s.files[path]; ok {
		s.lru.MoveToFront(e)
		return e.Value.(*openFile), nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("receiver: create log directory: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("receiver: open log: %w", err)
	}
	if s.files == nil {
		s.files = make(map[string]*list.Element)
	}
	maxOpen := s.MaxOpenFiles
	if maxOpen <= 0 {
		maxOpen = DefaultMaxOpenFiles
	}
	for len(s.files) >= maxOpen {
		s.closeLocked(s.lru.Back().Value.(*openFile).path)
	}
	of := &openFile{path: path, f: f}
	s.files[path] = s.lru.PushFront(of)
	return of, nil
}

func (s *Store) closeLocked(path string) error {
	e, ok := s.files[path]
	if !ok {
		return nil
	}
	delete(s.files, path)
	s.lru.Remove(e)
	return e.Value.(*openFile).f.Close()
}

// Close closes the open log files. The Store may be used again afterwards.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for path := range s.files {
		if err := s.closeLocked(path); err != nil {
			errs = append(errs, fmt.Errorf("receiver: close %s: %w", path, err))
		}
	}
	return errors.Join(errs...)
}

// EscapeName turns an untrusted host or boot name into a single path
// element of [A-Za-z0-9._-] characters. Other bytes, '_' itself and a '.'
// that starts the name or follows another '.' become _XX (hex), so the result
// is never "", "." or ".." and distinct names stay distinct; the empty name
// becomes "_". Names longer than 128 bytes once escaped are cut and suffixed
// with "-_h" and a SHA-256 prefix of the original name.
func EscapeName(name string) string {
	if name == "" {
		return "_"
	}
	var b strings.Builder
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-':
			b.WriteByte(c)
		case c == '.' && i > 0 && name[i-1] != '.':
			b.WriteByte(c)
		default:
			const hexDigits = "0123456789abcdef"
			b.WriteByte('_')
			b.WriteByte(hexDigits[c>>4])
			b.WriteByte(hexDigits[c&0xf])
		}
	}
	if b.Len() <= maxNameLen {
		return b.String()
	}
	sum := sha256.Sum256([]byte(name))
	return b.String()[:maxNameLen-35] + "-_h" + hex.EncodeToString(sum[:16])
}
