package records

import (
	"bytes"
	"compress/flate"
	"compress/zlib"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParsePartHeader(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want PartHeader
		ok   bool
	}{
		{name: "panic", in: "Panic#1 Part1\n<0>[ 1.0] Kernel panic", want: PartHeader{"Panic", 1, 1}, ok: true},
		{name: "oops part 3", in: "Oops#12 Part3\nmore", want: PartHeader{"Oops", 12, 3}, ok: true},
		{name: "emergency", in: "Emergency#1 Part2\n", want: PartHeader{"Emergency", 1, 2}, ok: true},
		{name: "shutdown", in: "Shutdown#0 Part1", want: PartHeader{"Shutdown", 0, 1}, ok: true},
		{name: "old restart", in: "Restart#1 Part1\r\n", want: PartHeader{"Restart", 1, 1}, ok: true},
		{name: "unknown reason", in: "Crash#1 Part1\n"},
		{name: "part 0", in: "Panic#1 Part0\n"},
		{name: "sign", in: "Panic#+1 Part1\n"},
		{name: "no part", in: "Panic#1\n"},
		{name: "trailing", in: "Panic#1 Part1 x\n"},
		{name: "log line", in: "<6>[    0.000000] Linux version 6.1.0\n"},
		{name: "empty"},
		// Found by FuzzParsePartHeader: the kernel never pads numbers.
		{name: "leading zeros", in: "Panic#0000 Part1"},
		{name: "leading zero part", in: "Panic#1 Part01"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := ParsePartHeader([]byte(tt.in))
			if got != tt.want || ok != tt.ok {
				t.Errorf("ParsePartHeader(%q) = %+v, %v; want %+v, %v", tt.in, got, ok, tt.want, tt.ok)
			}
		})
	}
}

func FuzzParsePartHeader(f *testing.F) {
	f.Add([]byte("Panic#1 Part1\n"))         // ramoops, one part
	f.Add([]byte("Oops#3 Part12\nx"))        // efi, a later part
	f.Add([]byte("Emergency#0 Part1"))       // no newline
	f.Add([]byte("Panic#99999999999 Part1")) // overflowing count
	f.Fuzz(func(t *testing.T, data []byte) {
		h, ok := ParsePartHeader(data)
		if !ok {
			return
		}
		// Round trip: the header formats back to the first line.
		line, _, _ := bytes.Cut(data, []byte("\n"))
		if got := h.String(); got != strings.TrimSuffix(string(line), "\r") {
			t.Fatalf("ParsePartHeader(%q) = %+v, formats as %q", data, h, got)
		}
		if h.Part < 1 {
			t.Fatalf("part %d", h.Part)
		}
	})
}

// efiID is efi-pstore's record id: ((time * 100) + part) * 1000 + count.
func efiID(sec int64, part, count int) string {
	return fmt.Sprint((sec*100+int64(part))*1000 + int64(count))
}

// part returns a dmesg part the way pstore_dump writes it.
func part(reason string, count, p int, lines ...string) []byte {
	return []byte(fmt.Sprintf("%s#%d Part%d\n%s\n", reason, count, p, strings.Join(lines, "\n")))
}

func TestCrashesAndAssemble(t *testing.T) {
	root := t.TempDir()
	crash := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	// An EFI panic in three parts (Part3 oldest), a two-part ramoops oops
	// (Part1 in zone 0, Part2 in zone 1), a lone ramoops console record.
	efi := [][]byte{
		part("Panic", 1, 1, "<0>[   12.000003] Kernel panic - not syncing: sysrq triggered crash", "<4>[   12.000004] Call Trace:", "<4>[   12.000005]  sysrq_handle_crash+0x16/0x20"),
		part("Panic", 1, 2, "<6>[   11.000001] middle"),
		part("Panic", 1, 3, "<6>[    0.000000] Linux version 6.1.0-28-amd64"),
	}
	for i, d := range efi {
		writeFile(t, filepath.Join(root, "dmesg-efi-"+efiID(crash.Unix(), i+1, 1)), d, crash)
	}
	oops := [][]byte{part("Oops", 2, 1, "<4>[ 5.2] Oops: 0002 [#2] SMP"), part("Oops", 2, 2, "<6>[ 0.0] boot")}
	writeFile(t, filepath.Join(root, "dmesg-ramoops-0"), oops[0], crash)
	writeFile(t, filepath.Join(root, "dmesg-ramoops-1"), oops[1], crash.Add(-time.Second))
	writeFile(t, filepath.Join(root, "console-ramoops-0"), []byte("Panic#1 Part1\nnot dmesg\n"), crash)
	// A second Oops#2 Part1 in another backend is another crash.
	writeFile(t, filepath.Join(root, "dmesg-erst-5"), part("Oops", 2, 1, "other"), crash)

	recs, errs := Read(root, 1<<20)
	if len(errs) != 0 {
		t.Fatal(errs)
	}
	crashes, skipped := Crashes(recs)
	if len(skipped) != 0 {
		t.Errorf("skipped = %q", skipped)
	}
	var got []string
	for _, c := range crashes {
		var names []string
		for _, i := range c.Records {
			names = append(names, recs[i].Name)
		}
		got = append(got, c.ID+": "+strings.Join(names, " "))
	}
	sec := fmt.Sprint(crash.Unix())
	want := []string{
		"dmesg-efi-Panic-1-" + sec + ": dmesg-efi-" + efiID(crash.Unix(), 1, 1) + " dmesg-efi-" + efiID(crash.Unix(), 2, 1) + " dmesg-efi-" + efiID(crash.Unix(), 3, 1),
		"dmesg-erst-Oops-2-" + sec + ": dmesg-erst-5",
		"dmesg-ramoops-Oops-2-" + sec + ": dmesg-ramoops-0 dmesg-ramoops-1",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Crashes (-want +got):\n%s", diff)
	}

	text := string(Assemble(efi))
	wantText := "Panic#1 Part1..3\n<6>[    0.000000] Linux version 6.1.0-28-amd64\n<6>[   11.000001] middle\n" +
		"<0>[   12.000003] Kernel panic - not syncing: sysrq triggered crash\n<4>[   12.000004] Call Trace:\n<4>[   12.000005]  sysrq_handle_crash+0x16/0x20\n"
	if diff := cmp.Diff(wantText, text); diff != "" {
		t.Errorf("Assemble (-want +got):\n%s", diff)
	}
	if got := PanicLine([]byte(text)); got != "Kernel panic - not syncing: sysrq triggered crash" {
		t.Errorf("PanicLine(assembled) = %q", got)
	}
}

func TestCrashesAmbiguous(t *testing.T) {
	mk := func(name string, data []byte) Record {
		typ, backend, id, c, err := ParseName(name)
		if err != nil {
			t.Fatal(err)
		}
		return Record{Name: name, Type: typ, Backend: backend, ID: id, Compressed: c, Data: data, Size: int64(len(data))}
	}
	recs := []Record{
		mk("dmesg-ramoops-0", part("Panic", 1, 1, "a")),
		mk("dmesg-ramoops-1", part("Panic", 1, 1, "b")),                        // an older crash with the same count
		mk("dmesg-ramoops-2", part("Oops", 1, 2, "c")),                         // Part1 lost
		{Name: "dmesg-ramoops-3", Type: "dmesg", Backend: "ramoops", Size: 10}, // not read in full
	}
	crashes, skipped := Crashes(recs)
	if len(crashes) != 0 || len(skipped) != 2 {
		t.Errorf("Crashes = %+v, skipped %q; want none grouped, two skipped", crashes, skipped)
	}
}

func deflate(t testing.TB, data []byte) []byte {
	var b bytes.Buffer
	w, _ := flate.NewWriter(&b, flate.BestCompression)
	w.Write(data)
	w.Close()
	return b.Bytes()
}

func TestDecompress(t *testing.T) {
	text := bytes.Repeat([]byte("<4>[   12.000000] Call Trace: frame+0x10/0x20\n"), 200)
	raw := deflate(t, text)
	var zb bytes.Buffer
	zw := zlib.NewWriter(&zb)
	zw.Write(text)
	zw.Close()
	bomb := deflate(t, make([]byte, 8<<20))
	tests := []struct {
		name    string
		in      []byte
		limit   int64
		want    []byte
		wantErr error
	}{
		{name: "raw deflate (kernel)", in: raw, limit: 1 << 20, want: text},
		{name: "raw deflate with ecc notice", in: append(append([]byte{}, raw...), "\nECC: No errors detected\n"...), limit: 1 << 20, want: text},
		{name: "zlib", in: zb.Bytes(), limit: 1 << 20, want: text},
		{name: "truncated", in: raw[:len(raw)/2], limit: 1 << 20, wantErr: ErrCorrupt},
		{name: "garbage", in: []byte{0xff, 0xff, 0xff, 0xff}, limit: 1 << 20, wantErr: ErrCorrupt},
		{name: "empty", in: nil, limit: 1 << 20, wantErr: ErrCorrupt},
		{name: "bomb", in: bomb, limit: 4 << 20, wantErr: ErrDecompressedTooLarge},
		{name: "exactly the limit", in: raw, limit: int64(len(text)), want: text},
		{name: "one over the limit", in: raw, limit: int64(len(text)) - 1, wantErr: ErrDecompressedTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Decompress(tt.in, tt.limit)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && !bytes.Equal(got, tt.want)) {
				t.Errorf("Decompress = %d bytes, %v; want %d bytes, %v", len(got), err, len(tt.want), tt.wantErr)
			}
		})
	}
	if len(bomb) > 16<<10 {
		t.Logf("bomb is %d bytes", len(bomb))
	}
}

func TestInflate(t *testing.T) {
	text := []byte("Panic#1 Part1\n<0>[ 1.0] Kernel panic - not syncing: x\n")
	z := deflate(t, text)
	r := Record{Name: "dmesg-efi-1.enc.z", Type: "dmesg", Compressed: true, Data: z, Size: int64(len(z))}
	got, err := Inflate(r, 1<<20)
	if err != nil || !got.Decompressed || got.Compressed || got.Corrupt || !bytes.Equal(got.Data, text) || !got.Complete() || got.Name != r.Name {
		t.Errorf("Inflate(valid) = %+v, %v", got, err)
	}
	r.Data, r.Size = z[:len(z)-3], int64(len(z)-3)
	got, err = Inflate(r, 1<<20)
	if err == nil || !strings.Contains(err.Error(), r.Name) || !got.Corrupt || got.Decompressed || !bytes.Equal(got.Data, r.Data) {
		t.Errorf("Inflate(truncated) = %+v, %v; want the raw data flagged corrupt and an error naming it", got, err)
	}
}

func FuzzDecompress(f *testing.F) {
	f.Add(deflate(f, []byte("Panic#1 Part1\nKernel panic - not syncing: x\n"))) // kernel-style raw deflate
	f.Add([]byte{0x78, 0x9c, 1, 2})                                             // zlib header, truncated
	f.Add(deflate(f, make([]byte, 1<<20)))                                      // a small bomb
	f.Add([]byte{})
	const limit = 64 << 10
	f.Fuzz(func(t *testing.T, data []byte) {
		out, err := Decompress(data, limit)
		if len(out) > limit {
			t.Fatalf("Decompress returned %d bytes, limit %d", len(out), limit)
		}
		if err != nil && !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrDecompressedTooLarge) {
			t.Fatalf("Decompress: unclassified error %v", err)
		}
	})
}
