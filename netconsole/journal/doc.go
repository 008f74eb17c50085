// Package journal is a sink.Sink that sends netconsole messages to
// systemd-journal-remote(8): each message becomes one entry of the Journal
// Export Format (https://systemd.io/JOURNAL_EXPORT_FORMATS/), and batches of
// entries are POSTed to the remote's /upload endpoint with Content-Type
// application/vnd.fdo.journal, so that journalctl(1) reads a fleet's kernel
// logs like a local journal:
//
//	journalctl --file /var/log/journal/remote/remote.journal _HOSTNAME=box1 LASTGASP_BOOT=<boot id>
//
// Send never blocks: entries wait in a bounded queue and are dropped and
// counted when it is full. Run keeps POSTing; while the remote is down or
// answers 5xx it retries the same batch with exponential backoff, counting
// each failed attempt.
package journal
