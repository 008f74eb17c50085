package wire

import (
	"testing"
	"time"
)

func BenchmarkParse(b *testing.B) {
	d := []byte("6.1.0-56-amd64,6,423,3163223,-;virtio_net virtio0 eth0: link up\n SUBSYSTEM=net\n DEVICE=+net:eth0\n")
	b.SetBytes(int64(len(d)))
	for b.Loop() {
		if _, err := Parse(d); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkHostFeed feeds in-order messages with one reordered pair in
// every eight.
func BenchmarkHostFeed(b *testing.B) {
	h := NewHost(Config{})
	now := t0
	seq := uint64(0)
	for b.Loop() {
		s := seq
		switch seq % 8 {
		case 3:
			s++
		case 4:
			s--
		}
		h.Feed(Packet{Extended: true, Level: 6, Seq: s, TimestampUsec: s * 100, Text: "benchmark message"}, now)
		seq++
		now = now.Add(time.Microsecond)
	}
}
