package sigindex_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/lastgasp/lastgasp/store/sigindex"
	"github.com/lastgasp/lastgasp/store/sigindex/indextest"
)

func TestFileIdentity(t *testing.T) {
	var path string
	open := func(t *testing.T) sigindex.Index {
		path = filepath.Join(t.TempDir(), sigindex.JournalName)
		x, err := sigindex.OpenFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return x
	}
	reopen := func(t *testing.T, x sigindex.Index) sigindex.Index {
		if err := x.Close(); err != nil {
			t.Fatal(err)
		}
		y, err := sigindex.OpenFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if y.Skipped() != 0 {
			t.Errorf("replay skipped %d lines", y.Skipped())
		}
		return y
	}
	indextest.Identity(t, open, reopen)
}

func TestFileRetention(t *testing.T) {
	var path string
	var clock func() time.Time
	open := func(t *testing.T, now func() time.Time) sigindex.Index {
		path, clock = filepath.Join(t.TempDir(), sigindex.JournalName), now
		x, err := sigindex.OpenFileWith(path, sigindex.FileOptions{Now: now})
		if err != nil {
			t.Fatal(err)
		}
		return x
	}
	reopen := func(t *testing.T, x sigindex.Index) sigindex.Index {
		if err := x.Close(); err != nil {
			t.Fatal(err)
		}
		y, err := sigindex.OpenFileWith(path, sigindex.FileOptions{Now: clock})
		if err != nil {
			t.Fatal(err)
		}
		if y.Skipped() != 0 {
			t.Errorf("replay skipped %d lines", y.Skipped())
		}
		return y
	}
	indextest.Retention(t, open, reopen)
}
