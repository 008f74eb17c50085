package ring

// CRC-32C (Castagnoli), byte at a time from one 256-entry table. The ring
// checksums a few hundred bytes per agent line and at most one 64 KiB
// region per boot, so table speed does not matter; hash/crc32's
// MakeTable(Castagnoli) does: it builds the SSE4.2 and slicing-by-8 tables
// up front, which under TCG is the largest package init of the agent
// (README, "Boot timing"). The values are hash/crc32's (ring_test checks).

// castagnoliPoly is the reversed Castagnoli polynomial (crc32.Castagnoli).
const castagnoliPoly = 0x82f63b78

var crcTable = func() (t [256]uint32) {
	for i := range t {
		c := uint32(i)
		for range 8 {
			if c&1 != 0 {
				c = c>>1 ^ castagnoliPoly
			} else {
				c >>= 1
			}
		}
		t[i] = c
	}
	return t
}()

// crcUpdate is crc32.Update(crc, crc32.MakeTable(crc32.Castagnoli), p).
func crcUpdate(crc uint32, p []byte) uint32 {
	crc = ^crc
	for _, b := range p {
		crc = crcTable[byte(crc)^b] ^ crc>>8
	}
	return ^crc
}

// crcChecksum is crc32.Checksum(p, crc32.MakeTable(crc32.Castagnoli)).
func crcChecksum(p []byte) uint32 { return crcUpdate(0, p) }
