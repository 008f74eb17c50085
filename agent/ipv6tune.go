package agent

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
// They belong to the running kernel and so would outlive a switch_root:
// tuneIPv6 returns a function that puts the old values back, which the
// switch_root handoff calls. A kexec'd kernel starts from its defaults.
var ipv6Fast = []struct{ knob, value string }{
	{"router_solicitation_delay", "0"},
	{"optimistic_dad", "1"},
	{"use_optimistic", "1"},
}

// tuneIPv6 writes ipv6Fast for each interface and for "default" (which
// interfaces created later, such as a VLAN, start from) under confDir
// (/proc/sys/net/ipv6/conf). A kernel without IPv6, or without optimistic
// DAD, lacks the files: that is reported, not fatal. restore writes back
// the values found before, for every file tuneIPv6 changed, and gives the
// interfaces named in also (created later from "default", such as VLANs)
// default's old values.
func tuneIPv6(confDir string, ifnames []string) (restore func(also []string) error, err error) {
	var errs []error
	var done []string
	type saved struct{ path, value string }
	var old []saved
	for _, ifn := range append([]string{"default"}, ifnames...) {
		for _, k := range ipv6Fast {
			p := filepath.Join(confDir, ifn, k.knob)
			v, err := os.ReadFile(p)
			if err == nil {
				err = os.WriteFile(p, []byte(k.value+"\n"), 0o644)
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", p, err))
				continue
			}
			old = append(old, saved{p, string(v)})
			done = append(done, ifn+"/"+k.knob+"="+k.value)
		}
	}
	restore = func(also []string) error {
		var errs []error
		for _, s := range old {
			paths := []string{s.path}
			if dir, knob := filepath.Split(s.path); filepath.Base(dir) == "default" {
				for _, ifn := range also {
					paths = append(paths, filepath.Join(confDir, ifn, knob))
				}
			}
			for _, p := range paths {
				if err := os.WriteFile(p, []byte(s.value), 0o644); err != nil {
					errs = append(errs, err)
				}
			}
		}
		return errors.Join(errs...)
	}
	if len(errs) > 0 {
		return restore, fmt.Errorf("ipv6 settings (set %s): %w", strings.Join(done, " "), errors.Join(errs...))
	}
	return restore, nil
}
