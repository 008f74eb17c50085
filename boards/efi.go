package boards

import (
	"fmt"
	"strconv"
	"strings"
)

// EFI is the NVRAM hygiene rule for boards whose crash records go to EFI
// variables (efi_pstore): pstore's records may take at most MaxShare percent
// of the firmware's variable store, the next crash included, so that the
// store never fills (firmware that cannot write its variables may not boot).
type EFI struct {
	// MaxShare (efi.max_share, "50%") is the share of the variable store
	// pstore's records may take; 0: the agent does not account for EFI
	// variables.
	MaxShare int
	// StoreSize (efi.store_size) is the firmware's variable space in bytes,
	// used only when the kernel does not report it (efivarfs' statfs gives
	// QueryVariableInfo's figures; Debian's 6.1 does: 262044 for
	// OVMF_VARS_4M.fd). OVMF_VARS_4M.fd's store header says 262072.
	StoreSize uint64
}

// efiKey sets a board key of the EFI hygiene rule; ok is false when k is
// not one of them.
func (b *Board) efiKey(k, v string) (ok bool, err error) {
	switch k {
	case "efi.max_share":
		n, err := ParseShare(v)
		if err != nil {
			return true, err
		}
		b.EFI.MaxShare = n
	case "efi.store_size":
		n, err := strconv.ParseUint(v, 0, 64)
		if err != nil || n == 0 {
			return true, fmt.Errorf("want a size in bytes, got %q: %w", v, ErrInvalid)
		}
		b.EFI.StoreSize = n
	default:
		return false, nil
	}
	return true, nil
}

// efiArg applies lastgasp.efi_max_share=N% (key without the "lastgasp."
// prefix); ok is false when key is not one of the EFI arguments.
func (b *Board) efiArg(key, v string) (ok bool, err error) {
	if key != "efi_max_share" {
		return false, nil
	}
	n, err := ParseShare(v)
	if err != nil {
		return true, err
	}
	b.EFI.MaxShare = n
	return true, nil
}

// ParseShare parses a percentage 1-100, "50%" or "50".
func ParseShare(s string) (int, error) {
	n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(s), "%"))
	if err != nil || n < 1 || n > 100 {
		return 0, fmt.Errorf("share %q: want 1%%-100%%: %w", s, ErrInvalid)
	}
	return n, nil
}
