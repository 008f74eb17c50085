package ramoops

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Shaped like a QEMU guest's /proc/iomem when booted with memmap=1M$0x5000000.
const qemuIomem = `00000000-00000fff : Reserved
00001000-0009fbff : System RAM
0009fc00-0009ffff : Reserved
000a0000-000bffff : PCI Bus 0000:00
000f0000-000fffff : Reserved
  000f0000-000fffff : System ROM
00100000-04ffffff : System RAM
  01000000-01e00b36 : Kernel code
05000000-050fffff : Reserved
05100000-1ffdffff : System RAM
1ffe0000-1fffffff : Reserved
`

func TestCheckRegion(t *testing.T) {
	rs, err := ParseIomem(strings.NewReader(qemuIomem))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name       string
		addr, size uint64
		ok         bool
	}{
		{"reserved by memmap", 0x5000000, 0x100000, true},
		{"inside reserved", 0x5010000, 0x10000, true},
		{"spills into RAM", 0x5080000, 0x100000, false},
		{"plain RAM", 0x6000000, 0x100000, false},
		{"not in iomem at all", 0x40000000, 0x1000, false},
		{"two reserved ranges with a gap", 0x9fc00, 0x60000, false},
		{"zero size", 0x5000000, 0, false},
		{"wraps", ^uint64(0) - 10, 100, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckRegion(rs, tt.addr, tt.size)
			if tt.ok != (err == nil) {
				t.Fatalf("CheckRegion(%#x, %#x) = %v, want ok=%v", tt.addr, tt.size, err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrUnsafe) {
				t.Errorf("error %v does not wrap ErrUnsafe", err)
			}
		})
	}
}

func TestUnprivilegedIomem(t *testing.T) {
	rs, _ := ParseIomem(strings.NewReader("00000000-00000000 : Reserved\n00000000-00000000 : System RAM\n"))
	if err := CheckRegion(rs, 0x5000000, 0x100000); !errors.Is(err, ErrUnsafe) {
		t.Fatalf("CheckRegion on zeroed iomem = %v, want ErrUnsafe", err)
	}
}

func TestBackend(t *testing.T) {
	dir := t.TempDir()
	if got := Backend(dir); got != "" {
		t.Errorf("Backend(empty) = %q", got)
	}
	os.WriteFile(filepath.Join(dir, "backend"), []byte("(null)\n"), 0o644)
	if got := Backend(dir); got != "" {
		t.Errorf("Backend((null)) = %q", got)
	}
	os.WriteFile(filepath.Join(dir, "backend"), []byte("efi_pstore\n"), 0o644)
	if got := Backend(dir); got != "efi_pstore" {
		t.Errorf("Backend = %q, want efi_pstore", got)
	}
}

func FuzzParseIomem(f *testing.F) {
	f.Add(qemuIomem, uint64(0x5000000), uint64(0x100000))
	f.Add("zz-yy : x\n", uint64(1), uint64(1))
	f.Fuzz(func(t *testing.T, in string, addr, size uint64) {
		rs, err := ParseIomem(strings.NewReader(in))
		if err != nil {
			return
		}
		if CheckRegion(rs, addr, size) == nil {
			// Accepted: no byte may be System RAM.
			end := addr + size - 1
			for _, r := range rs {
				if r.Name == "System RAM" && r.Start <= end && addr <= r.End {
					t.Fatalf("accepted %#x+%#x overlapping %+v", addr, size, r)
				}
			}
		}
	})
}

// TestCapturedQEMUIomem checks the region against /proc/iomem captured from
// a QEMU guest of the qemu-x86_64 board (memmap=1M$0x5000000).
func TestCapturedQEMUIomem(t *testing.T) {
	if err := Check("testdata/qemu-iomem", 0x5000000, 0x100000); err != nil {
		t.Errorf("board region rejected: %v", err)
	}
	if err := Check("testdata/qemu-iomem", 0x6000000, 0x100000); !errors.Is(err, ErrUnsafe) {
		t.Errorf("region in System RAM: err = %v, want ErrUnsafe", err)
	}
}
