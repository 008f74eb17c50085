package link

import (
	"errors"
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
		{"enp0s31f6abc", 4094, "vlan4094"}, // 17 bytes as parent.id
		{"enp0s31f6ab", 7, "enp0s31f6ab.7"},
	} {
		if got := VLANName(tt.parent, tt.id); got != tt.want || len(got) > maxIfname {
			t.Errorf("VLANName(%q, %d) = %q, want %q (<= %d bytes)", tt.parent, tt.id, got, tt.want, maxIfname)
		}
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
