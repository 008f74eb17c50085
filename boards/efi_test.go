package boards

import (
	"errors"
	"strings"
	"testing"
)

func TestEFIKeys(t *testing.T) {
	base := "name = x\narch = amd64\nkernel.package = linux-image-amd64\n"
	tests := []struct {
		name      string
		board     string
		cmdline   string
		wantShare int
		wantSize  uint64
		wantErr   bool
	}{
		{name: "unset", board: base},
		{name: "percent", board: base + "efi.max_share = 50%\nefi.store_size = 262072\n", wantShare: 50, wantSize: 262072},
		{name: "plain number, hex size", board: base + "efi.max_share = 25\nefi.store_size = 0x3ffb8\n", wantShare: 25, wantSize: 262072},
		{name: "cmdline wins", board: base + "efi.max_share = 50%\n", cmdline: "console=ttyS0 lastgasp.efi_max_share=10%", wantShare: 10},
		{name: "zero share", board: base + "efi.max_share = 0%\n", wantErr: true},
		{name: "over 100", board: base + "efi.max_share = 101%\n", wantErr: true},
		{name: "not a number", board: base + "efi.max_share = half\n", wantErr: true},
		{name: "zero size", board: base + "efi.store_size = 0\n", wantErr: true},
		{name: "twice", board: base + "efi.max_share = 10%\nefi.max_share = 20%\n", wantErr: true},
		{name: "bad cmdline", board: base, cmdline: "lastgasp.efi_max_share=0", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := Parse(strings.NewReader(tt.board))
			if err == nil && tt.cmdline != "" {
				_, err = ApplyCmdline(b, tt.cmdline)
			}
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if err != nil {
				if !errors.Is(err, ErrInvalid) {
					t.Errorf("err %v does not wrap ErrInvalid", err)
				}
				return
			}
			if b.EFI.MaxShare != tt.wantShare || b.EFI.StoreSize != tt.wantSize {
				t.Errorf("EFI = %+v, want share %d size %d", b.EFI, tt.wantShare, tt.wantSize)
			}
		})
	}
}

func TestEFIBoardFile(t *testing.T) {
	b, err := Load("qemu-x86_64-efi.board")
	if err != nil {
		t.Fatal(err)
	}
	// OVMF_VARS_4M.fd's VARIABLE_STORE_HEADER.Size.
	if b.EFI.MaxShare != 50 || b.EFI.StoreSize != 262072 || b.Ramoops.Enabled() {
		t.Errorf("qemu-x86_64-efi: EFI %+v ramoops %v, want 50%% of 262072 and no ramoops", b.EFI, b.Ramoops.Enabled())
	}
	if strings.Contains(b.KernelCmdline, "pci=noacpi") {
		t.Errorf("kernel.cmdline %q: OVMF has no $PIR table, pci=noacpi leaves the NIC without interrupts", b.KernelCmdline)
	}
}
