// Package journaltest runs a real systemd-journal-remote(8) on a loopback
// port for tests, and reads what it stored back with journalctl(1)
// (Debian package systemd-journal-remote; scripts/setup-deps.sh installs
// it).
package journaltest
