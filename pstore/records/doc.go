// Package records reads crash records from the pstore filesystem
// (/sys/fs/pstore), as described in the kernel's
// Documentation/admin-guide/ramoops.rst and Documentation/ABI/testing/pstore.
//
// Each file in a pstore mount is one record named "<type>-<backend>-<id>",
// with a ".enc.z" suffix when the kernel could not decompress it. Removing a
// file erases the record from its backend, so callers remove a record only
// after it has been saved elsewhere.
package records
