package boards

// Character-set checks for names, tags, host and interface names. They were
// regular expressions; package regexp (with regexp/syntax) cost the agent
// about 66 KB of xz for five one-line patterns, so the patterns are spelled
// out here. charset_test.go keeps each former expression as the reference
// and fuzzes one against the other.

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

func isLowerDigit(c byte) bool { return 'a' <= c && c <= 'z' || '0' <= c && c <= '9' }

// allOf reports whether s is min..max bytes long and every byte satisfies ok
// (max < 0: no upper limit).
func allOf(s string, min, max int, ok func(byte) bool) bool {
	if len(s) < min || max >= 0 && len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !ok(s[i]) {
			return false
		}
	}
	return true
}

// validName: ^[a-z0-9][a-z0-9._-]*$ (board and module names).
func validName(s string) bool {
	return s != "" && isLowerDigit(s[0]) && allOf(s[1:], 0, -1, func(c byte) bool {
		return isLowerDigit(c) || c == '.' || c == '_' || c == '-'
	})
}

// validTag: ^[A-Za-z0-9_.]+$ (Go build tags).
func validTag(s string) bool {
	return allOf(s, 1, -1, func(c byte) bool { return isAlnum(c) || c == '_' || c == '.' })
}

func isNameChar(c byte) bool { return isAlnum(c) || c == '.' || c == '_' || c == '-' }

// validHost: ^[A-Za-z0-9._-]{1,64}$ (lastgasp.host=).
func validHost(s string) bool { return allOf(s, 1, 64, isNameChar) }

// validIfname: ^[A-Za-z0-9_.-]{1,15}$, what the kernel takes as an
// interface name (IFNAMSIZ 16 with the NUL), conservatively.
func validIfname(s string) bool { return allOf(s, 1, 15, isNameChar) }
