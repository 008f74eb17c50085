// Package retention removes what the collector stored long ago, as
// systemd-pstore's retention does (systemd-pstore.service(8) keeps
// /var/lib/systemd/pstore for 14 days by default): boot directories
// <root>/<host>/<boot>/ (netconsole logs written by package
// netconsole/receiver, and links to the crash records of that boot) and
// crash records <root>/<host>/crash/<name>.<digest16> with their .json
// metadata (written by package pstore/ship/server).
package retention
