package replay

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/lastgasp/lastgasp/netconsole/wire"
)

// Records as the kernel documents and prints them.
const (
	// Documentation/ABI/testing/dev-kmsg.
	abiRecord = "7,160,424069,-;pci_root PNP0A03:00: host bridge window [io  0x0000-0x0cf7] (ignored)\n SUBSYSTEM=acpi\n DEVICE=+acpi:PNP0A03:00\n"
	// The field notes' capture of a test panic (extended netconsole).
	panicRecord = "0,423,3163223,-;Kernel panic - not syncing: sysrq triggered crash\n"
	// The first record of every boot, as /dev/kmsg of the Debian guest
	// kernel prints it.
	linuxVersion = "5,0,0,-;Linux version 6.1.0-56-amd64 (debian-kernel@lists.debian.org) (gcc-12 (Debian 12.2.0-14+deb12u1) 12.2.0, GNU ld (GNU Binutils for Debian) 2.40) #1 SMP PREEMPT_DYNAMIC Debian 6.1.192-2 (2025-11-01)\n"
)

func TestParseRecord(t *testing.T) {
	for _, tt := range []struct {
		name string
		in   string
		want Record
		text string
		err  bool
	}{
		{"abi example with dictionary", abiRecord,
			Record{Header: "7,160,424069,-", Prival: 7, Seq: 160, TimestampUsec: 424069, Body: abiRecord[15:]},
			"pci_root PNP0A03:00: host bridge window [io  0x0000-0x0cf7] (ignored)", false},
		{"panic", panicRecord, Record{Header: "0,423,3163223,-", Prival: 0, Seq: 423, TimestampUsec: 3163223, Body: panicRecord[16:]},
			"Kernel panic - not syncing: sysrq triggered crash", false},
		{"seq 0", linuxVersion, Record{Header: "5,0,0,-", Prival: 5, Seq: 0, TimestampUsec: 0, Body: linuxVersion[8:]},
			linuxVersion[8 : len(linuxVersion)-1], false},
		{"CONFIG_PRINTK_CALLER", "6,5,6,-,caller=T123;hi\n", Record{Header: "6,5,6,-,caller=T123", Prival: 6, Seq: 5, TimestampUsec: 6, Body: "hi\n"}, "hi", false},
		{"continuation", "4,7,8,c;partial\n", Record{Header: "4,7,8,c", Prival: 4, Seq: 7, TimestampUsec: 8, Body: "partial\n"}, "partial", false},
		{"escaped bytes stay escaped", "6,9,10,-;\\xc2\\xb5s\n", Record{Header: "6,9,10,-", Prival: 6, Seq: 9, TimestampUsec: 10, Body: "\\xc2\\xb5s\n"}, "\\xc2\\xb5s", false},
		{"no header", "hello\n", Record{}, "", true},
		{"too few fields", "6,1,2;x\n", Record{}, "", true},
		{"bad flags", "6,1,2,x;x\n", Record{}, "", true},
		{"leading zero", "6,01,2,-;x\n", Record{}, "", true},
		{"prival out of range", "2048,1,2,-;x\n", Record{}, "", true},
		{"seq overflows", "6,99999999999999999999,2,-;x\n", Record{}, "", true},
		{"ncfrag in a record", "6,1,2,-,ncfrag=0/3;x\n", Record{}, "", true},
		{"already marked", "6,1,2,-," + wire.ReplayField + ";x\n", Record{}, "", true},
		{"empty field", "6,1,2,-,;x\n", Record{}, "", true},
		{"empty", "", Record{}, "", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseRecord([]byte(tt.in))
			if tt.err {
				if !errors.Is(err, ErrMalformed) {
					t.Fatalf("ParseRecord(%q) = %+v, %v; want ErrMalformed", tt.in, got, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseRecord(%q) = %v", tt.in, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseRecord(%q) (-want +got):\n%s", tt.in, diff)
			}
			if got.Text() != tt.text {
				t.Errorf("Text() = %q, want %q", got.Text(), tt.text)
			}
		})
	}
}

func TestAppendDatagrams(t *testing.T) {
	long := "6,42,5000000,-;" + strings.Repeat("0123456789", 250) + "\n SUBSYSTEM=net\n"
	for _, tt := range []struct {
		name, rec, release, userdata string
		want                         []string // whole datagrams, or (for long ones) their headers
	}{
		{"short", panicRecord, "", "", []string{"0,423,3163223,-,lastgasp_replay=1;Kernel panic - not syncing: sysrq triggered crash\n"}},
		{"dictionary kept", abiRecord, "", "", []string{"7,160,424069,-,lastgasp_replay=1;" + abiRecord[15:]}},
		{"release and userdata", "6,5,6,-;hi\n", "6.12.0", " host=box\n", []string{"6.12.0,6,5,6,-,lastgasp_replay=1;hi\n host=box\n"}},
		// Body: 2500 digits, "\n", " SUBSYSTEM=net\n" = 2516 bytes. Each
		// fragment is MAX_PRINT_CHUNK (1000) bytes but the last:
		// header "6,42,5000000,-,lastgasp_replay=1,ncfrag=0/2516;" is
		// 47 bytes, so chunks of 953, 951 (header 49), 612.
		{"fragmented like the kernel", long, "", "", []string{
			"6,42,5000000,-,lastgasp_replay=1,ncfrag=0/2516;",
			"6,42,5000000,-,lastgasp_replay=1,ncfrag=953/2516;",
			"6,42,5000000,-,lastgasp_replay=1,ncfrag=1904/2516;",
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r, err := ParseRecord([]byte(tt.rec))
			if err != nil {
				t.Fatal(err)
			}
			got := r.AppendDatagrams(nil, tt.release, tt.userdata)
			if len(got) != len(tt.want) {
				t.Fatalf("%d datagrams %q, want %d", len(got), got, len(tt.want))
			}
			var body string
			for i, g := range got {
				if len(g) > MaxPayload {
					t.Errorf("datagram %d: %d bytes, over %d", i, len(g), MaxPayload)
				}
				if len(got) == 1 {
					if string(g) != tt.want[i] {
						t.Errorf("datagram = %q, want %q", g, tt.want[i])
					}
					continue
				}
				if !strings.HasPrefix(string(g), tt.want[i]) {
					t.Errorf("datagram %d starts %.60q, want %q", i, g, tt.want[i])
				}
				if i < len(got)-1 && len(g) != MaxPayload {
					t.Errorf("datagram %d: %d bytes, want %d", i, len(g), MaxPayload)
				}
				body += string(g[len(tt.want[i]):])
			}
			if len(got) > 1 && body != r.Body {
				t.Errorf("fragments hold %q, want the body %q", body, r.Body)
			}
			// The collector's parser reads them back as the record.
			h := wire.NewHost(wire.Config{})
			var msgs []wire.Packet
			for _, g := range got {
				p, err := wire.Parse(g)
				if err != nil || !p.Extended || !p.Replay || p.Seq != r.Seq {
					t.Fatalf("wire.Parse(%.60q) = %+v, %v", g, p, err)
				}
				for _, e := range h.Feed(p, time.Unix(0, 0)) {
					if e.Kind == wire.Message {
						msgs = append(msgs, e.Packet)
					}
				}
			}
			if len(msgs) != 1 || msgs[0].Text != r.Text() {
				t.Errorf("reassembled %+v, want one message %q", msgs, r.Text())
			}
		})
	}
}

func FuzzParseRecord(f *testing.F) {
	for _, s := range []string{abiRecord, panicRecord, linuxVersion, "6,5,6,-,caller=T123;hi\n", "4,7,8,c;x",
		"6,1,2,-;" + strings.Repeat("x", 3000) + "\n K=V\n", "6,1,2,-,;x", "1,2,3;x", ""} {
		f.Add([]byte(s), "", "")
	}
	f.Add([]byte(panicRecord), "6.12.0-amd64", " host=box\n boot=1\n")
	f.Fuzz(func(t *testing.T, b []byte, release, userdata string) {
		r, err := ParseRecord(b)
		if err != nil {
			return
		}
		if got := string(r.Format()); got != string(b) {
			t.Fatalf("Format(ParseRecord(%q)) = %q", b, got)
		}
		if len(release) > 64 || strings.ContainsAny(release, ",;") {
			release = ""
		}
		for i, g := range r.AppendDatagrams(nil, release, userdata) {
			if len(g) > MaxPayload {
				t.Fatalf("datagram %d of %q: %d bytes", i, b, len(g))
			}
			p, err := wire.Parse(g)
			if err != nil || !p.Extended {
				continue // a release the collector does not take as one
			}
			if !p.Replay || p.Seq != r.Seq || p.TimestampUsec != r.TimestampUsec {
				t.Fatalf("datagram %q of %q parsed as %+v", g, b, p)
			}
		}
	})
}
