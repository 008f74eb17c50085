package boards

import (
	"strings"
	"testing"
)

func TestRamoopsSource(t *testing.T) {
	const base = "name=x\narch=arm64\nkernel.package=k\n"
	tests := []struct {
		name       string
		in         string
		wantDT     bool
		wantParams string
		wantErr    bool
	}{
		{name: "default params", in: base + "ramoops.mem_address=0x5000000\nramoops.mem_size=0x100000\nramoops.record_size=0x10000\n",
			wantParams: "mem_address=0x5000000 mem_size=0x100000 record_size=0x10000 ecc=0"},
		{name: "devicetree alone", in: base + "ramoops.source=devicetree\n", wantDT: true},
		{name: "devicetree with the node's values", in: base + "ramoops.source=devicetree\nramoops.mem_address=0x50000000\nramoops.mem_size=0x100000\nramoops.record_size=0x10000\n", wantDT: true},
		{name: "dt spelling", in: base + "ramoops.source=dt\n", wantDT: true},
		{name: "params spelled out", in: base + "ramoops.source=params\n"},
		{name: "devicetree, bad layout", in: base + "ramoops.source=devicetree\nramoops.mem_address=0x50000000\nramoops.mem_size=0x100000\nramoops.record_size=0x200000\n", wantErr: true},
		{name: "unknown source", in: base + "ramoops.source=acpi\n", wantErr: true},
		{name: "given twice", in: base + "ramoops.source=dt\nramoops.source=dt\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := Parse(strings.NewReader(tt.in))
			if (err != nil) != tt.wantErr {
				t.Fatalf("Parse: %v, want error %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if b.Ramoops.FromDT != tt.wantDT || b.Ramoops.Params() != tt.wantParams {
				t.Errorf("FromDT=%v Params=%q, want %v %q", b.Ramoops.FromDT, b.Ramoops.Params(), tt.wantDT, tt.wantParams)
			}
			if tt.wantDT && !b.Ramoops.Enabled() {
				t.Errorf("a device-tree ramoops is not Enabled")
			}
		})
	}
}

func TestAarch64Board(t *testing.T) {
	b, err := Load("qemu-aarch64.board")
	if err != nil {
		t.Fatal(err)
	}
	if b.Arch != "arm64" || !b.Ramoops.FromDT || b.Ramoops.Params() != "" || !b.Ring.Enabled() {
		t.Errorf("arch=%s FromDT=%v params=%q ring=%+v", b.Arch, b.Ramoops.FromDT, b.Ramoops.Params(), b.Ring)
	}
}
