// Command sizetable prints the bytes each Go package takes in an unstripped
// ELF binary, from its symbol table, summed per package, biggest first.
// With -diff OLD it prints each package's growth from OLD to the binary.
//
//	go run ./scripts/sizetable [-n 40] BINARY
//	go run ./scripts/sizetable [-n 40] -diff OLD NEW
//
// Only symbols in sections with file contents count (text, rodata, data,
// Go's tables); bss takes no room in an image. The sum is less than the file:
// pclntab entries, ELF headers and padding are not attributed to a package.
// scripts/size-table.sh builds the agent and the busybox and runs this.
package main

import (
	"debug/elf"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strings"

	"github.com/lastgasp/lastgasp/initramfs"
)

func main() {
	n := flag.Int("n", 40, "rows to print")
	diff := flag.String("diff", "", "print the growth from this binary to BINARY")
	commands := flag.Bool("commands", false, "print the image's u-root commands (initramfs.DefaultCommands) and exit")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: sizetable [-n N] [-diff OLD] BINARY")
		flag.PrintDefaults()
	}
	flag.Parse()
	if *commands {
		fmt.Println(strings.Join(initramfs.DefaultCommands, " "))
		return
	}
	if flag.NArg() != 1 {
		flag.Usage()
		os.Exit(2)
	}
	cur, err := packageSizes(flag.Arg(0))
	if err != nil {
		fmt.Fprintln(os.Stderr, "sizetable:", err)
		os.Exit(1)
	}
	if *diff == "" {
		print(os.Stdout, cur, *n, false)
		return
	}
	old, err := packageSizes(*diff)
	if err != nil {
		fmt.Fprintln(os.Stderr, "sizetable:", err)
		os.Exit(1)
	}
	d := map[string]int64{}
	for p, s := range cur {
		d[p] = s - old[p]
	}
	for p, s := range old {
		if _, ok := cur[p]; !ok {
			d[p] = -s
		}
	}
	print(os.Stdout, d, *n, true)
}

// total is the key under which packageSizes reports the sum of all symbols.
const total = "(all symbols)"

// packageSizes sums the sizes of the symbols of the ELF file at path per Go
// package (PackageOf), for symbols in sections stored in the file.
func packageSizes(path string) (map[string]int64, error) {
	f, err := elf.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	syms, err := f.Symbols()
	if err != nil {
		if errors.Is(err, elf.ErrNoSymbols) {
			return nil, fmt.Errorf("%s: no symbol table (stripped? build without -s)", path)
		}
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return sumByPackage(syms, f.Sections), nil
}

func sumByPackage(syms []elf.Symbol, sections []*elf.Section) map[string]int64 {
	out := map[string]int64{}
	for _, s := range syms {
		if s.Size == 0 || int(s.Section) <= 0 || int(s.Section) >= len(sections) {
			continue
		}
		if sections[s.Section].Type != elf.SHT_PROGBITS {
			continue // bss, noptrbss: no bytes in the file
		}
		out[PackageOf(s.Name)] += int64(s.Size)
		out[total] += int64(s.Size)
	}
	return out
}

var (
	typePrefix = regexp.MustCompile(`^(\*|\[\]|\[[0-9]+\]|map\[|chan |func\(|struct \{ ?)+`)
	pkgPath    = regexp.MustCompile(`^([A-Za-z0-9_.~-]+/)*[A-Za-z0-9_~-]+`)
)

// PackageOf returns the Go package a linker symbol belongs to: the import
// path before the first dot of its last element ("crypto/tls.(*Conn).Read"
// is crypto/tls), for a type descriptor the package of its element type,
// and "go:(runtime tables)" for the linker's own go: symbols.
func PackageOf(sym string) string {
	name := sym
	if strings.HasPrefix(name, "type:") {
		name = strings.TrimPrefix(name, "type:")
		name = strings.TrimPrefix(name, ".namedata.")
	} else if strings.HasPrefix(name, "go:itab.") {
		name = strings.TrimPrefix(name, "go:itab.")
	} else if strings.HasPrefix(name, "go:") {
		return "go:(runtime tables)"
	}
	name = typePrefix.ReplaceAllString(name, "")
	if p := pkgPath.FindString(name); p != "" && strings.Contains(name, ".") {
		return p
	}
	return "(other)"
}

func print(w io.Writer, m map[string]int64, n int, signed bool) {
	type row struct {
		pkg  string
		size int64
	}
	var rows []row
	for p, s := range m {
		if p != total && s != 0 {
			rows = append(rows, row{p, s})
		}
	}
	sort.Slice(rows, func(i, j int) bool {
		if rows[i].size != rows[j].size {
			return rows[i].size > rows[j].size
		}
		return rows[i].pkg < rows[j].pkg
	})
	format := "%10d  %s\n"
	if signed {
		format = "%+10d  %s\n"
	}
	var rest int64
	for i, r := range rows {
		if i < n {
			fmt.Fprintf(w, format, r.size, r.pkg)
		} else {
			rest += r.size
		}
	}
	if len(rows) > n {
		fmt.Fprintf(w, format, rest, fmt.Sprintf("(%d more packages)", len(rows)-n))
	}
	fmt.Fprintf(w, format, m[total], total)
}
