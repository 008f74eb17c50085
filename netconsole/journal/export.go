package journal

import (
	"encoding/binary"
	"strconv"
	"strings"

	"github.com/lastgasp/lastgasp/netconsole/sink"
)

// Fields of an entry besides the journal's own (systemd.journal-fields(7):
// MESSAGE, PRIORITY, SYSLOG_FACILITY, SYSLOG_IDENTIFIER, _TRANSPORT,
// _HOSTNAME, _BOOT_ID, _SOURCE_REALTIME_TIMESTAMP and
// _SOURCE_MONOTONIC_TIMESTAMP; and the export format's
// __REALTIME_TIMESTAMP and __MONOTONIC_TIMESTAMP).
const (
	// FieldBoot is the boot id the message is filed under, as announced;
	// absent when unknown.
	FieldBoot = "LASTGASP_BOOT"
	// FieldSeq is the printk sequence number; absent for legacy
	// (non-extended) messages.
	FieldSeq = "LASTGASP_SEQ"
	// FieldKernelTS is the printk timestamp in microseconds since the
	// sender's boot; absent for legacy messages.
	FieldKernelTS = "LASTGASP_KERNEL_TS"
	// FieldRelease is the kernel release the sender prepended; absent
	// when it sent none.
	FieldRelease = "LASTGASP_RELEASE"
)

// Identifier is the SYSLOG_IDENTIFIER of every entry, as journald gives
// kernel messages.
const Identifier = "kernel"

// maxTimestamp bounds the timestamps the journal accepts (VALID_REALTIME and
// VALID_MONOTONIC in systemd: below 2^55 microseconds).
const maxTimestamp = 1<<55 - 1

// zeroBootID is the _BOOT_ID of entries whose boot is not a 128-bit id.
const zeroBootID = "00000000000000000000000000000000"

// AppendEntry appends m to b as one entry of the Journal Export Format and
// returns the extended buffer. Every field a remote could otherwise carry
// over from the previous entry of the same upload (systemd-journal-remote
// keeps the last __REALTIME_TIMESTAMP, __MONOTONIC_TIMESTAMP and _BOOT_ID it
// saw) is written in every entry: _BOOT_ID is m.Boot when that is a 128-bit
// id such as the kernel's boot_id, else all zeros, and
// __MONOTONIC_TIMESTAMP is the kernel timestamp for an extended message with
// such a boot id, else 0. m.Received must lie between 1970 and 2^55
// microseconds later; other times are written as 1 µs after 1970.
//
// Values are written as given, in the binary-safe form when they contain a
// newline, so untrusted text cannot add fields or entries.
func AppendEntry(b []byte, m sink.Message) []byte {
	rt := m.Received.UnixMicro()
	if rt <= 0 || rt > maxTimestamp {
		rt = 1
	}
	bootID, knownBoot := parseBootID(m.Boot)
	var mono uint64
	if knownBoot && m.Extended && m.TimestampUsec <= maxTimestamp {
		mono = m.TimestampUsec
	}
	lvl := m.Level
	if lvl < 0 || lvl > 7 {
		lvl = 7
	}
	var num [20]byte
	u := func(v uint64) string { return string(strconv.AppendUint(num[:0], v, 10)) }

	b = appendField(b, "__REALTIME_TIMESTAMP", u(uint64(rt)))
	b = appendField(b, "__MONOTONIC_TIMESTAMP", u(mono))
	b = appendField(b, "_BOOT_ID", bootID)
	b = appendField(b, "_HOSTNAME", m.Host)
	b = appendField(b, "_TRANSPORT", "kernel")
	b = appendField(b, "_SOURCE_REALTIME_TIMESTAMP", u(uint64(rt)))
	b = appendField(b, "SYSLOG_IDENTIFIER", Identifier)
	b = appendField(b, "PRIORITY", u(uint64(lvl)))
	if m.Facility >= 0 && m.Facility <= 23 {
		b = appendField(b, "SYSLOG_FACILITY", u(uint64(m.Facility)))
	}
	if m.Boot != "" {
		b = appendField(b, FieldBoot, m.Boot)
	}
	if m.Extended {
		b = appendField(b, FieldSeq, u(m.Seq))
		b = appendField(b, FieldKernelTS, u(m.TimestampUsec))
		b = appendField(b, "_SOURCE_MONOTONIC_TIMESTAMP", u(m.TimestampUsec))
	}
	if m.Release != "" {
		b = appendField(b, FieldRelease, m.Release)
	}
	b = appendField(b, "MESSAGE", m.Text)
	return append(b, '\n')
}

// appendField appends one field: "NAME=value\n", or, for a value holding a
// newline, "NAME\n", the value's length as a little-endian 64-bit integer,
// the value and "\n".
func appendField(b []byte, name, value string) []byte {
	b = append(b, name...)
	if strings.IndexByte(value, '\n') < 0 {
		b = append(b, '=')
		b = append(b, value...)
		return append(b, '\n')
	}
	b = append(b, '\n')
	b = binary.LittleEndian.AppendUint64(b, uint64(len(value)))
	b = append(b, value...)
	return append(b, '\n')
}

// parseBootID returns s as 32 lowercase hex digits if it is a 128-bit id
// (32 hex digits, or a UUID with dashes as in
// /proc/sys/kernel/random/boot_id), else zeroBootID and false. The all-zero
// id is not a boot.
func parseBootID(s string) (string, bool) {
	if len(s) == 36 && s[8] == '-' && s[13] == '-' && s[18] == '-' && s[23] == '-' {
		s = s[:8] + s[9:13] + s[14:18] + s[19:23] + s[24:]
	}
	if len(s) != 32 {
		return zeroBootID, false
	}
	var id [32]byte
	for i := range 32 {
		c := s[i]
		switch {
		case c >= '0' && c <= '9', c >= 'a' && c <= 'f':
		case c >= 'A' && c <= 'F':
			c += 'a' - 'A'
		default:
			return zeroBootID, false
		}
		id[i] = c
	}
	if string(id[:]) == zeroBootID {
		return zeroBootID, false
	}
	return string(id[:]), true
}
