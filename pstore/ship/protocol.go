package ship

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Header names of the upload request.
const (
	HeaderRecordName    = "Lastgasp-Record-Name"
	HeaderBootID        = "Lastgasp-Boot-Id"
	HeaderKernelRelease = "Lastgasp-Kernel-Release"
	HeaderRecordTime    = "Lastgasp-Record-Time"
)

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
