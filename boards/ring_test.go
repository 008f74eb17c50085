package boards

import (
	"strings"
	"testing"
)

func TestRingKeys(t *testing.T) {
	const base = "name=x\narch=amd64\nkernel.package=k\nramoops.mem_address=0x5000000\nramoops.mem_size=0x100000\nramoops.record_size=0x10000\n"
	tests := []struct {
		name    string
		in      string
		want    Ring
		wantErr bool
	}{
		{name: "none", in: base},
		{name: "beside ramoops", in: base + "ring.mem_address=0x5100000\nring.mem_size=0x10000\n", want: Ring{MemAddress: 0x5100000, MemSize: 0x10000}},
		{name: "pmsg size", in: base + "ring.mem_address=0x5100000\nring.mem_size=0x10000\nring.pmsg_size=0x1000\n", want: Ring{MemAddress: 0x5100000, MemSize: 0x10000, PmsgSize: 0x1000}},
		{name: "overlaps ramoops end", in: base + "ring.mem_address=0x50f0000\nring.mem_size=0x20000\n", wantErr: true},
		{name: "inside ramoops", in: base + "ring.mem_address=0x5000000\nring.mem_size=0x10000\n", wantErr: true},
		{name: "no address", in: base + "ring.mem_size=0x10000\n", wantErr: true},
		{name: "too small", in: base + "ring.mem_address=0x5100000\nring.mem_size=0x100\n", wantErr: true},
		{name: "pmsg takes a half", in: base + "ring.mem_address=0x5100000\nring.mem_size=0x10000\nring.pmsg_size=0x8000\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := Parse(strings.NewReader(tt.in))
			if (err != nil) != tt.wantErr {
				t.Fatalf("Parse: %v, want error %v", err, tt.wantErr)
			}
			if err == nil && b.Ring != tt.want {
				t.Errorf("Ring = %+v, want %+v", b.Ring, tt.want)
			}
		})
	}
}

func TestTestPanicMidRun(t *testing.T) {
	b, _ := Parse(strings.NewReader("name=x\narch=amd64\nkernel.package=k\n"))
	c, err := ApplyCmdline(b, "console=ttyS0 lastgasp.test_panic=midrun")
	if err != nil || !c.TestPanicMidRun || c.TestPanic {
		t.Errorf("midrun=%v panic=%v err=%v, want true false nil", c.TestPanicMidRun, c.TestPanic, err)
	}
}
