package ramoops

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// ErrUnsafe is wrapped when a region overlaps usable RAM or is not covered
// by a reserved range.
var ErrUnsafe = errors.New("unsafe ramoops region")

// Range is one top-level /proc/iomem entry.
type Range struct {
	Start, End uint64 // inclusive
	Name       string
}

// ParseIomem reads the top-level (unindented) entries of /proc/iomem.
func ParseIomem(r io.Reader) ([]Range, error) {
	var out []Range
	sc := bufio.NewScanner(r)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		if line == "" || line[0] == ' ' {
			continue // nested entries refine a top-level one
		}
		span, name, ok := strings.Cut(line, " : ")
		lo, hi, ok2 := strings.Cut(span, "-")
		if !ok || !ok2 {
			return nil, fmt.Errorf("iomem line %d: malformed %q", n, line)
		}
		s, err1 := strconv.ParseUint(strings.TrimSpace(lo), 16, 64)
		e, err2 := strconv.ParseUint(strings.TrimSpace(hi), 16, 64)
		if err1 != nil || err2 != nil || e < s {
			return nil, fmt.Errorf("iomem line %d: bad range %q", n, span)
		}
		out = append(out, Range{Start: s, End: e, Name: strings.TrimSpace(name)})
	}
	return out, sc.Err()
}

// CheckRegion reports whether [addr, addr+size) is safe for ramoops: no
// byte of it is "System RAM", and all of it is covered by reserved ranges
// (any top-level name other than System RAM, e.g. "Reserved" or
// "Persistent Memory"). An all-zero /proc/iomem (read without privileges)
// is an error, not a pass.
func CheckRegion(ranges []Range, addr, size uint64) error {
	if size == 0 {
		return fmt.Errorf("region of size 0: %w", ErrUnsafe)
	}
	end := addr + size - 1
	if end < addr {
		return fmt.Errorf("region %#x+%#x wraps: %w", addr, size, ErrUnsafe)
	}
	zero := true
	for _, r := range ranges {
		if r.Start != 0 || r.End != 0 {
			zero = false
		}
	}
	if zero {
		return fmt.Errorf("/proc/iomem shows no addresses (not root?): %w", ErrUnsafe)
	}
	covered := uint64(0)
	for _, r := range ranges {
		lo, hi := max(r.Start, addr), min(r.End, end)
		if lo > hi {
			continue
		}
		if r.Name == "System RAM" {
			return fmt.Errorf("region %#x-%#x overlaps System RAM %#x-%#x (reserve it with memmap=%#x$%#x or in the device tree): %w",
				addr, end, r.Start, r.End, size, addr, ErrUnsafe)
		}
		covered += hi - lo + 1
	}
	if covered < size {
		return fmt.Errorf("region %#x-%#x is not fully covered by a reserved range in /proc/iomem: %w", addr, end, ErrUnsafe)
	}
	return nil
}

// Check reads iomemPath (normally /proc/iomem) and checks the region.
func Check(iomemPath string, addr, size uint64) error {
	f, err := os.Open(iomemPath)
	if err != nil {
		return fmt.Errorf("ramoops: %w", err)
	}
	defer f.Close()
	rs, err := ParseIomem(f)
	if err != nil {
		return fmt.Errorf("ramoops: %w", err)
	}
	if err := CheckRegion(rs, addr, size); err != nil {
		return fmt.Errorf("ramoops: %w", err)
	}
	return nil
}

// Backend returns the name of the registered pstore backend ("" if none),
// from pstoreParams (normally /sys/module/pstore/parameters).
func Backend(pstoreParams string) string {
	b, err := os.ReadFile(filepath.Join(pstoreParams, "backend"))
	if err != nil {
		return ""
	}
	s := strings.TrimSpace(string(b))
	if s == "(null)" {
		return ""
	}
	return s
}
