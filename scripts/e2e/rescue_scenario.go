package main

import (
	"fmt"
	"strings"
	"time"
)

// rescueShell: the default image's rescue shell (lastgasp-sh, package
// handoff/rescue) on the serial console does what an operator types on a
// crashed box: builtins, cd, pipes, redirections, $(...), globs, && ||, $?,
// a program with an exported variable, dmesg, ^C of a running builtin, and
// exit (the agent, PID 1, starts a new shell). Each step ends with a marker
// split by "" so that the console's echo of the typed line does not match.
func rescueShell(e *Env) (string, error) {
	c, err := e.StartCollector("collector")
	if err != nil {
		return "", err
	}
	vm, err := e.Boot("vm", BootOpts{Append: agentArgs(c)})
	if err != nil {
		return "", err
	}
	off, err := vm.WaitSerial(bootTimeout, 0, "handoff: rescue shell")
	if err != nil {
		return "", err
	}
	if off, err = vm.WaitSerial(30*time.Second, off, "lastgasp# "); err != nil {
		return "", fmt.Errorf("no prompt: %w", err)
	}
	steps := []struct {
		cmd  string
		want []string // lines (without the console's \r) the step must print
	}{
		{`cd /sys/fs; pwd; ls | cat | cat`, []string{"/sys/fs", "pstore"}},
		{`x=$(cat /proc/sys/kernel/ostype); echo "os=[$x]"`, []string{"os=[Linux]"}},
		{`false || echo alt; true && echo and; false && echo never`, []string{"alt", "and"}},
		{`echo one > /tmp/f; echo two >> /tmp/f; cat < /tmp/f`, []string{"one", "two"}},
		{`echo /proc/sys/kernel/ost* '/proc/sys/kernel/ost*'`, []string{"/proc/sys/kernel/ostype /proc/sys/kernel/ost*"}},
		{`nosuchcommand; echo "status=$?"`, []string{"status=127"}},
		{`export X=exported; /bin/sh -c 'echo child=$X' 2>&1 | cat`, []string{"child=exported"}},
		{`echo rescue""-kmsg-mark > /dev/kmsg; dmesg | cat > /tmp/k; cat /tmp/k | cat`, []string{"rescue-kmsg-mark"}},
	}
	for i, st := range steps {
		mark := fmt.Sprintf("STEP%dEND", i)
		if err := vm.Type(st.cmd + fmt.Sprintf(`; echo STEP%d""END`, i)); err != nil {
			return "", err
		}
		end, err := vm.WaitSerial(30*time.Second, off, mark)
		if err != nil {
			return "", fmt.Errorf("step %q: %w", st.cmd, err)
		}
		out := strings.ReplaceAll(vm.Serial()[off:end], "\r", "")
		for _, w := range st.want {
			if w == "rescue-kmsg-mark" {
				// dmesg's line: "[    4.123456] rescue-kmsg-mark".
				if !strings.Contains(out, "] "+w+"\n") {
					return "", fmt.Errorf("step %q: no dmesg line %q in %q", st.cmd, w, tail(out, 400))
				}
				continue
			}
			if !strings.Contains(out, "\n"+w+"\n") {
				return "", fmt.Errorf("step %q: no line %q in %q", st.cmd, w, out)
			}
		}
		if strings.Contains(out, "\nnever\n") {
			return "", fmt.Errorf("step %q: false && ran its command: %q", st.cmd, out)
		}
		off = end
	}
	// ^C stops a running builtin (sleep 60), and the shell goes on.
	t0 := time.Now()
	if err := vm.Type(`sleep 60; echo after""sleep`); err != nil {
		return "", err
	}
	time.Sleep(time.Second)
	if err := vm.Type("\x03"); err != nil {
		return "", err
	}
	end, err := vm.WaitSerial(20*time.Second, off, "aftersleep")
	if err != nil {
		return "", fmt.Errorf("^C: %w", err)
	}
	intr := time.Since(t0)
	off = end
	// exit ends the shell; the agent starts a new one.
	if err := vm.Type("exit 3"); err != nil {
		return "", err
	}
	if off, err = vm.WaitSerial(30*time.Second, off, "lastgasp rescue shell"); err != nil {
		return "", fmt.Errorf("after exit: %w", err)
	}
	time.Sleep(500 * time.Millisecond)
	if err := vm.Type(`echo back""again`); err != nil {
		return "", err
	}
	if _, err := vm.WaitSerial(30*time.Second, off, "backagain"); err != nil {
		return "", fmt.Errorf("the new shell: %w", err)
	}
	return fmt.Sprintf("%d steps, ^C after %v, new shell after exit", len(steps), intr.Round(100*time.Millisecond)), nil
}
