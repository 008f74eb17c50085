package wire

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Sanitize returns s fit for a one-line-per-message text log: invalid UTF-8
// bytes, control characters other than tab (C0, DEL and C1, newline
// included) and format characters (bidirectional overrides such as U+202E,
// zero-width spaces) are replaced by \xNN escapes of their bytes, the notation the
// kernel uses for extended messages. Everything else, backslashes included,
// is kept as is, so already escaped kernel text passes through unchanged.
func Sanitize(s string) string {
	i := 0
	for i < len(s) {
		// Printable ASCII and tab, nearly every byte of a kernel
		// message, without decoding runes: the decoding and the
		// Unicode table lookups were 8% of the collector's CPU.
		if c := s[i]; c >= ' ' && c < 0x7f || c == '\t' {
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if needsEscape(r, size) {
			break
		}
		i += size
	}
	if i == len(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 16)
	b.WriteString(s[:i])
	for i < len(s) {
		r, size := utf8.DecodeRuneInString(s[i:])
		if needsEscape(r, size) {
			for j := i; j < i+size; j++ {
				const hex = "0123456789abcdef"
				b.WriteString(`\x`)
				b.WriteByte(hex[s[j]>>4])
				b.WriteByte(hex[s[j]&0xf])
			}
		} else {
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

func needsEscape(r rune, size int) bool {
	if r == utf8.RuneError && size == 1 {
		return true
	}
	// Format characters (Cf) include the bidirectional overrides
	// (U+202E) and zero-width characters that make a log line read
	// differently from what it holds.
	return r != '\t' && (unicode.IsControl(r) || unicode.Is(unicode.Cf, r))
}
