package main

import "testing"

// TestRcvbufFor checks the default receive buffer: 64 MiB over the
// sockets, never under 8 MiB a socket (the default before), and -rcvbuf
// as given when set.
func TestRcvbufFor(t *testing.T) {
	for _, tt := range []struct {
		flag, sockets, want int
	}{
		{0, 1, 64 << 20},
		{0, 2, 32 << 20},
		{0, 8, 8 << 20},
		{0, 32, 8 << 20},
		{0, 0, 64 << 20},
		{4096, 2, 4096},
		{1 << 30, 16, 1 << 30},
	} {
		if got := rcvbufFor(tt.flag, tt.sockets); got != tt.want {
			t.Errorf("rcvbufFor(%d, %d sockets) = %d, want %d", tt.flag, tt.sockets, got, tt.want)
		}
	}
}
