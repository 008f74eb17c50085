package ring

import (
	"hash/crc32"
	"testing"
)

// TestCRC32CMatchesHashCRC32: the hand-written CRC-32C gives hash/crc32's
// Castagnoli values (rings written by an older agent must still verify).
func TestCRC32CMatchesHashCRC32(t *testing.T) {
	tab := crc32.MakeTable(crc32.Castagnoli)
	long := make([]byte, 70000)
	for i := range long {
		long[i] = byte(i*7 + i>>8)
	}
	for _, tt := range []struct {
		name string
		seed uint32
		p    []byte
	}{
		{"empty", 0, nil},
		{"check value", 0, []byte("123456789")}, // 0xe3069283 for CRC-32C
		{"seeded", 0xdeadbeef, []byte("lastgasp: netconsole armed")},
		{"64 KiB+", 0, long},
	} {
		if got, want := crcUpdate(tt.seed, tt.p), crc32.Update(tt.seed, tab, tt.p); got != want {
			t.Errorf("%s: crcUpdate = %#x, hash/crc32 = %#x", tt.name, got, want)
		}
	}
	if got := crcChecksum([]byte("123456789")); got != 0xe3069283 {
		t.Errorf("check value: %#x, want 0xe3069283", got)
	}
}

func FuzzCRC32C(f *testing.F) {
	f.Add(uint32(0), []byte("x"))
	tab := crc32.MakeTable(crc32.Castagnoli)
	f.Fuzz(func(t *testing.T, seed uint32, p []byte) {
		if got, want := crcUpdate(seed, p), crc32.Update(seed, tab, p); got != want {
			t.Fatalf("crcUpdate(%#x, %q) = %#x, want %#x", seed, p, got, want)
		}
	})
}
