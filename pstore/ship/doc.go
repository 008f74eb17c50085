// Package ship uploads pstore crash records from the agent to the collector
// and stores them durably on the collector: the client and the server of one
// small HTTP protocol, defined here once for both ends. The records
// themselves are described by the kernel's Documentation/admin-guide/ramoops.rst
// (see package records).
//
// # Protocol
//
// A record is uploaded with one request, content-addressed by the SHA-256 of
// its bytes:
//
//	PUT /v1/hosts/<host>/records/<sha256 hex, lowercase>
//	Content-Length: <size>                   (required; no chunked bodies)
//	Lastgasp-Record-Name: dmesg-ramoops-0    (required; [A-Za-z0-9._-], not starting with '.')
//	Lastgasp-Boot-Id: <boot id of the uploading boot>     (optional)
//	Lastgasp-Kernel-Release: <uname -r of that boot>      (optional)
//	Lastgasp-Record-Time: <RFC 3339 time of the record>   (optional)
//	Lastgasp-Crash-Id: dmesg-efi-Panic-1-1764064800       (optional, with the next two:
//	Lastgasp-Part: 2                                        part 2 of the 3 dmesg records
//	Lastgasp-Parts: 3                                       of one crash, 1 = newest chunk)
//	Lastgasp-Decompressed: true    (optional: the body is a ".enc.z" record the agent inflated)
//	Lastgasp-Corrupt: true         (optional: the body is ".enc.z" data that does not inflate)
//
//	<raw record bytes>
//
// host is 1 to 253 characters of [A-Za-z0-9._-] not starting with '.'; see
// SanitizeHost. Optional headers, when present, must be well formed.
//
// The collector answers 200 only once the record is durable: the body is
// written to a temporary file in the destination directory, its SHA-256 is
// checked against the path, the file is fsynced, a metadata file is written
// and renamed the same way, the data file is renamed into place and the
// directory is fsynced. The body of a 200 is the acknowledgement:
//
//	{"digest":"<sha256 hex>","stored":true,"duplicate":false,"path":"<host>/crash/<name>.<digest[:16]>"}
//
// The request is idempotent: uploading a digest the collector already holds
// for that host answers 200 with "duplicate":true and the stored path, and
// stores nothing new. A client removes its copy of a record only after a 200
// whose digest is the SHA-256 of the bytes it sent.
//
// Errors: 403 when the client's certificate does not name the host (see
// Transport), 400 for a malformed request (bad host, name, digest or header, a
// body whose SHA-256 differs from the path, a body shorter than its
// Content-Length, a reserved boot id), 404 for an unknown path, 405 for a
// method other than PUT, 408 for a body slower than the collector's
// minimum rate, 411 without Content-Length, 413 for a record larger than
// the collector accepts, 507 when the host's crash records quota is used
// up, when storing the record would take the collector's disk below its
// free-space floor, or when the disk is full (ENOSPC or EDQUOT), and 500
// for other failures. Clients retry transport errors and 5xx answers, never
// 4xx ones. A failed or interrupted upload leaves no file behind.
//
// # Transport
//
// http:// is plain and unauthenticated, for labs and QEMU. https:// is the
// same request over TLS 1.2 or later: the client trusts only the collector
// CA it was given (TLSConfig.CA, pinned) and presents the host's client
// certificate (TLSConfig.Cert, Key). A collector that requires client
// certificates (server.Server.RequireClientIdentity) answers 403 unless
// the certificate's subject common name or one of its DNS names is exactly
// the <host> of the path: each credential writes only its own host's
// records. A client whose TLS handshake fails because the collector's
// certificate is not trusted does not retry; the record stays.
//
// The agent's client speaks https:// by default (put_tls.go; crypto/tls is
// about 0.53 MB of the image's 2 MB of xz). A lab image may leave it out
// with the lastgasp_notls build tag (board key build.tags); an https://
// upload from such an agent fails with ErrTLSNotBuilt.
//
// # Storage
//
// Under the server's Root, each record is two files:
//
//	<Root>/<host>/crash/<record name>.<first 16 hex digits of digest>        the record bytes
//	<Root>/<host>/crash/<record name>.<first 16 hex digits of digest>.json   Metadata
//
// Once it holds every part of a crash (Lastgasp-Crash-Id), the collector
// also writes <Root>/<host>/crash/<crash id>.dmesg.txt, the parts' text put
// back together oldest first (records.Assemble), durably the same way, at
// most a bounded size (the oldest text beyond it is left out, with a
// note); the parts stay, each acknowledged on its own. The collector's
// package store (store.Records) owns this layout.
//
// The metadata file is made durable before the data file is renamed into
// place, so a data file never lacks its metadata; a crash may leave an
// orphaned metadata file or a hidden ".upload-*" temporary file, neither of
// which counts as a stored record; the collector removes temporary files
// when it next starts. In the unlikely case that another record
// of the same name already has the same 16-digit prefix, the full digest is
// used in the file name.
package ship
