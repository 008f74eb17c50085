package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// forwardRsyslog: a real rsyslogd (started here, on loopback, with its own
// config) receives lastgaspd's RFC 5424 forwarding; the guest's panic ends
// up in rsyslog's file under the guest's host name.
func forwardRsyslog(e *Env) (string, error) {
	rsyslogd, err := exec.LookPath("rsyslogd")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/rsyslogd"); serr != nil {
			return "", fmt.Errorf("rsyslogd not installed (apt-get install rsyslog; scripts/setup-deps.sh does)")
		}
		rsyslogd = "/usr/sbin/rsyslogd"
	}
	port := freePort("tcp")
	out := filepath.Join(e.Dir, "rsyslog-out.log")
	conf := fmt.Sprintf(`global(workDirectory=%q)
module(load="imtcp")
input(type="imtcp" port="%d" address="127.0.0.1")
template(name="lastgasp" type="string" string="%%HOSTNAME%% %%APP-NAME%% %%syslogseverity-text%% %%STRUCTURED-DATA%% %%msg%%\n")
*.* action(type="omfile" file=%q template="lastgasp")
`, e.Dir, port, out)
	confPath := filepath.Join(e.Dir, "rsyslog.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		return "", err
	}
	logf, err := os.Create(filepath.Join(e.Dir, "rsyslogd.log"))
	if err != nil {
		return "", err
	}
	cmd := exec.Command(rsyslogd, "-n", "-f", confPath, "-i", filepath.Join(e.Dir, "rsyslogd.pid"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("start rsyslogd: %w", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); logf.Close(); close(done) }()
	e.cleanups = append(e.cleanups, func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(3 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	if err := waitFor(15*time.Second, func() (bool, string) {
		return dialOK(port), "rsyslogd never listened"
	}); err != nil {
		return "", err
	}
	c, err := e.StartCollector("collector", "-forward", fmt.Sprintf("tcp://127.0.0.1:%d", port))
	if err != nil {
		return "", err
	}
	if _, err := e.Boot("vm", BootOpts{Append: agentArgs(c, "lastgasp.test_panic=1")}); err != nil {
		return "", err
	}
	var line string
	err = waitFor(bootTimeout, func() (bool, string) {
		b, _ := os.ReadFile(out)
		for _, l := range strings.Split(string(b), "\n") {
			if strings.Contains(l, panicLine) {
				line = l
				return true, ""
			}
		}
		return false, "rsyslog's file never held the panic line"
	})
	if err != nil {
		return "", err
	}
	if !strings.HasPrefix(line, "52-54-00-12-34-56 kernel emerg ") {
		return "", fmt.Errorf("rsyslog stored %q: want host 52-54-00-12-34-56, app kernel, severity emerg", line)
	}
	return "", nil
}
