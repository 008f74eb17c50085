package receiver

import (
	"cmp"
	"slices"
	"sync"
)

// limiter is the rate limit every sender's bucket is checked against.
type limiter struct {
	rate  float64 // tokens (messages) per second; 0 turns limiting off
	burst float64 // bucket size
}

// bucket is one sender's token bucket: 12 bytes, because every identity
// has one.
type bucket struct {
	tokens float32
	last   int64 // unix nanoseconds of the last refill; 0: never used (full)
}

// take refills b for the time since its last use and takes one token,
// reporting whether there was one.
func (b *bucket) take(now int64, l limiter) bool {
	if b.last == 0 {
		b.tokens, b.last = float32(l.burst), now
	} else if d := now - b.last; d > 0 {
		t := float64(b.tokens) + float64(d)*l.rate/1e9
		b.tokens, b.last = float32(min(t, l.burst)), now
	}
	if b.tokens >= 1 {
		b.tokens--
		return true
	}
	return false
}

// peek refills b like take and reports whether it holds a token, without
// taking it.
func (b *bucket) peek(now int64, l limiter) bool {
	if b.last == 0 {
		return true
	}
	if d := now - b.last; d > 0 {
		t := float64(b.tokens) + float64(d)*l.rate/1e9
		b.tokens, b.last = float32(min(t, l.burst)), now
	}
	return b.tokens >= 1
}

// maxTopHosts bounds the hosts whose rate-limited totals are kept for
// RateLimitedHosts; beyond it the smallest total is forgotten.
const maxTopHosts = 1024

// topHosts keeps the hosts with the most rate-limited messages.
type topHosts struct {
	mu sync.Mutex
	m  map[string]uint64
}

func (t *topHosts) add(host string, n uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.m == nil {
		t.m = make(map[string]uint64)
	}
	if _, ok := t.m[host]; !ok && len(t.m) >= maxTopHosts {
		var low string
		var lowN uint64
		for h, c := range t.m {
			if low == "" || c < lowN {
				low, lowN = h, c
			}
		}
		if lowN > n {
			return
		}
		delete(t.m, low)
	}
	t.m[host] += n
}

// HostCount is a host's count of something.
type HostCount struct {
	Host  string
	Count uint64
}

// RateLimitedHosts returns up to n hosts with the most messages dropped by
// the rate limit (as noted in their logs so far), most first. Totals are
// kept for the 1024 hosts with the most.
func (s *Server) RateLimitedHosts(n int) []HostCount {
	t := &s.rateTop
	t.mu.Lock()
	out := make([]HostCount, 0, len(t.m))
	for h, c := range t.m {
		out = append(out, HostCount{h, c})
	}
	t.mu.Unlock()
	slices.SortFunc(out, func(a, b HostCount) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Host, b.Host))
	})
	if len(out) > n {
		out = out[:n]
	}
	return out
}
