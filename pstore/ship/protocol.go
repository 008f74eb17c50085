package ship

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Header names of the upload request.
const (
	HeaderRecordName    = "Lastgasp-Record-Name"
	HeaderBootID        = "Lastgasp-Boot-Id"
	HeaderKernelRelease = "Lastgasp-Kernel-Release"
	HeaderRecordTime    = "Lastgasp-Record-Time"
	// The three crash-group headers come together: a record that is part
	// Part of the Parts dmesg records of crash CrashID (records.Crashes).
	HeaderCrashID = "Lastgasp-Crash-Id"
	HeaderPart    = "Lastgasp-Part"
	HeaderParts   = "Lastgasp-Parts"
	// HeaderDecompressed "true": the body is the decompressed text of a
	// ".enc.z" record. HeaderCorrupt "true": the body is a ".enc.z"
	// record's compressed data, which is not a valid deflate stream.
	HeaderDecompressed = "Lastgasp-Decompressed"
	HeaderCorrupt      = "Lastgasp-Corrupt"
	// HeaderRecordBootID is the boot the record came from, when the
	// agent knows it (a ring record: the boot id in the ring's header),
	// as opposed to Lastgasp-Boot-Id, the uploading boot. Optional: a
	// collector that does not know it files the record as before.
	HeaderRecordBootID = "Lastgasp-Record-Boot-Id"
)

// maxParts bounds Lastgasp-Parts.
const maxParts = 10000

// Limits on the identifiers of the protocol.
const (
	maxHost          = 253
	maxRecordName    = 128
	maxBootID        = 64
	maxKernelRelease = 256
	maxAck           = 64 << 10
)

var (
	ErrBadHost   = errors.New("bad host name")
	ErrBadName   = errors.New("bad record name")
	ErrBadDigest = errors.New("bad digest")
	ErrBadHeader = errors.New("bad header")
)

// Ack is the collector's acknowledgement that it stored a record durably.
type Ack struct {
	Digest    string `json:"digest"`    // SHA-256 of the record, lowercase hex
	Stored    bool   `json:"stored"`    // always true in an acknowledgement
	Duplicate bool   `json:"duplicate"` // the collector already held this record
	Path      string `json:"path"`      // where, relative to the collector's root, with '/' separators
}

// Metadata is the content of the ".json" file stored beside each record.
type Metadata struct {
	Host          string    `json:"host"`
	BootID        string    `json:"boot_id,omitempty"`
	KernelRelease string    `json:"kernel_release,omitempty"`
	RecordName    string    `json:"record_name"`
	RecordType    string    `json:"record_type,omitempty"` // from records.ParseName; empty if the name did not parse
	Compressed    bool      `json:"compressed,omitempty"`
	Digest        string    `json:"digest"`
	Size          int64     `json:"size"`
	Received      time.Time `json:"received"`
	RecordTime    time.Time `json:"record_time,omitzero"`
	RemoteAddr    string    `json:"remote_addr"`
	Decompressed  bool      `json:"decompressed,omitempty"` // the agent inflated a ".enc.z" record; RecordName keeps the suffix
	Corrupt       bool      `json:"corrupt,omitempty"`      // compressed data the agent could not inflate, stored raw
	CrashID       string    `json:"crash_id,omitempty"`     // the crash this record is one part of
	Part          int       `json:"part,omitempty"`         // its part number, 1 = newest chunk
	Parts         int       `json:"parts,omitempty"`        // how many parts the crash has
	// RecordBootID is the boot the record came from (HeaderRecordBootID),
	// if the upload said.
	RecordBootID string `json:"record_boot_id,omitempty"`
}

// Digest returns the lowercase hex SHA-256 of data, the name of a record in
// the protocol.
func Digest(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// RecordPath returns the URL path to which a record of host with the given
// digest is uploaded.
func RecordPath(host, digest string) string {
	return "/v1/hosts/" + host + "/records/" + digest
}

// ParsePath splits a URL path made by RecordPath. ok is false if p does not
// have that shape; host and digest are not validated.
func ParsePath(p string) (host, digest string, ok bool) {
	rest, ok := strings.CutPrefix(p, "/v1/hosts/")
	if !ok {
		return "", "", false
	}
	host, digest, ok = strings.Cut(rest, "/records/")
	if !ok || strings.Contains(host, "/") || strings.Contains(digest, "/") {
		return "", "", false
	}
	return host, digest, true
}

// isNameByte reports whether c may appear in a host or record name.
func isNameByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
}

// checkFileName validates s for use as one path component: 1 to limit bytes
// of [A-Za-z0-9._-], not starting with '.' (so neither "." nor "..", and no
// hidden files).
func checkFileName(s string, limit int) bool {
	if s == "" || len(s) > limit || s[0] == '.' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isNameByte(s[i]) {
			return false
		}
	}
	return true
}

func CheckHost(host string) error {
	if !checkFileName(host, maxHost) {
		return fmt.Errorf("%q: %w", host, ErrBadHost)
	}
	return nil
}

func CheckRecordName(name string) error {
	if !checkFileName(name, maxRecordName) {
		return fmt.Errorf("%q: %w", name, ErrBadName)
	}
	return nil
}

func CheckDigest(d string) error {
	if len(d) != sha256.Size*2 {
		return fmt.Errorf("%q: %w", d, ErrBadDigest)
	}
	for i := 0; i < len(d); i++ {
		if c := d[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return fmt.Errorf("%q: %w", d, ErrBadDigest)
		}
	}
	return nil
}

// CheckBootID accepts what /proc/sys/kernel/random/boot_id holds, and
// anything else made of letters, digits and '-'.
func CheckBootID(s string) error {
	if len(s) > maxBootID {
		return fmt.Errorf("%s: too long: %w", HeaderBootID, ErrBadHeader)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return fmt.Errorf("%s %q: %w", HeaderBootID, s, ErrBadHeader)
		}
	}
	return nil
}

// CheckKernelRelease accepts printable ASCII.
func CheckKernelRelease(s string) error {
	if len(s) > maxKernelRelease {
		return fmt.Errorf("%s: too long: %w", HeaderKernelRelease, ErrBadHeader)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e {
			return fmt.Errorf("%s %q: %w", HeaderKernelRelease, s, ErrBadHeader)
		}
	}
	return nil
}

// SanitizeHost turns s, for example a DHCP host name or a MAC address, into
// a host name the protocol accepts: bytes outside [A-Za-z0-9._-] become '-',
// a leading '.' becomes '_', and the result is cut to 253 bytes. An empty s
// gives "unknown".
func SanitizeHost(s string) string {
	if s == "" {
		return "unknown"
	}
	if len(s) > maxHost {
		s = s[:maxHost]
	}
	b := []byte(s)
	for i, c := range b {
		if !isNameByte(c) {
			b[i] = '-'
		}
	}
	if b[0] == '.' {
		b[0] = '_'
	}
	return string(b)
}

// CrashHeaders checks the crash-group headers: all three absent, or a crash
// id shaped like a record name and 1 <= part <= parts <= 10000.
func CrashHeaders(id, part, parts string) (string, int, int, error) {
	if id == "" && part == "" && parts == "" {
		return "", 0, 0, nil
	}
	if err := CheckRecordName(id); err != nil {
		return "", 0, 0, fmt.Errorf("%s: %w: %w", HeaderCrashID, err, ErrBadHeader)
	}
	p, err1 := strconv.Atoi(part)
	n, err2 := strconv.Atoi(parts)
	if err1 != nil || err2 != nil || p < 1 || p > n || n > maxParts {
		return "", 0, 0, fmt.Errorf("%s %q, %s %q: want 1 <= part <= parts <= %d: %w", HeaderPart, part, HeaderParts, parts, maxParts, ErrBadHeader)
	}
	return id, p, n, nil
}

// ParseFlag checks a boolean header: absent, "true" or "false".
func ParseFlag(name, v string) (bool, error) {
	switch v {
	case "", "false":
		return false, nil
	case "true":
		return true, nil
	}
	return false, fmt.Errorf("%s %q: want true or false: %w", name, v, ErrBadHeader)
}
