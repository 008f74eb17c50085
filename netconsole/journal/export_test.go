package journal

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/lastgasp/lastgasp/netconsole/sink"
)

var t0 = time.Date(2026, 11, 25, 16, 4, 5, 123456000, time.UTC) // 1795622645123456 µs

// field is one decoded field.
type field struct{ Name, Value string }

// decode parses the Journal Export Format as
// https://systemd.io/JOURNAL_EXPORT_FORMATS/ describes it: entries of
// "NAME=value\n" or "NAME\n<le64 length><value>\n" fields, each entry ended
// by an empty line. It is the test's own reader, independent of the
// encoder.
func decode(b []byte) ([][]field, error) {
	var entries [][]field
	var cur []field
	for len(b) > 0 {
		if b[0] == '\n' {
			if cur == nil {
				return nil, errors.New("empty entry")
			}
			entries = append(entries, cur)
			cur = nil
			b = b[1:]
			continue
		}
		nl := bytes.IndexByte(b, '\n')
		if nl < 0 {
			return nil, errors.New("field without newline")
		}
		line := b[:nl]
		if eq := bytes.IndexByte(line, '='); eq >= 0 {
			if !validName(string(line[:eq])) {
				return nil, fmt.Errorf("bad field name %q", line[:eq])
			}
			cur = append(cur, field{string(line[:eq]), string(line[eq+1:])})
			b = b[nl+1:]
			continue
		}
		if !validName(string(line)) {
			return nil, fmt.Errorf("bad field name %q", line)
		}
		rest := b[nl+1:]
		if len(rest) < 8 {
			return nil, errors.New("short binary length")
		}
		n := binary.LittleEndian.Uint64(rest)
		rest = rest[8:]
		if uint64(len(rest)) < n+1 || rest[n] != '\n' {
			return nil, errors.New("binary value not followed by newline")
		}
		cur = append(cur, field{string(line), string(rest[:n])})
		b = rest[n+1:]
	}
	if cur != nil {
		return nil, errors.New("entry not terminated")
	}
	return entries, nil
}

// validName is the rule of systemd.journal-fields(7): upper-case letters,
// digits and underscores, not starting with a digit, at most 64 bytes.
func validName(s string) bool {
	if s == "" || len(s) > 64 || (s[0] >= '0' && s[0] <= '9') {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'A' && c <= 'Z') && !(c >= '0' && c <= '9') && c != '_' {
			return false
		}
	}
	return true
}

func TestAppendEntry(t *testing.T) {
	for _, tt := range []struct {
		name string
		m    sink.Message
		want string
	}{
		{
			name: "extended, kernel boot id",
			m: sink.Message{Host: "52-54-00-12-34-56", Boot: "1b6f0a2e-3d4c-5b6a-7988-0123456789AB", Extended: true,
				Seq: 812, TimestampUsec: 3163223, Level: 0, Release: "6.1.0-28-amd64", Received: t0,
				Text: "Kernel panic - not syncing: sysrq triggered crash"},
			want: "__REALTIME_TIMESTAMP=1795622645123456\n__MONOTONIC_TIMESTAMP=3163223\n" +
				"_BOOT_ID=1b6f0a2e3d4c5b6a79880123456789ab\n_HOSTNAME=52-54-00-12-34-56\n_TRANSPORT=kernel\n" +
				"_SOURCE_REALTIME_TIMESTAMP=1795622645123456\nSYSLOG_IDENTIFIER=kernel\nPRIORITY=0\nSYSLOG_FACILITY=0\n" +
				"LASTGASP_BOOT=1b6f0a2e-3d4c-5b6a-7988-0123456789AB\nLASTGASP_SEQ=812\nLASTGASP_KERNEL_TS=3163223\n" +
				"_SOURCE_MONOTONIC_TIMESTAMP=3163223\nLASTGASP_RELEASE=6.1.0-28-amd64\n" +
				"MESSAGE=Kernel panic - not syncing: sysrq triggered crash\n\n",
		},
		{
			name: "legacy, unknown boot, newline in text",
			m:    sink.Message{Host: "10.0.2.15", Level: 6, Facility: 3, Received: t0, Text: "one\ntwo"},
			want: "__REALTIME_TIMESTAMP=1795622645123456\n__MONOTONIC_TIMESTAMP=0\n_BOOT_ID=00000000000000000000000000000000\n" +
				"_HOSTNAME=10.0.2.15\n_TRANSPORT=kernel\n_SOURCE_REALTIME_TIMESTAMP=1795622645123456\n" +
				"SYSLOG_IDENTIFIER=kernel\nPRIORITY=6\nSYSLOG_FACILITY=3\n" +
				"MESSAGE\n\x07\x00\x00\x00\x00\x00\x00\x00one\ntwo\n\n",
		},
		{
			name: "boot not an id, out of range level and facility, no time",
			m:    sink.Message{Host: "h", Boot: "b1", Extended: true, Seq: 1, TimestampUsec: 5, Level: 9, Facility: 99},
			want: "__REALTIME_TIMESTAMP=1\n__MONOTONIC_TIMESTAMP=0\n_BOOT_ID=00000000000000000000000000000000\n" +
				"_HOSTNAME=h\n_TRANSPORT=kernel\n_SOURCE_REALTIME_TIMESTAMP=1\nSYSLOG_IDENTIFIER=kernel\nPRIORITY=7\n" +
				"LASTGASP_BOOT=b1\nLASTGASP_SEQ=1\nLASTGASP_KERNEL_TS=5\n_SOURCE_MONOTONIC_TIMESTAMP=5\nMESSAGE=\n\n",
		},
		{
			name: "a host name that tries to add a field",
			m:    sink.Message{Host: "evil\nPRIORITY=0", Level: 6, Received: t0, Text: "x"},
			want: "__REALTIME_TIMESTAMP=1795622645123456\n__MONOTONIC_TIMESTAMP=0\n_BOOT_ID=00000000000000000000000000000000\n" +
				"_HOSTNAME\n\x0f\x00\x00\x00\x00\x00\x00\x00evil\nPRIORITY=0\n_TRANSPORT=kernel\n" +
				"_SOURCE_REALTIME_TIMESTAMP=1795622645123456\nSYSLOG_IDENTIFIER=kernel\nPRIORITY=6\nSYSLOG_FACILITY=0\nMESSAGE=x\n\n",
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := string(AppendEntry(nil, tt.m))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("AppendEntry mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseBootID(t *testing.T) {
	for _, tt := range []struct {
		in, want string
		ok       bool
	}{
		{"1b6f0a2e-3d4c-5b6a-7988-0123456789ab", "1b6f0a2e3d4c5b6a79880123456789ab", true}, // /proc/sys/kernel/random/boot_id
		{"1B6F0A2E3D4C5B6A79880123456789AB", "1b6f0a2e3d4c5b6a79880123456789ab", true},
		{"00000000-0000-0000-0000-000000000000", zeroBootID, false},
		{"1b6f0a2e-3d4c-5b6a-7988-0123456789a", zeroBootID, false},
		{"1b6f0a2e_3d4c_5b6a_7988_0123456789ab", zeroBootID, false},
		{"1b6f0a2e3d4c5b6a79880123456789ag", zeroBootID, false},
		{"b1", zeroBootID, false},
		{"", zeroBootID, false},
	} {
		got, ok := parseBootID(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("parseBootID(%q) = %q, %v, want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

// FuzzAppendEntry checks that any message encodes to exactly one entry that
// decodes back to the message's values: untrusted text, host or boot never
// adds a field or an entry.
func FuzzAppendEntry(f *testing.F) {
	f.Add("box1", "1b6f0a2e-3d4c-5b6a-7988-0123456789ab", true, uint64(812), uint64(3163223), 0, 0, "6.1.0", "Kernel panic")
	f.Add("10.0.2.15", "", false, uint64(0), uint64(0), 6, 3, "", "one\ntwo\n")        // binary MESSAGE
	f.Add("a\nMESSAGE=x", "b\n\n", true, uint64(1), uint64(1<<60), 9, -1, "r\n", "\n") // injection attempts, out of range
	f.Add("", "", false, uint64(0), uint64(0), -3, 24, "", "\x00\x1b[31m\xff")         // control and invalid UTF-8 bytes
	f.Fuzz(func(t *testing.T, host, boot string, ext bool, seq, ts uint64, lvl, fac int, release, text string) {
		m := sink.Message{Host: host, Boot: boot, Extended: ext, Seq: seq, TimestampUsec: ts, Level: lvl, Facility: fac,
			Release: release, Text: text, Received: t0}
		es, err := decode(AppendEntry(nil, m))
		if err != nil {
			t.Fatalf("decode(AppendEntry(%+v)) = %v", m, err)
		}
		if len(es) != 1 {
			t.Fatalf("AppendEntry(%+v) decodes to %d entries, want 1", m, len(es))
		}
		got := map[string]string{}
		for _, fl := range es[0] {
			if _, dup := got[fl.Name]; dup {
				t.Fatalf("field %s twice in %+v", fl.Name, es[0])
			}
			got[fl.Name] = fl.Value
		}
		want := map[string]string{"_HOSTNAME": host, "MESSAGE": text, "SYSLOG_IDENTIFIER": "kernel", "_TRANSPORT": "kernel",
			"__REALTIME_TIMESTAMP": "1795622645123456", "_SOURCE_REALTIME_TIMESTAMP": "1795622645123456"}
		if boot != "" {
			want[FieldBoot] = boot
		}
		if release != "" {
			want[FieldRelease] = release
		}
		if ext {
			want[FieldSeq] = strconv.FormatUint(seq, 10)
			want[FieldKernelTS] = strconv.FormatUint(ts, 10)
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("field %s = %q, want %q", k, got[k], v)
			}
		}
		if p, err := strconv.Atoi(got["PRIORITY"]); err != nil || p < 0 || p > 7 || (lvl >= 0 && lvl <= 7 && p != lvl) {
			t.Errorf("PRIORITY = %q for level %d", got["PRIORITY"], lvl)
		}
		if id := got["_BOOT_ID"]; len(id) != 32 {
			t.Errorf("_BOOT_ID = %q, want 32 hex digits", id)
		}
		if mono, err := strconv.ParseUint(got["__MONOTONIC_TIMESTAMP"], 10, 64); err != nil || mono > maxTimestamp {
			t.Errorf("__MONOTONIC_TIMESTAMP = %q, want a number below 2^55", got["__MONOTONIC_TIMESTAMP"])
		}
	})
}
