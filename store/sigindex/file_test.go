package sigindex_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/lastgasp/lastgasp/store/sigindex"
	"github.com/lastgasp/lastgasp/store/sigindex/indextest"
)

// journal opens a File in a test's temporary directory and opens it again
// (replaying its journal) with the same clock.
type journal struct {
	path string
	now  func() time.Time
}

func (j *journal) open(t *testing.T, now func() time.Time) sigindex.Index {
	j.path, j.now = filepath.Join(t.TempDir(), sigindex.JournalName), now
	x, err := sigindex.OpenFileWith(j.path, sigindex.FileOptions{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return x
}

func (j *journal) reopen(t *testing.T, x sigindex.Index) sigindex.Index {
	if err := x.Close(); err != nil {
		t.Fatal(err)
	}
	y, err := sigindex.OpenFileWith(j.path, sigindex.FileOptions{Now: j.now})
	if err != nil {
		t.Fatal(err)
	}
	if y.Skipped() != 0 {
		t.Errorf("replay skipped %d lines", y.Skipped())
	}
	return y
}

func TestFileIdentity(t *testing.T) {
	j := &journal{}
	indextest.Identity(t, func(t *testing.T) sigindex.Index { return j.open(t, nil) }, j.reopen)
}

func TestFileRetention(t *testing.T) {
	j := &journal{}
	indextest.Retention(t, j.open, j.reopen)
}
