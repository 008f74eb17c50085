package main

import (
	"math"
	"strings"
	"testing"
)

func TestBreakdown(t *testing.T) {
	serial := strings.Join([]string{
		"[    2.000000] Run /init as init process",
		"[    2.100000] lastgasp: start pid=1",
		"[    2.120000] lastgasp: board: qemu-x86_64 receivers=[10.0.2.2:6666] (19ms)",
		"[    2.130000] lastgasp: ring: region 0x5100000+0x10000 (9ms)",
		"[    2.280000] lastgasp: modules: loaded virtio_pci; took virtio_ring=3ms@1ms virtio_pci=40ms@5ms (150ms)",
		"[    2.290000] lastgasp: nic: candidates [eth0] (9ms)",
		"[    2.390000] lastgasp: dhcp: eth0 addr=10.0.2.15/24 (99ms)",
		"[    2.392000] lastgasp: netconsole armed host=h boot=b",
		"[    2.500000] lastgasp: ramoops: armed (1ms)",
	}, "\r\n")
	b := breakdown(serial)
	if !b.armed {
		t.Fatal("armed = false")
	}
	if math.Abs(b.initToArmed-392) > 0.01 {
		t.Errorf("initToArmed = %v, want 392", b.initToArmed)
	}
	// board 20 + ring 10 + nic 10 + the armed line 2.
	if math.Abs(b.own-42) > 0.01 {
		t.Errorf("own = %v, want 42", b.own)
	}
	out := strings.Join(b.lines, "\n")
	for _, want := range []string{"per module (duration@start): virtio_ring=3ms@1ms virtio_pci=40ms@5ms (150ms)", "/init to armed: 392ms"} {
		if !strings.Contains(out, want) {
			t.Errorf("breakdown lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "ramoops") {
		t.Errorf("breakdown goes past netconsole armed:\n%s", out)
	}
}

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		want float64
	}{
		{[]float64{565, 453, 461, 482, 528}, 482},
		{[]float64{3, 1}, 2},
		{[]float64{7}, 7},
	} {
		if got := median(tc.in); got != tc.want {
			t.Errorf("median(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}
