package agent

import (
	"strings"
	"testing"
	"time"
)

// Records as /dev/kmsg returns them (Documentation/ABI/testing/dev-kmsg).
func TestParseKmsg(t *testing.T) {
	tests := []struct {
		name string
		rec  string
		seq  uint64
		line string
		ok   bool
	}{
		{name: "plain", rec: "6,339,5140900,-;NET: Registered protocol family 10\n", seq: 339, line: "[    5.140900] NET: Registered protocol family 10", ok: true},
		{name: "continuation lines dropped", rec: "7,160,424069,-;pci_root PNP0A03:00: host bridge window [io  0x0000-0x0cf7] (ignored)\n SUBSYSTEM=acpi\n DEVICE=+acpi:PNP0A03:00\n", seq: 160, line: "[    0.424069] pci_root PNP0A03:00: host bridge window [io  0x0000-0x0cf7] (ignored)", ok: true},
		{name: "with caller field", rec: "4,1,12,c,caller=T1;lastgasp: x\n", seq: 1, line: "[    0.000012] lastgasp: x", ok: true},
		{name: "escaped bytes kept", rec: "6,2,3,-;a\\x0ab\n", seq: 2, line: "[    0.000003] a\\x0ab", ok: true},
		{name: "no text", rec: "6,2,3,-\n", ok: false},
		{name: "bad seq", rec: "6,x,3,-;t\n", ok: false},
		{name: "short header", rec: "6,3;t\n", ok: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			seq, line, ok := parseKmsg(tt.rec)
			if ok != tt.ok || ok && (seq != tt.seq || line != tt.line) {
				t.Errorf("parseKmsg(%q) = %d, %q, %v, want %d, %q, %v", tt.rec, seq, line, ok, tt.seq, tt.line, tt.ok)
			}
		})
	}
}

func FuzzParseKmsg(f *testing.F) {
	f.Add("6,339,5140900,-;NET: Registered protocol family 10\n")
	f.Add("7,160,424069,-;x\n SUBSYSTEM=acpi\n")
	f.Fuzz(func(t *testing.T, rec string) {
		_, line, ok := parseKmsg(rec)
		if ok && (!strings.HasPrefix(line, "[") || strings.Contains(line, "\n")) {
			t.Fatalf("parseKmsg(%q) line %q", rec, line)
		}
	})
}

func TestMonoStamp(t *testing.T) {
	if got := monoStamp(3*time.Second + 264867*time.Microsecond); got != "[    3.264867]" {
		t.Errorf("monoStamp = %q, want the kernel's [    3.264867]", got)
	}
}
