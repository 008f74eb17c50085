package boards

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// Cmdline holds the lastgasp.* arguments of a kernel command line that are
// not board settings.
type Cmdline struct {
	// TestPanic (lastgasp.test_panic=1) makes the agent panic the kernel
	// through sysrq once it has armed everything, but only on a boot that
	// found no crash record, so the boot after the panic ships the record
	// instead of panicking again. For tests only.
	TestPanic bool
}

// ApplyCmdline applies the lastgasp.* arguments of a kernel command line to
// b; the command line wins over the board file. Recognised:
//
//	lastgasp.receiver=ip[:port][,ip[:port]...]  (may repeat; replaces the board's)
//	lastgasp.upload=http://host:port
//	lastgasp.iface=eth1[,eth2]                  (name patterns; replaces the board's)
//	lastgasp.host=name
//	lastgasp.loglevel=0-8
//	lastgasp.test_panic=1
//
// Other arguments are ignored; an unknown lastgasp.* key is an error.
func ApplyCmdline(b *Board, cmdline string) (Cmdline, error) {
	var c Cmdline
	var receivers, ifaces []string
	for _, f := range splitCmdline(cmdline) {
		k, v, _ := strings.Cut(f, "=")
		if !strings.HasPrefix(k, "lastgasp.") {
			continue
		}
		switch strings.TrimPrefix(k, "lastgasp.") {
		case "receiver":
			for _, r := range strings.Split(v, ",") {
				if _, err := ParseReceiver(r); err != nil {
					return c, fmt.Errorf("cmdline %s: %w", f, err)
				}
				receivers = append(receivers, r)
			}
		case "upload":
			u, err := url.Parse(v)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return c, fmt.Errorf("cmdline %s: want http(s)://host[:port]: %w", f, ErrInvalid)
			}
			b.Upload = v
		case "iface":
			for _, p := range strings.Split(v, ",") {
				if p == "" || strings.ContainsAny(p, "/ ") {
					return c, fmt.Errorf("cmdline %s: bad interface pattern: %w", f, ErrInvalid)
				}
				ifaces = append(ifaces, p)
			}
		case "host":
			if !hostRE.MatchString(v) {
				return c, fmt.Errorf("cmdline %s: want [A-Za-z0-9._-]{1,64}: %w", f, ErrInvalid)
			}
			b.Host = v
		case "loglevel":
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n > 8 {
				return c, fmt.Errorf("cmdline %s: want 0-8: %w", f, ErrInvalid)
			}
			b.LogLevel = n
		case "test_panic":
			c.TestPanic = v == "1" || v == "" || v == "true"
		default:
			return c, fmt.Errorf("cmdline %s: unknown lastgasp argument: %w", f, ErrInvalid)
		}
	}
	if receivers != nil {
		b.Receivers = receivers
	}
	if ifaces != nil {
		b.NIC = ifaces
	}
	return c, nil
}

// splitCmdline splits a kernel command line into arguments the way the kernel
// does: on spaces, with double quotes grouping ("a=b c").
func splitCmdline(s string) []string {
	var out []string
	var cur strings.Builder
	inQuote, have := false, false
	for _, r := range s {
		switch {
		case r == '"':
			inQuote = !inQuote
			have = true
		case !inQuote && (r == ' ' || r == '\t' || r == '\n'):
			if have {
				out = append(out, cur.String())
				cur.Reset()
				have = false
			}
		default:
			cur.WriteRune(r)
			have = true
		}
	}
	if have {
		out = append(out, cur.String())
	}
	return out
}
