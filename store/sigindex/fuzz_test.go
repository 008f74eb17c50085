package sigindex_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/lastgasp/lastgasp/crash/signature"
	"github.com/lastgasp/lastgasp/store/sigindex"
)

// FuzzOpenFile: a journal of any bytes (torn, edited, garbage) opens
// without a panic, and an Add after it still works.
func FuzzOpenFile(f *testing.F) {
	f.Add([]byte(`{"host":"a","time":"2026-12-02T00:00:00Z","source":"record","ref":"a/crash/r","signature":{"id":"0123456789abcdef","kind":"panic","title":"t","title_usec":5}}` + "\n"))
	f.Add([]byte(`{"host":"a","signature":{"id":"x"}}` + "\n{\"host\":"))
	f.Add([]byte("\x00\xff\n\n{}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(t.TempDir(), sigindex.JournalName)
		os.WriteFile(p, data, 0o644)
		x, err := sigindex.OpenFile(p)
		if err != nil {
			return
		}
		defer x.Close()
		ctx := context.Background()
		s := sigindex.Sighting{Host: "h", Time: time.Unix(1, 0), Source: sigindex.SourceNetconsole, Ref: "h/b/kernel.log seq=1",
			Signature: signature.Signature{ID: "fedcba9876543210", Title: "t", TitleUsec: -1}}
		if _, err := x.Add(ctx, s); err != nil {
			t.Fatalf("Add after replay: %v", err)
		}
		if _, err := x.Signatures(ctx, sigindex.Query{}); err != nil {
			t.Fatal(err)
		}
		x.HostCrashes(ctx, "a")
	})
}
