// Package ring is lastgasp's own persistent RAM log: the user-space
// equivalent of the kernel's pstore console and pmsg records
// (CONFIG_PSTORE_CONSOLE, CONFIG_PSTORE_PMSG, Documentation/admin-guide/ramoops.rst),
// which Debian's kernels are built without. It owns the format of a
// reserved RAM region (x86: memmap=SIZE$ADDR) that survives a warm reset:
// Format resets a half of it for one boot, Writer appends lines, Parse reads
// what a previous boot left, torn writes included.
//
// Layout. The region is two equal halves (Halves); each boot writes one, so
// that the previous boot's lines stay until the collector acknowledged
// them. A half is an array of 128-byte slots, little endian:
//
//	slot 0: header
//	  0  magic "LGRING\x00\x01"
//	  8  version u16 (1), slot size u16 (128)
//	  12 flags u32 (FlagConsoleShipped, FlagPmsgShipped)
//	  16 generation u64 (one more than the newest half when formatted)
//	  24 pmsg slots u32, console slots u32
//	  32 boot id, 48 bytes, NUL padded
//	  80 formatted, Unix seconds u64
//	  124 CRC-32C of bytes 0-123
//	slots 1..P: the pmsg stream, slots P+1..: the console stream, each slot
//	  0  seq u64 (1, 2, ...; slot index in its stream = (seq-1) mod slots)
//	  8  CRC-32C u32 of bytes 12-15 and the data, seeded with the header's
//	     identity (boot id and generation), so a slot of another boot or
//	     generation never passes
//	  12 length u8 (of data), flags u8 (ChunkFirst, ChunkMore, ChunkMarker), 2 reserved
//	  16 data, up to 112 bytes
//
// A line longer than 112 bytes takes several slots (ChunkMore on all but
// the last). Every slot describes itself, so no index has to be updated
// after a write: a reset during a write leaves at most that one slot
// invalid, which Parse reports as torn.
package ring
