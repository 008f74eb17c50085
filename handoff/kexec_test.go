package handoff

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/lastgasp/lastgasp/boards"
)

const (
	qemuBase    = "console=ttyS0 memmap=1M$0x5000000 panic=1"
	qemuRamoops = "mem_address=0x5000000 mem_size=0x100000 record_size=0x10000 ecc=0"
	target0     = "+6665@10.0.2.15/eth0,6666@10.0.2.2/52:55:0a:00:02:02"
	target1     = "+6665@10.0.2.15/eth0,7000@10.0.2.3/52:55:0a:00:02:03"
)

func TestKexecCmdline(t *testing.T) {
	for _, tt := range []struct {
		name    string
		p       KexecParams
		want    string
		wantErr bool
	}{
		{name: "qemu board, one target",
			p: KexecParams{Base: qemuBase, Netconsole: []string{target0}, Ramoops: qemuRamoops, LogLevel: 7},
			want: "console=ttyS0 memmap=1M$0x5000000 panic=1 ramoops.mem_address=0x5000000 ramoops.mem_size=0x100000 ramoops.record_size=0x10000 ramoops.ecc=0 loglevel=7 " +
				"netconsole=" + target0 + " netconsole.netconsole=" + target0},
		{name: "two targets, ignore_loglevel, extra last",
			p: KexecParams{Base: "console=ttyS0", Netconsole: []string{target0, target1}, LogLevel: -1, IgnoreLoglevel: true, Extra: `root=/dev/vda1 rw foo="a b"`},
			want: "console=ttyS0 ignore_loglevel netconsole=" + target0 + ";" + target1 + " netconsole.netconsole=" + target0 + ";" + target1 +
				` root=/dev/vda1 rw foo="a b"`},
		{name: "replaced base arguments dropped",
			p:    KexecParams{Base: "console=ttyS0 loglevel=3 netconsole=@/,@1.2.3.4/ ramoops.mem_size=1 lastgasp.handoff=kexec quiet", LogLevel: 4},
			want: "console=ttyS0 quiet loglevel=4"},
		{name: "no targets, no ramoops", p: KexecParams{Base: qemuBase, LogLevel: -1}, want: qemuBase},
		{name: "target with a separator", p: KexecParams{Netconsole: []string{"a;b"}, LogLevel: -1}, wantErr: true},
		{name: "too many targets", p: KexecParams{Netconsole: []string{target0, target1, target0, target1, target0}, LogLevel: -1}, wantErr: true},
		{name: "too long", p: KexecParams{Extra: "x=" + strings.Repeat("y", 2100), LogLevel: -1}, wantErr: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := KexecCmdline(tt.p)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("KexecCmdline() = %q, want an error", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("KexecCmdline() =\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

// FuzzKexecCmdline: whatever the board and extra arguments hold, the result
// fits the kernel, splits back into the arguments that went in, and carries
// the targets exactly once per form.
func FuzzKexecCmdline(f *testing.F) {
	f.Add(qemuBase, `root=/dev/vda1 rw foo="a b"`, target0)
	f.Add(`a="b c" netconsole=x loglevel=1`, "netconsole=y", target1)
	f.Add("", "", "")
	f.Fuzz(func(t *testing.T, base, extra, nc string) {
		var targets []string
		if nc != "" {
			targets = []string{nc}
		}
		s, err := KexecCmdline(KexecParams{Base: base, Extra: extra, Netconsole: targets, Ramoops: qemuRamoops, LogLevel: 7})
		if err != nil {
			return
		}
		if len(s) > MaxCmdline {
			t.Fatalf("%d bytes", len(s))
		}
		args := boards.CmdlineArgs(s)
		wantExtra := boards.CmdlineArgs(extra)
		if len(wantExtra) > 0 && !strings.Contains(extra, `"`) {
			if diff := cmp.Diff(wantExtra, args[len(args)-len(wantExtra):]); diff != "" {
				t.Fatalf("extra arguments did not survive (-want +got):\n%s", diff)
			}
		}
		if nc != "" && !strings.ContainsAny(base+extra, `"`) {
			n := 0
			for _, a := range args {
				if a == "netconsole="+nc {
					n++
				}
			}
			if strings.Contains(extra, "netconsole="+nc) {
				return
			}
			if n != 1 {
				t.Fatalf("%q: netconsole=%s appears %d times", s, nc, n)
			}
		}
	})
}
