package efivars

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"unicode/utf16"
)

// ErrBadStore is wrapped by every error ParseStore returns.
var ErrBadStore = errors.New("not an EDK2 variable store")

// Variable store signatures: gEfiAuthenticatedVariableGuid (OVMF) and
// gEfiVariableGuid, as they are laid out in memory (EFI_GUID, little endian).
var (
	authStoreGUID  = []byte{0x78, 0x2c, 0xf3, 0xaa, 0x7b, 0x94, 0x9a, 0x43, 0xa1, 0x80, 0x2e, 0x14, 0x4e, 0xc3, 0x77, 0x92}
	plainStoreGUID = []byte{0x16, 0x36, 0xcf, 0xdd, 0x75, 0x32, 0x64, 0x41, 0x98, 0xb6, 0xfe, 0x85, 0x70, 0x7f, 0xfe, 0x7d}
)

// Variable states (VariableFormat.h): bits are cleared as a variable goes
// from added to deleted; the bytes of a deleted variable stay in the store
// until the firmware reclaims the space.
const (
	varAdded             = 0x3f
	varInDeletedTransfer = 0xfe
	varDeleted           = 0xfd
)

// StoreVar is one variable found in a store file.
type StoreVar struct {
	Var
	Offset int  // of its header in the file
	Live   bool // added and not deleted
	Charge int64
}

// Store is a parsed variable store.
type Store struct {
	Size int64      // the store's size (VARIABLE_STORE_HEADER.Size), header included
	Used int64      // bytes up to the end of the last variable, deleted ones included
	Vars []StoreVar // in file order
}

// Live returns the variables that are not deleted.
func (s Store) Live() []StoreVar {
	var out []StoreVar
	for _, v := range s.Vars {
		if v.Live {
			out = append(out, v)
		}
	}
	return out
}

// ParseStore reads an OVMF_VARS.fd-style file: a firmware volume whose
// header length is at offset 0x30, then a VARIABLE_STORE_HEADER, then
// variables each starting with 0x55AA: header, UCS-2 name, data, and the
// next header 4-byte aligned (x86 builds: names and data are not padded).
func ParseStore(b []byte) (Store, error) {
	bad := func(f string, a ...any) (Store, error) {
		return Store{}, fmt.Errorf("efivars: store: "+f+": %w", append(a, ErrBadStore)...)
	}
	if len(b) < 0x38 || string(b[0x28:0x2c]) != "_FVH" {
		return bad("no firmware volume header")
	}
	hl := int(binary.LittleEndian.Uint16(b[0x30:]))
	if hl < 0x38 || hl+28 > len(b) {
		return bad("firmware volume header length %d", hl)
	}
	sig := b[hl : hl+16]
	auth := bytes.Equal(sig, authStoreGUID)
	if !auth && !bytes.Equal(sig, plainStoreGUID) {
		return bad("unknown variable store signature %x", sig)
	}
	size := int64(binary.LittleEndian.Uint32(b[hl+16:]))
	end := int64(hl) + size
	if size < 28 || end > int64(len(b)) {
		return bad("store size %d beyond the file (%d bytes)", size, len(b))
	}
	s := Store{Size: size}
	hdr := 32 // VARIABLE_HEADER
	if auth {
		hdr = HeaderSize
	}
	off := int64(hl) + 28
	for off+int64(hdr) <= end && binary.LittleEndian.Uint16(b[off:]) == 0x55aa {
		state := b[off+2]
		var nameSize, dataSize int64
		var guid []byte
		if auth {
			nameSize = int64(binary.LittleEndian.Uint32(b[off+36:]))
			dataSize = int64(binary.LittleEndian.Uint32(b[off+40:]))
			guid = b[off+44 : off+60]
		} else {
			nameSize = int64(binary.LittleEndian.Uint32(b[off+8:]))
			dataSize = int64(binary.LittleEndian.Uint32(b[off+12:]))
			guid = b[off+16 : off+32]
		}
		nameAt := off + int64(hdr)
		// x86 EDK2 aligns names and data to 1 byte (ALIGNMENT), the
		// next header to 4 (HEADER_ALIGNMENT).
		next := pad4(nameAt + nameSize + dataSize)
		if nameSize > end || dataSize > end || next > end || nameSize%2 != 0 || next <= off {
			return bad("variable at %#x runs past the store", off)
		}
		v := StoreVar{Offset: int(off), Charge: next - off,
			Live: state == varAdded || state == varAdded&varInDeletedTransfer}
		v.Name = ucs2(b[nameAt : nameAt+nameSize])
		v.GUID = guidString(guid)
		v.DataSize = dataSize
		s.Vars = append(s.Vars, v)
		off = next
	}
	s.Used = off - int64(hl)
	return s, nil
}

func pad4(n int64) int64 { return (n + 3) &^ 3 }

// ucs2 decodes a NUL-terminated UCS-2 name.
func ucs2(b []byte) string {
	u := make([]uint16, 0, len(b)/2)
	for i := 0; i+1 < len(b); i += 2 {
		c := binary.LittleEndian.Uint16(b[i:])
		if c == 0 {
			break
		}
		u = append(u, c)
	}
	return string(utf16.Decode(u))
}

// guidString formats an EFI_GUID as efivarfs names it.
func guidString(g []byte) string {
	return fmt.Sprintf("%08x-%04x-%04x-%x-%x", binary.LittleEndian.Uint32(g), binary.LittleEndian.Uint16(g[4:]),
		binary.LittleEndian.Uint16(g[6:]), g[8:10], g[10:16])
}
