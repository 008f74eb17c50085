package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// ipv6Fast are the per-interface IPv6 settings the agent makes before a
// candidate NIC goes up, so that SLAAC gives it a usable address in well
// under a second instead of about four:
//
//   - router_solicitation_delay 0: the kernel otherwise waits a random
//     0-1 s before duplicate address detection (DAD) and so before the
//     first router solicitation;
//   - optimistic_dad 1, use_optimistic 1: optimistic DAD (RFC 4429), the
//     address is usable while DAD still runs, and DAD still runs (a
//     duplicate is still detected and reported by the kernel).
//
// The main system's own network configuration sets its own values after a
// switch_root; a kexec'd kernel starts from its defaults.
var ipv6Fast = []struct{ knob, value string }{
	{"router_solicitation_delay", "0"},
	{"optimistic_dad", "1"},
	{"use_optimistic", "1"},
}

// tuneIPv6 writes ipv6Fast for each interface and for "default" (which
// interfaces created later, such as a VLAN, start from) under confDir
// (/proc/sys/net/ipv6/conf). A kernel without IPv6, or without optimistic
// DAD, lacks the files: that is reported, not fatal.
func tuneIPv6(confDir string, ifnames []string) error {
	var errs []error
	var done []string
	for _, ifn := range append([]string{"default"}, ifnames...) {
		for _, k := range ipv6Fast {
			p := filepath.Join(confDir, ifn, k.knob)
			if err := os.WriteFile(p, []byte(k.value+"\n"), 0o644); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", p, err))
				continue
			}
			done = append(done, ifn+"/"+k.knob+"="+k.value)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("ipv6 settings (set %s): %w", strings.Join(done, " "), errors.Join(errs...))
	}
	return nil
}
