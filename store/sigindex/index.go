package sigindex

import (
	"context"
	"errors"
	"time"

	"github.com/lastgasp/lastgasp/crash/signature"
)

// Source says where a sighting of a crash was read.
type Source string

// Sources of a sighting.
const (
	// SourceRecord: a pstore crash record uploaded by the host (durable;
	// authenticated with -client-ca).
	SourceRecord Source = "record"
	// SourceNetconsole: the host's netconsole lines (best effort,
	// unauthenticated UDP).
	SourceNetconsole Source = "netconsole"
)

// MaxReport bounds the report text an Index keeps as a sample; the caller
// cuts a longer report to its last MaxReport bytes (the panic is at the
// end of a dmesg record).
const MaxReport = 64 << 10

// ErrNotFound is returned by Index.Signature for an unknown ID.
var ErrNotFound = errors.New("signature not found")

// Sighting is one copy of a crash report: a crash record, or the
// netconsole lines of a report. Add takes it.
type Sighting struct {
	// Host is the host name, as the upload or the announcement named it
	// (the store's host directory, store.HostDir, for netconsole hosts
	// the receiver filed under an escaped name).
	Host string `json:"host"`
	// Boot is the boot id of the boot that crashed: for a record the
	// host's boot before the uploading one (the store's boot index), for
	// netconsole lines the announced boot; "" if not known.
	Boot string `json:"boot,omitempty"`
	// Release is the kernel release, "" if not known.
	Release string `json:"release,omitempty"`
	// Time is when the crash happened (a record's time) or, failing
	// that, when the sighting arrived.
	Time time.Time `json:"time"`
	// Source and Ref say where the report is: for a record its path
	// relative to the store root ("<host>/crash/<name>.<digest16>"), for
	// netconsole "<host>/<boot>/kernel.log seq=<n>" of the title line.
	// Source and Ref identify a sighting: adding one already indexed
	// changes nothing.
	Source Source `json:"source"`
	Ref    string `json:"ref"`
	// Verified: a record uploaded with a verified client certificate
	// naming Host.
	Verified bool `json:"verified,omitempty"`
	// Signature is the report's signature (signature.Extract).
	Signature signature.Signature `json:"signature"`
	// Report is the report text, at most MaxReport bytes: untrusted
	// kernel text, which a viewer must escape.
	Report string `json:"report,omitempty"`
	// Added is when the index took the sighting, by the collector's
	// clock (Add sets it): retention (Index.Expire) counts from it, as
	// the store's retention counts a record's age from when it was
	// written, not from Time, which the sender chose.
	Added time.Time `json:"added,omitzero"`
}

// Crash is one crash of one host: all sightings of it. A live report
// (netconsole) and the pstore record of the same crash are one Crash.
type Crash struct {
	// ID is "<host>/<boot or title usec>/<signature id>", unique in the
	// index.
	ID          string    `json:"id"`
	SignatureID string    `json:"signature"`
	Host        string    `json:"host"`
	Boot        string    `json:"boot,omitempty"`
	Release     string    `json:"release,omitempty"`
	Time        time.Time `json:"time"`       // the earliest sighting's
	TitleUsec   int64     `json:"title_usec"` // kernel timestamp of the title line, -1 if none
	// Sightings are the copies of the report, oldest first, without
	// their Report text.
	Sightings []Sighting `json:"sightings"`
}

// Signature is what the index knows of one signature.
type Signature struct {
	signature.Signature
	// FirstSeen and LastSeen are the earliest and latest Time of the
	// sightings indexed now: once the oldest crashes expire, FirstSeen
	// moves with them (the index keeps no history beyond its sightings).
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
	// Count is the number of crashes (not sightings).
	Count int `json:"count"`
	// Recent is the number of crashes since Query.Since (Signatures
	// only).
	Recent int `json:"recent"`
	// Hosts and Releases are the distinct hosts and kernel releases of
	// its crashes, sorted.
	Hosts    []string `json:"hosts"`
	Releases []string `json:"releases"`
	// Sample is one sighting, with its Report: the first record
	// sighting, else the first sighting. When the sample is expired or
	// removed, the first record sighting left (else the first) takes
	// its place without a Report: only a sample's text is kept.
	Sample Sighting `json:"sample"`
}

// Added is what Add did.
type Added struct {
	// Crash is the crash the sighting belongs to, after Add.
	Crash Crash
	// NewCrash: the sighting is the first of its crash (it counted).
	// NewSignature: the crash is the first of its signature, fleet-wide
	// (an alert's trigger: with a shared index, exactly one collector's
	// Add reports it). Duplicate: the sighting (Source, Ref) was already
	// indexed; nothing changed.
	NewCrash, NewSignature, Duplicate bool
	// Evicted: the index is at a bound on its sightings (File's
	// MaxSightings, MaxHostSightings) and this one is older than every
	// sighting it keeps there, so it was not kept; nothing changed.
	Evicted bool
	// Signature is the signature after Add.
	Signature Signature
}

// Query selects what Signatures returns.
type Query struct {
	// Host, if not "", restricts the answer to crashes of that host:
	// counts, hosts, releases and the sample are that host's only. A
	// host-scoped reader sees nothing of other hosts.
	Host string
	// Since is the start of the window of Signature.Recent.
	Since time.Time
	// Limit bounds the answer (0: no bound), most recent count first.
	Limit int
}

// Index is the fleet's index of crash signatures. Implementations are safe
// for concurrent use.
//
// Identity: a sighting joins an existing crash of the same host and
// signature ID when both have a boot and the boots are equal, or both have
// a title timestamp (Signature.TitleUsec >= 0) and they are equal (a
// record and the live lines of one crash carry the same printk timestamp);
// otherwise it starts a new crash. A sighting whose (Source, Ref) is
// indexed already is a duplicate (a re-upload, a log re-read after a
// restart).
//
// Durability: what Add returned must survive a restart of the collector
// (File: the journal line is written before Add returns, and fsynced for
// record sightings; PostgreSQL: committed). The index is derived data:
// records can be indexed again from the crash store, so an Add lost in a
// crash of the collector itself loses a count, never a record; netconsole
// sightings, like the lines, are best effort. With several collectors on
// one shared Index, Add must be atomic fleet-wide: two collectors adding
// the two copies of one crash at once make one crash, and exactly one of
// them sees NewSignature.
type Index interface {
	// Add indexes one sighting.
	Add(ctx context.Context, s Sighting) (Added, error)
	// Signatures returns the signatures with at least one crash in
	// q's scope, by Recent then Count (descending), then ID.
	Signatures(ctx context.Context, q Query) ([]Signature, error)
	// Signature returns one signature and its crashes (newest first),
	// restricted to host if host is not ""; ErrNotFound if it has no
	// crash in that scope.
	Signature(ctx context.Context, id, host string) (Signature, []Crash, error)
	// HostCrashes returns the crashes of one host, newest first.
	HostCrashes(ctx context.Context, host string) ([]Crash, error)
	// Expire drops the sightings added (Sighting.Added) before cutoff,
	// as the store's retention drops records, and returns how many. A
	// crash without sightings left is dropped, and a signature without
	// crashes: it leaves the overview, and its next crash is a
	// NewSignature again.
	Expire(ctx context.Context, cutoff time.Time) (int, error)
	// Remove drops the sighting (source, ref), as when its record is
	// removed from the store, and reports whether it was indexed. The
	// crash's other copies (its live report) stay.
	Remove(ctx context.Context, source Source, ref string) (bool, error)
	// Close releases the index.
	Close() error
}
