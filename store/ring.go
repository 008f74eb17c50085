package store

import (
	"net/netip"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/lastgasp/lastgasp/pstore/ship"
)

// Descriptions of the records that are not crash dumps, kept in their
// metadata (RecordMeta.Description).
const (
	DescConsole = "last console lines before an unclean reset"
	DescPmsg    = "the agent's own lines before an unclean end of its run"
)

// describe returns the description of a console or pmsg record (the
// kernel's console-ramoops-N, pmsg-ramoops-N or lastgasp's ring records
// console-lastgasp-N, pmsg-lastgasp-N), "" for others.
func describe(m ship.Metadata) string {
	switch m.RecordType {
	case "console":
		return DescConsole
	case "pmsg":
		return DescPmsg
	}
	return ""
}

// BootFrom returns the directory, relative to Root with '/' separators, of
// host's boot boot if the store has it (its announcement was stored), and
// the address that announcement came from (invalid if not known). It is
// how a record that names the boot it came from (ship.HeaderRecordBootID)
// is filed beside that boot's log, whatever boots came after it.
func (s *Store) BootFrom(host, boot string) (dir string, from netip.Addr) {
	if boot == "" || CheckBoot(boot) != nil {
		return "", netip.Addr{}
	}
	dir = path.Join(HostDir(host), bootDirName(boot))
	b, err := os.ReadFile(filepath.Join(s.Root, filepath.FromSlash(dir), AnnouncedName))
	if err != nil {
		if fi, serr := os.Stat(filepath.Join(s.Root, filepath.FromSlash(dir))); serr != nil || !fi.IsDir() {
			return "", netip.Addr{}
		}
		return dir, netip.Addr{}
	}
	if len(b) > 64 {
		return dir, netip.Addr{}
	}
	a, err := netip.ParseAddr(strings.TrimSpace(string(b)))
	if err != nil {
		return dir, netip.Addr{}
	}
	return dir, a
}
