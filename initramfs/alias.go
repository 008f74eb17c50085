package initramfs

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strings"
)

// FilterAlias returns the lines of a modules.alias ("alias PATTERN
// MODULE") whose module is one of names (normalised: dashes as
// underscores). The agent reads the image's copy to skip a board's
// device drivers whose devices are absent: a generic server profile names
// eight NIC drivers, and a QEMU board e1000 for its e1000 scenarios, yet
// each load costs tens of milliseconds under TCG (README, "Boot timing").
// Comments and other lines are dropped; an alias line without a pattern
// and a module is an error.
func FilterAlias(r io.Reader, names map[string]bool) ([]byte, error) {
	var out bytes.Buffer
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if f[0] != "alias" {
			continue
		}
		// The module is the last field; an alias may hold spaces
		// (MODULE_ALIAS("... soc card ...") in ASoC drivers).
		if len(f) < 3 {
			return nil, fmt.Errorf("modules.alias line %d: malformed %q", n, line)
		}
		if mod := f[len(f)-1]; names[strings.ReplaceAll(mod, "-", "_")] {
			fmt.Fprintf(&out, "alias %s %s\n", strings.Join(f[1:len(f)-1], " "), mod)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("modules.alias: %w", err)
	}
	return out.Bytes(), nil
}
