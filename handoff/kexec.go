package handoff

import (
	"fmt"
	"strings"

	"github.com/lastgasp/lastgasp/boards"
)

// Kernel limits the kexec command line must respect.
const (
	// MaxCmdline is COMMAND_LINE_SIZE on x86 and arm64 (with the NUL).
	MaxCmdline = 2047
	// MaxNetconsoleParam is netconsole's MAX_PARAM_LENGTH (with the NUL):
	// all targets together, joined by ';'.
	MaxNetconsoleParam = 255
)

// KexecParams is what goes into the main kernel's command line.
type KexecParams struct {
	// Base is the board's kernel.cmdline: what every kernel of the board is
	// booted with (console=, the memmap= reservation of the ramoops region,
	// panic=).
	Base string
	// Netconsole are the netconsole= targets (target.Target.Param()) of
	// every armed target.
	Netconsole []string
	// Ramoops are the ramoops module parameters ("mem_address=0x5000000
	// mem_size=..."), as boards.Ramoops.Params returns them.
	Ramoops string
	// LogLevel is the console loglevel for the main kernel (loglevel=);
	// negative leaves it to the kernel's default.
	LogLevel int
	// IgnoreLoglevel adds ignore_loglevel.
	IgnoreLoglevel bool
	// Extra are the board's or command line's kexec.cmdline arguments; they
	// come last, so they win where the kernel takes the last value.
	Extra string
}

// KexecCmdline builds the main kernel's command line.
//
// The targets go in twice: netconsole=, which a kernel with netconsole built
// in reads at boot, and netconsole.netconsole=, which modprobe passes to a
// modular netconsole (Debian's) when the main system loads it; a built-in
// netconsole accepts both and they are the same string. Either way the
// kernel registers the console with CON_PRINTBUFFER and sends the whole log
// buffer from the kernel's first line. The ramoops parameters go in as
// ramoops.*= for the same reason. Arguments of Base that these replace
// (netconsole, loglevel, ramoops.*, lastgasp.*) are dropped from it.
func KexecCmdline(p KexecParams) (string, error) {
	var out []string
	for _, a := range boards.CmdlineArgs(p.Base) {
		k, _, _ := strings.Cut(a, "=")
		switch {
		case k == "netconsole", k == "netconsole.netconsole", k == "loglevel", k == "ignore_loglevel",
			strings.HasPrefix(k, "ramoops."), strings.HasPrefix(k, "lastgasp."):
			continue
		}
		out = append(out, quoteArg(a))
	}
	for _, kv := range strings.Fields(p.Ramoops) {
		out = append(out, "ramoops."+kv)
	}
	if p.LogLevel >= 0 {
		out = append(out, fmt.Sprintf("loglevel=%d", p.LogLevel))
	}
	if p.IgnoreLoglevel {
		out = append(out, "ignore_loglevel")
	}
	if len(p.Netconsole) > 0 {
		for _, t := range p.Netconsole {
			if t == "" || strings.ContainsAny(t, "; \"") || strings.IndexFunc(t, notPrintableASCII) >= 0 {
				return "", fmt.Errorf("handoff: netconsole target %q: want a netconsole= target", t)
			}
		}
		nc := strings.Join(p.Netconsole, ";")
		if len(nc) > MaxNetconsoleParam {
			return "", fmt.Errorf("handoff: netconsole=%s: %d bytes, the kernel takes %d", nc, len(nc), MaxNetconsoleParam)
		}
		out = append(out, "netconsole="+nc, "netconsole.netconsole="+nc)
	}
	for _, a := range boards.CmdlineArgs(p.Extra) {
		out = append(out, quoteArg(a))
	}
	s := strings.Join(out, " ")
	if len(s) > MaxCmdline {
		return "", fmt.Errorf("handoff: kexec command line is %d bytes, the kernel takes %d", len(s), MaxCmdline)
	}
	return s, nil
}

// quoteArg puts double quotes around the value of an argument that holds
// white space, as the kernel's parser expects (key="a b").
func quoteArg(a string) string {
	if !strings.ContainsAny(a, " \t\n") {
		return a
	}
	if k, v, ok := strings.Cut(a, "="); ok {
		return k + `="` + v + `"`
	}
	return `"` + a + `"`
}

func notPrintableASCII(r rune) bool { return r <= ' ' || r > '~' }
