package efivars

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
)

// CrashGUID is LINUX_EFI_CRASH_GUID (include/linux/efi.h), the vendor GUID
// of every variable efi-pstore writes. efivarfs spells it in lower case.
const CrashGUID = "cfc8fc79-be2e-4ddc-97f0-9f98bfe298a0"

// DefaultMount is where efivarfs is mounted on a booted EFI system.
const DefaultMount = "/sys/firmware/efi/efivars"

// RecordSize is the most data efi-pstore puts in one variable on Linux 6.1
// (EFIVARS_DATA_SIZE_MAX; 6.2+ make it the module parameter record_size).
const RecordSize = 1024

// HeaderSize is what EDK2's variable store spends on each variable besides
// its name and data: the AUTHENTICATED_VARIABLE_HEADER (60 bytes). On x86
// name and data follow unpadded and the next header is 4-byte aligned.
const HeaderSize = 60

// KernelReserve is the free space the x86 kernel keeps in the variable
// store: a SetVariable that would leave less is refused (EFI_MIN_RESERVE,
// arch/x86/platform/efi/quirks.c), so a crash written into a nearly full
// store is lost.
const KernelReserve = 5120

// ErrBadName is wrapped by errors about names that are not efi-pstore's.
var ErrBadName = errors.New("not an efi-pstore variable name")

// Var is one EFI variable as efivarfs lists it.
type Var struct {
	Name     string // variable name, e.g. "dump-type0-1-1-1764633600-C"
	GUID     string // vendor GUID, lower case
	DataSize int64  // data bytes (the efivarfs file holds 4 more: the attributes)
}

// Charge is what v costs in the firmware's store, as EDK2 lays it out:
// header, UCS-2 name with its terminator and data, padded to 4 bytes.
func (v Var) Charge() int64 { return Charge(len(v.Name), v.DataSize) }

// Charge is the store space of a variable whose ASCII name is nameLen
// characters long and whose data is dataSize bytes.
func Charge(nameLen int, dataSize int64) int64 {
	return pad4(HeaderSize + int64(nameLen+1)*2 + dataSize)
}

// Dump is a parsed efi-pstore variable name,
// "dump-type<type>-<part>-<count>-<time>[-<C|D>]".
type Dump struct {
	Type       int    // pstore type (0: dmesg)
	Part       uint32 // part of the crash: 1 holds the newest text (the panic)
	Count      int    // the record's count
	Time       uint64 // seconds since the epoch when the part was written
	Compressed bool   // 'C': deflate-compressed by pstore
}

// ParseDumpName parses an efi-pstore variable name the way the kernel's
// efi_pstore_read_func does (both forms: with and without the C/D suffix).
func ParseDumpName(name string) (Dump, error) {
	rest, ok := strings.CutPrefix(name, "dump-type")
	if !ok {
		return Dump{}, fmt.Errorf("efivars: %q: %w", name, ErrBadName)
	}
	f := strings.Split(rest, "-")
	if len(f) != 4 && len(f) != 5 {
		return Dump{}, fmt.Errorf("efivars: %q: want 4 or 5 fields: %w", name, ErrBadName)
	}
	var d Dump
	typ, err1 := strconv.ParseUint(f[0], 10, 16)
	part, err2 := strconv.ParseUint(f[1], 10, 32)
	count, err3 := strconv.ParseUint(f[2], 10, 31)
	t, err4 := strconv.ParseUint(f[3], 10, 40) // the id arithmetic must not overflow
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		return Dump{}, fmt.Errorf("efivars: %q: %w", name, ErrBadName)
	}
	d.Type, d.Part, d.Count, d.Time = int(typ), uint32(part), int(count), t
	if len(f) == 5 {
		switch f[4] {
		case "C":
			d.Compressed = true
		case "D":
		default:
			return Dump{}, fmt.Errorf("efivars: %q: data type %q: %w", name, f[4], ErrBadName)
		}
	}
	return d, nil
}

// Format formats d as efi-pstore names it (the 6.1 form, with C or D).
func (d Dump) Format() string {
	c := "D"
	if d.Compressed {
		c = "C"
	}
	return fmt.Sprintf("dump-type%d-%d-%d-%d-%s", d.Type, d.Part, d.Count, d.Time, c)
}

// PstoreID is the record id pstore shows (generic_id in efi-pstore.c).
func (d Dump) PstoreID() uint64 { return (d.Time*100+uint64(d.Part))*1000 + uint64(d.Count) }

// PstoreNames are the names the record can have in the pstore file system:
// "<type>-efi-<id>", and with ".enc.z" when the kernel could not
// decompress it.
func (d Dump) PstoreNames() []string {
	typ := "dmesg"
	if d.Type != 0 {
		typ = "type" + strconv.Itoa(d.Type) // not written by 6.1; never matched
	}
	n := fmt.Sprintf("%s-efi-%d", typ, d.PstoreID())
	return []string{n, n + ".enc.z"}
}

// ParseEntry splits an efivarfs file name "<name>-<guid>" into its parts.
func ParseEntry(file string) (name, guid string, ok bool) {
	const guidLen = 36
	if len(file) < guidLen+2 || file[len(file)-guidLen-1] != '-' {
		return "", "", false
	}
	guid = file[len(file)-guidLen:]
	for i, c := range []byte(guid) {
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return "", "", false
			}
		default:
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
				return "", "", false
			}
		}
	}
	return file[:len(file)-guidLen-1], strings.ToLower(guid), true
}

// List reads every variable an efivarfs mount at dir shows, with its data
// size (file size minus the 4 attribute bytes). efivarfs builds its listing
// when it is mounted: a variable deleted since (through pstore) still shows
// until it is mounted again.
func List(dir string) ([]Var, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("efivars: list %s: %w", dir, err)
	}
	var out []Var
	for _, e := range ents {
		name, guid, ok := ParseEntry(e.Name())
		if !ok || !e.Type().IsRegular() {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			continue // gone meanwhile
		}
		out = append(out, Var{Name: name, GUID: guid, DataSize: max(fi.Size()-4, 0)})
	}
	return out, nil
}

// Crash is one efi-pstore variable with its parsed name.
type Crash struct {
	Var
	Dump
}

// Crashes picks pstore's variables out of vars (CrashGUID and a dump-type
// name) and orders them newest first: crash by crash, the latest crash
// first, and within a crash part 1 first (it holds the newest text, where
// the panic is; higher parts hold older lines). A crash's parts may carry
// different seconds (pstore stamps each part as it writes it), so a crash is
// a run of parts numbered upwards from 1 in time order, not one timestamp.
func Crashes(vars []Var) []Crash {
	var all []Crash
	for _, v := range vars {
		if v.GUID != CrashGUID {
			continue
		}
		d, err := ParseDumpName(v.Name)
		if err != nil {
			continue
		}
		all = append(all, Crash{Var: v, Dump: d})
	}
	sort.SliceStable(all, func(i, j int) bool {
		if all[i].Time != all[j].Time {
			return all[i].Time < all[j].Time
		}
		return all[i].Part < all[j].Part
	})
	var groups [][]Crash
	for _, c := range all {
		n := len(groups)
		if n == 0 || c.Part == 1 || c.Part <= groups[n-1][len(groups[n-1])-1].Part {
			groups = append(groups, nil)
			n++
		}
		groups[n-1] = append(groups[n-1], c)
	}
	out := make([]Crash, 0, len(all))
	for i := len(groups) - 1; i >= 0; i-- {
		out = append(out, groups[i]...)
	}
	return out
}

// NextCrash bounds the store space one crash takes. pstore writes parts of
// at most recordSize bytes and stops once the parts' sizes (compressed)
// reach kmsgBytes, so the data is at most kmsgBytes+recordSize; compressed
// parts are smaller than recordSize (measured under OVMF: 14 parts of
// 368-984 bytes for the default 10240), so the parts are counted as if each
// held only 512 bytes, each with a header and a dump-type name of at most
// 40 characters.
func NextCrash(kmsgBytes, recordSize int64) int64 {
	if recordSize <= 0 {
		recordSize = RecordSize
	}
	parts := (kmsgBytes+511)/512 + 1
	return kmsgBytes + recordSize + parts*(Charge(40, 0)+3)
}
