package handoff

import (
	"errors"
	"path"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParseRoot(t *testing.T) {
	for _, tt := range []struct {
		name    string
		cmdline string
		want    Root
		err     error // errors.Is target; nil: no error
		anyErr  bool
	}{
		{name: "minimal", cmdline: "console=ttyS0 root=/dev/vda",
			want: Root{Device: "/dev/vda", ReadOnly: true}},
		{name: "full", cmdline: `root=/dev/vda1 rootfstype=ext4,minix rootflags=data=ordered rw rootwait rootdelay=2 init=/lib/systemd/systemd -- single "x y"`,
			want: Root{Device: "/dev/vda1", FSTypes: []string{"ext4", "minix"}, Data: "data=ordered", Init: "/lib/systemd/systemd",
				InitArgs: []string{"single", "x y"}, Wait: true, Delay: 2 * time.Second}},
		{name: "last ro/rw wins", cmdline: "rw root=/dev/sda ro", want: Root{Device: "/dev/sda", ReadOnly: true}},
		{name: "last root wins", cmdline: "root=/dev/sda root=/dev/vdb", want: Root{Device: "/dev/vdb", ReadOnly: true}},
		{name: "args after -- are init's", cmdline: "root=/dev/vda -- root=/dev/other", want: Root{Device: "/dev/vda", ReadOnly: true, InitArgs: []string{"root=/dev/other"}}},
		{name: "lookalikes ignored", cmdline: "root=/dev/vda nfsroot=/x rootfstype= myinit=/x lastgasp.root=/dev/y",
			want: Root{Device: "/dev/vda", ReadOnly: true}},
		{name: "no root", cmdline: "console=ttyS0 init=/bin/sh", err: ErrNoRoot},
		{name: "root without value", cmdline: "root", err: ErrNoRoot},
		{name: "uuid", cmdline: "root=UUID=0b3c-11", err: ErrUnsupportedRoot},
		{name: "label", cmdline: "root=LABEL=main", err: ErrUnsupportedRoot},
		{name: "major:minor", cmdline: "root=fe01", err: ErrUnsupportedRoot},
		{name: "dotdot", cmdline: "root=/dev/../etc/passwd", err: ErrUnsupportedRoot},
		{name: "relative init", cmdline: "root=/dev/vda init=sbin/init", anyErr: true},
		{name: "bad rootdelay", cmdline: "root=/dev/vda rootdelay=soon", anyErr: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseRoot(tt.cmdline)
			switch {
			case tt.err != nil:
				if !errors.Is(err, tt.err) {
					t.Fatalf("ParseRoot(%q) = %v, want %v", tt.cmdline, err, tt.err)
				}
				return
			case tt.anyErr:
				if err == nil {
					t.Fatalf("ParseRoot(%q) succeeded, want an error", tt.cmdline)
				}
				return
			case err != nil:
				t.Fatalf("ParseRoot(%q) = %v", tt.cmdline, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseRoot(%q) (-want +got):\n%s", tt.cmdline, diff)
			}
		})
	}
}

func TestRootInitsAndString(t *testing.T) {
	r := Root{Device: "/dev/vda", ReadOnly: true}
	if diff := cmp.Diff(DefaultInits, r.Inits()); diff != "" {
		t.Errorf("Inits() (-want +got):\n%s", diff)
	}
	if got, want := r.String(), "/dev/vda (auto,ro) init=default"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	r.Init, r.FSTypes, r.ReadOnly = "/init", []string{"minix"}, false
	if diff := cmp.Diff([]string{"/init"}, r.Inits()); diff != "" {
		t.Errorf("Inits() (-want +got):\n%s", diff)
	}
	if got, want := r.String(), "/dev/vda (minix,rw) init=/init"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

func TestParseFilesystems(t *testing.T) {
	const in = "nodev\tsysfs\nnodev\ttmpfs\n\text3\n\text4\nnodev\tconfigfs\n\tminix\n"
	got, err := ParseFilesystems(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"ext3", "ext4", "minix"}, got); diff != "" {
		t.Errorf("ParseFilesystems (-want +got):\n%s", diff)
	}
}

func FuzzParseRoot(f *testing.F) {
	f.Add("console=ttyS0 root=/dev/vda rootfstype=minix ro")                // the e2e switch_root line
	f.Add(`root=/dev/vda1 rootflags="a b" rw rootwait init=/x -- -s "y z"`) // quoting, init args
	f.Add("root=UUID=1234 rootdelay=99999")                                 // unsupported, out of range
	f.Add("root=/dev/./vda root= --")                                       // unclean, empty
	f.Fuzz(func(t *testing.T, cmdline string) {
		r, err := ParseRoot(cmdline)
		ParseFilesystems(strings.NewReader(cmdline)) // must not fail on any text
		if err != nil {
			return
		}
		if !strings.HasPrefix(r.Device, "/dev/") || path.Clean(r.Device) != r.Device {
			t.Fatalf("ParseRoot(%q) accepted device %q", cmdline, r.Device)
		}
		for _, in := range r.Inits() {
			if !strings.HasPrefix(in, "/") {
				t.Fatalf("ParseRoot(%q) accepted init %q", cmdline, in)
			}
		}
		for _, fs := range r.FSTypes {
			if fs == "" || strings.Contains(fs, ",") {
				t.Fatalf("ParseRoot(%q): file system type %q", cmdline, fs)
			}
		}
		if r.Delay < 0 || r.Delay > time.Hour {
			t.Fatalf("ParseRoot(%q): delay %v", cmdline, r.Delay)
		}
	})
}
