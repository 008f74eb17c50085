package boards

import (
	"fmt"
	"net/url"
	"strings"
)

// MaxUploads bounds the collectors one board or command line may name.
const MaxUploads = 8

// ParseUploads reads an upload value: one or more collector base URLs,
// http(s)://host[:port][/path], separated by commas, tried in order (the
// first that acknowledges a record wins). Empty parts are refused, and so
// are a URL with a query, fragment, user or comma, and more than
// MaxUploads URLs.
func ParseUploads(v string) ([]string, error) {
	if strings.TrimSpace(v) == "" {
		return nil, fmt.Errorf("upload: empty: %w", ErrInvalid)
	}
	parts := strings.Split(v, ",")
	if len(parts) > MaxUploads {
		return nil, fmt.Errorf("upload: %d URLs, at most %d: %w", len(parts), MaxUploads, ErrInvalid)
	}
	out := make([]string, 0, len(parts))
	for _, p := range parts {
		p = strings.TrimSpace(p)
		u, err := url.Parse(p)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
			u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" || strings.ContainsAny(p, " \t") || strings.HasSuffix(u.Host, ":") {
			return nil, fmt.Errorf("upload %q: want http(s)://host[:port], comma-separated: %w", p, ErrInvalid)
		}
		out = append(out, p)
	}
	return out, nil
}

// UploadURLs returns the board's collectors in the order the agent tries
// them; nil when the board has no upload URL (or an invalid one, which
// Validate refuses).
func (b *Board) UploadURLs() []string {
	if b.Upload == "" {
		return nil
	}
	us, err := ParseUploads(b.Upload)
	if err != nil {
		return nil
	}
	return us
}
