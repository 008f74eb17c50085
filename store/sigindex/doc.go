// Package sigindex is the fleet's index of crash signatures: which crashes
// (host, boot) share a signature (package crash/signature), when each
// signature was first and last seen, on which hosts and kernel releases,
// and one sample report. Index is the interface; File is the embedded
// implementation, kept in memory and persisted to an append-only journal
// under the store root (<store>/.lastgaspd/signatures.jsonl). A PostgreSQL
// implementation (store/pgstore) implements the same Index for collectors
// that share one database.
package sigindex
