package store

import (
	"errors"
	"io"
)

// RecordStore is where the upload server puts crash records: Records (the
// local file store, the default) or a shared database (store/pgstore).
// Put's contract is Records.Put's: durable when it returns, a duplicate
// (same host and digest) stored once, nothing half-written on error.
type RecordStore interface {
	Put(meta RecordMeta, body io.Reader, linkBoot string) (Stored, error)
	Stats() RecordStats
	// RemoveRecord forgets the record stored at path, so that a later
	// upload of it is stored again (Records.RemoveRecord).
	RemoveRecord(path string) error
}

var _ RecordStore = (*Records)(nil)

// ErrUnavailable is wrapped by a RecordStore's errors when its backend
// (a database) cannot be reached or failed mid-write: nothing was stored,
// and the client should retry later (the upload server answers 503).
var ErrUnavailable = errors.New("crash store unavailable")
