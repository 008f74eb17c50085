package agent

import (
	"strings"
	"testing"
	"time"
)

// TestLogfASCII checks that durations reach the kernel log in ASCII: the
// kernel escapes "µs" to "\xc2\xb5s" on netconsole's extended format.
func TestLogfASCII(t *testing.T) {
	var kmsg strings.Builder
	l := &logger{kmsg: &kmsg}
	l.Logf(levelInfo, "dhcp: lease (carrier_to_lease=%v)", 900*time.Microsecond)
	if got, want := kmsg.String(), "<6>lastgasp: dhcp: lease (carrier_to_lease=900us)\n"; got != want {
		t.Errorf("Logf wrote %q, want %q", got, want)
	}
	if d, err := time.ParseDuration("900us"); err != nil || d != 900*time.Microsecond {
		t.Errorf("ParseDuration(900us) = %v, %v: the harness reads these back", d, err)
	}
}
