package web

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestFileRecords: the default record reader lists a host's record data
// files newest first (not metadata, not temporary files), reads a record
// whole or its tail, and refuses paths out of the store.
func TestFileRecords(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "box", "crash")
	os.MkdirAll(dir, 0o755)
	files := map[string]string{
		"dmesg-ramoops-0.aaaa":      "old record, last line\n",
		"dmesg-ramoops-0.aaaa.json": "{}",
		"dmesg-ramoops-1.bbbb":      "new record",
		".upload-123":               "partial",
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	os.Chtimes(filepath.Join(dir, "dmesg-ramoops-0.aaaa"), old, old)
	f := FileRecords{Root: root}
	ctx := context.Background()
	recs, err := f.HostRecords(ctx, "box")
	if err != nil || len(recs) != 2 || recs[0].Path != "box/crash/dmesg-ramoops-1.bbbb" || recs[1].Path != "box/crash/dmesg-ramoops-0.aaaa" || recs[1].Size != 22 {
		t.Errorf("HostRecords = %+v, %v; want the two records, newest first", recs, err)
	}
	if recs, err := f.HostRecords(ctx, "nobody"); err != nil || len(recs) != 0 {
		t.Errorf("HostRecords of a host without records = %+v, %v", recs, err)
	}
	for _, tt := range []struct {
		rel   string
		limit int64
		want  string
		err   error
	}{
		{"box/crash/dmesg-ramoops-0.aaaa", 0, "old record, last line\n", nil},
		{"box/crash/dmesg-ramoops-0.aaaa", 10, "last line\n", nil},
		{"box/crash/dmesg-ramoops-0.aaaa", 100, "old record, last line\n", nil},
		{"box/crash/dmesg-ramoops-0.aaaa.json", 0, "{}", nil},
		{"box/crash/missing", 0, "", os.ErrNotExist},
		{"../etc/passwd", 0, "", os.ErrNotExist},
		{"/etc/passwd", 0, "", os.ErrNotExist},
	} {
		got, err := f.ReadRecord(ctx, tt.rel, tt.limit)
		if string(got) != tt.want || (tt.err == nil) != (err == nil) || tt.err != nil && !errors.Is(err, tt.err) {
			t.Errorf("ReadRecord(%q, %d) = %q, %v; want %q, %v", tt.rel, tt.limit, got, err, tt.want, tt.err)
		}
	}
}
