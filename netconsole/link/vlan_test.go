package link

import (
	"errors"
	"strings"
	"testing"
)

func TestVLANName(t *testing.T) {
	for _, tt := range []struct {
		parent string
		id     int
		want   string
	}{
		{"eth0", 100, "eth0.100"},
		{"enp0s31f6", 4094, "enp0s31f6.4094"},
		{"enp0s31f6ab", 7, "enp0s31f6ab.7"},
	} {
		if got := VLANName(tt.parent, tt.id); got != tt.want || len(got) > maxIfname {
			t.Errorf("VLANName(%q, %d) = %q, want %q (<= %d bytes)", tt.parent, tt.id, got, tt.want, maxIfname)
		}
	}
	// Long parent names: short enough, stable, distinct per parent.
	a, b := VLANName("enp129s0f0np0", 4094), VLANName("enp129s0f1np1", 4094)
	if a == b || len(a) > maxIfname || len(b) > maxIfname || !strings.HasSuffix(a, ".4094") || a != VLANName("enp129s0f0np0", 4094) {
		t.Errorf("VLANName for two long parents = %q, %q: want distinct, stable names of <= %d bytes ending .4094", a, b, maxIfname)
	}
}

func TestCheckVLANID(t *testing.T) {
	for _, id := range []int{0, -1, 4095, 1 << 20} {
		if err := checkVLANID(id); !errors.Is(err, ErrVLAN) {
			t.Errorf("checkVLANID(%d) = %v, want ErrVLAN", id, err)
		}
	}
	for _, id := range []int{1, 100, 4094} {
		if err := checkVLANID(id); err != nil {
			t.Errorf("checkVLANID(%d) = %v", id, err)
		}
	}
}
