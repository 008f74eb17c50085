package agent

import "os"

// Log level policy. The agent raises the console loglevel to the board's
// console.loglevel (default 7: everything but debug reaches the consoles and
// so netconsole) as its first step. The main system inherits it across
// switch_root (it is kernel state) and gets it as loglevel= across kexec.
// lastgasp.ignore_loglevel=1 (or console.ignore_loglevel = 1) sends every
// message whatever its level, debug included.

// setIgnoreLoglevel turns printk's ignore_loglevel on. It never turns it off:
// the kernel's own ignore_loglevel argument may have set it.
func (a *agent) setIgnoreLoglevel() {
	p := defaultHandoffConfig().IgnoreLoglevel
	if err := os.WriteFile(p, []byte("Y"), 0); err != nil {
		a.Log.Errorf("ignore_loglevel: %v", err)
		return
	}
	a.Log.Infof("ignore_loglevel: on (every message goes to the consoles and netconsole)")
}
