package store

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/lastgasp/lastgasp/pstore/ship"
)

// UnknownBoot is the boot directory for lines whose boot is not known.
const UnknownBoot = "boot-unknown"

// CrashDir is the directory of crash records under a host directory (the
// canonical copies) and under a boot directory (links to the records that
// boot left behind).
const CrashDir = "crash"

// StateDir is the directory under the root that holds the collector's own
// state (the source table); host directories never start with '.'.
const StateDir = ".lastgaspd"

// ErrReservedName is returned for a boot name the layout uses itself.
var ErrReservedName = errors.New("reserved name")

// maxEscaped bounds an escaped host directory name (NAME_MAX is 255); longer
// ones are cut and suffixed with a hash of the original name.
const maxEscaped = 200

// HostDir returns the directory, one path element under the store root, of
// host. It is the one mapping every writer and reader of the store uses:
//
//   - a name the upload protocol accepts (ship.CheckHost: 1 to 253 bytes of
//     [A-Za-z0-9._-], not starting with '.') is its own directory, so a
//     record uploaded for "box_1" and the netconsole log of "box_1" share
//     one directory;
//   - anything else (the source address of a stream that never announced
//     itself, such as an IPv6 address with ':' and a zone) is
//     percent-escaped: bytes outside [A-Za-z0-9.-] and a leading '.'
//     become %XX, and a result longer than 200 bytes is cut and suffixed
//     with "%h" and 32 hex digits of its SHA-256.
//
// Every escaped name contains '%', which no valid name does, so two
// distinct names never share a directory (up to SHA-256 collisions of cut
// names), and no name maps to "", "." or "..".
func HostDir(host string) string {
	if ship.CheckHost(host) == nil {
		return host
	}
	return escape(host)
}

func escape(name string) string {
	const hexDigits = "0123456789abcdef"
	var b strings.Builder
	b.WriteByte('%') // marks an escaped name, even when nothing else needs it
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-':
			b.WriteByte(c)
		case c == '.' && i > 0:
			b.WriteByte(c)
		default:
			b.WriteByte('%')
			b.WriteByte(hexDigits[c>>4])
			b.WriteByte(hexDigits[c&0xf])
		}
	}
	if b.Len() <= maxEscaped {
		return b.String()
	}
	sum := sha256.Sum256([]byte(name))
	return b.String()[:maxEscaped-34] + "%h" + hex.EncodeToString(sum[:16])
}

// CheckBoot reports whether boot may name a boot directory: "" (the
// unknown boot) or what the upload protocol accepts as a boot id
// (ship.CheckBootID), except the names the layout uses itself (CrashDir,
// UnknownBoot). A netconsole announcement or an upload naming another boot
// is refused, not mapped, so that it can never land in a crash directory or
// in the fallback directory.
func CheckBoot(boot string) error {
	if boot == CrashDir || boot == UnknownBoot {
		return fmt.Errorf("boot %q: %w", boot, ErrReservedName)
	}
	return ship.CheckBootID(boot)
}

// bootDirName returns the directory of boot, which CheckBoot accepted.
func bootDirName(boot string) string {
	if boot == "" {
		return UnknownBoot
	}
	return boot
}

// BootDir returns the directory of host's boot relative to the store root,
// with '/' separators, or an error if CheckBoot refuses boot.
func BootDir(host, boot string) (string, error) {
	if err := CheckBoot(boot); err != nil {
		return "", err
	}
	return HostDir(host) + "/" + bootDirName(boot), nil
}
