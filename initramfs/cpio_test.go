package initramfs

import (
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/u-root/u-root/pkg/cpio"
)

func TestWriteTreeCPIO(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "lib")
	files := map[string]string{
		"modules/6.1.0-57-amd64/modules.dep":                      "kernel/a.ko:\n",
		"modules/6.1.0-57-amd64/kernel/drivers/net/netconsole.ko": "\x7fELF...",
	}
	for name, body := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(dir, "m.cpio")
	if err := WriteTreeCPIO(root, "lib", out); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rr, err := cpio.Newc.NewFileReader(f)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := cpio.ReadAllRecords(rr)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	got := map[string]string{}
	for _, r := range recs {
		names = append(names, r.Name)
		if r.Mode&cpio.S_IFMT == cpio.S_IFREG {
			b, err := io.ReadAll(io.NewSectionReader(r.ReaderAt, 0, int64(r.FileSize)))
			if err != nil {
				t.Fatal(err)
			}
			got[r.Name] = string(b)
			if r.Mode&0o777 != 0o644 || r.UID != 0 || r.MTime != 0 {
				t.Errorf("%s: mode %o uid %d mtime %d, want 0644, root, 0", r.Name, r.Mode&0o777, r.UID, r.MTime)
			}
		}
	}
	// Directories before what they hold (the kernel creates entries in
	// archive order), files with their contents.
	wantNames := []string{"lib", "lib/modules", "lib/modules/6.1.0-57-amd64", "lib/modules/6.1.0-57-amd64/kernel",
		"lib/modules/6.1.0-57-amd64/kernel/drivers", "lib/modules/6.1.0-57-amd64/kernel/drivers/net",
		"lib/modules/6.1.0-57-amd64/kernel/drivers/net/netconsole.ko", "lib/modules/6.1.0-57-amd64/modules.dep"}
	if d := cmp.Diff(wantNames, names); d != "" {
		t.Errorf("names (-want +got):\n%s", d)
	}
	want := map[string]string{}
	for name, body := range files {
		want["lib/"+name] = body
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("contents (-want +got):\n%s", d)
	}
}
