package boards

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseHandoff(t *testing.T) {
	const base = "name = b\narch = amd64\nkernel.package = k\n"
	for _, tt := range []struct {
		name    string
		in      string
		handoff string
		kexec   Kexec
		ignore  bool
		wantErr bool
	}{
		{name: "default", in: base, handoff: "rescue"},
		{name: "switch_root", in: base + "handoff = switch_root\n", handoff: "switch_root"},
		{name: "kexec", in: base + "handoff = kexec\nkexec.kernel = /boot/vmlinuz\nkexec.initrd = /boot/initrd.img\nkexec.cmdline = root=/dev/vda1 rw quiet\n",
			handoff: "kexec", kexec: Kexec{Kernel: "/boot/vmlinuz", Initrd: "/boot/initrd.img", Cmdline: "root=/dev/vda1 rw quiet"}},
		{name: "kexec kernel from cmdline later", in: base + "handoff = kexec\n", handoff: "kexec"},
		{name: "ignore_loglevel", in: base + "console.ignore_loglevel = 1\n", handoff: "rescue", ignore: true},
		{name: "bad handoff", in: base + "handoff = reboot\n", wantErr: true},
		{name: "relative kernel", in: base + "kexec.kernel = boot/vmlinuz\n", wantErr: true},
		{name: "unclean kernel", in: base + "kexec.kernel = /boot/../vmlinuz\n", wantErr: true},
		{name: "bad bool", in: base + "console.ignore_loglevel = yes please\n", wantErr: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b, err := Parse(strings.NewReader(tt.in))
			if tt.wantErr {
				if !errors.Is(err, ErrInvalid) {
					t.Fatalf("Parse() = %v, want ErrInvalid", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if b.Handoff != tt.handoff || b.IgnoreLoglevel != tt.ignore {
				t.Errorf("handoff/ignore_loglevel = %q/%v, want %q/%v", b.Handoff, b.IgnoreLoglevel, tt.handoff, tt.ignore)
			}
			if diff := cmp.Diff(tt.kexec, b.Kexec); diff != "" {
				t.Errorf("kexec (-want +got):\n%s", diff)
			}
		})
	}
}

func TestApplyCmdlineHandoff(t *testing.T) {
	for _, tt := range []struct {
		name    string
		cmdline string
		handoff string
		kexec   Kexec
		ignore  bool
		wantErr bool
	}{
		{name: "board", cmdline: "console=ttyS0", handoff: "rescue"},
		{name: "switch_root", cmdline: "root=/dev/vda lastgasp.handoff=switch_root", handoff: "switch_root"},
		{name: "kexec", cmdline: `lastgasp.handoff=kexec lastgasp.kexec_kernel=/boot/vmlinuz lastgasp.kexec_initrd=/boot/initrd.img lastgasp.kexec_cmdline="root=/dev/vda1 rw"`,
			handoff: "kexec", kexec: Kexec{Kernel: "/boot/vmlinuz", Initrd: "/boot/initrd.img", Cmdline: "root=/dev/vda1 rw"}},
		{name: "ignore_loglevel bare", cmdline: "lastgasp.ignore_loglevel", handoff: "rescue", ignore: true},
		{name: "ignore_loglevel 1", cmdline: "lastgasp.ignore_loglevel=1", handoff: "rescue", ignore: true},
		{name: "ignore_loglevel 0", cmdline: "lastgasp.ignore_loglevel=0", handoff: "rescue"},
		{name: "bad handoff", cmdline: "lastgasp.handoff=shutdown", wantErr: true},
		{name: "relative kernel", cmdline: "lastgasp.kexec_kernel=vmlinuz", wantErr: true},
		{name: "bad bool", cmdline: "lastgasp.ignore_loglevel=maybe", wantErr: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b, err := Load("qemu-x86_64.board")
			if err != nil {
				t.Fatal(err)
			}
			_, err = ApplyCmdline(b, tt.cmdline)
			if tt.wantErr {
				if !errors.Is(err, ErrInvalid) {
					t.Fatalf("ApplyCmdline(%q) = %v, want ErrInvalid", tt.cmdline, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if b.Handoff != tt.handoff || b.IgnoreLoglevel != tt.ignore {
				t.Errorf("handoff/ignore_loglevel = %q/%v, want %q/%v", b.Handoff, b.IgnoreLoglevel, tt.handoff, tt.ignore)
			}
			if diff := cmp.Diff(tt.kexec, b.Kexec); diff != "" {
				t.Errorf("kexec (-want +got):\n%s", diff)
			}
			if err := b.Validate(); err != nil {
				t.Errorf("Validate() after ApplyCmdline = %v", err)
			}
		})
	}
}

func TestMainLogLevel(t *testing.T) {
	b, err := Load("qemu-x86_64.board")
	if err != nil {
		t.Fatal(err)
	}
	if b.MainLogLevel != 5 {
		t.Errorf("default MainLogLevel = %d, want 5 (warnings and worse)", b.MainLogLevel)
	}
	if _, err := ApplyCmdline(b, "lastgasp.main_loglevel=7"); err != nil || b.MainLogLevel != 7 {
		t.Errorf("lastgasp.main_loglevel=7: level %d, err %v", b.MainLogLevel, err)
	}
	if _, err := ApplyCmdline(b, "lastgasp.main_loglevel=9"); err == nil {
		t.Error("lastgasp.main_loglevel=9 accepted")
	}
}
