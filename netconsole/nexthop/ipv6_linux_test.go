package nexthop

import (
	"testing"

	"golang.org/x/sys/unix"
)

func TestUsableIPv6Flags(t *testing.T) {
	for _, tt := range []struct {
		flags int
		want  bool
	}{
		{0, true},
		{unix.IFA_F_PERMANENT, true},
		{unix.IFA_F_TENTATIVE, false},
		{unix.IFA_F_TENTATIVE | unix.IFA_F_OPTIMISTIC, true},
		{unix.IFA_F_OPTIMISTIC, true},
		{unix.IFA_F_DADFAILED | unix.IFA_F_TENTATIVE, false},
		{unix.IFA_F_DEPRECATED, false},
		{unix.IFA_F_DEPRECATED | unix.IFA_F_OPTIMISTIC, false},
	} {
		if got := usable(tt.flags); got != tt.want {
			t.Errorf("usable(%#x) = %v, want %v", tt.flags, got, tt.want)
		}
	}
}
