package journaltest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// binaries are where Debian and others install systemd-journal-remote.
var binaries = []string{"/lib/systemd/systemd-journal-remote", "/usr/lib/systemd/systemd-journal-remote"}

// Remote is a running systemd-journal-remote.
type Remote struct {
	// URL is its HTTP base address, "http://127.0.0.1:<port>".
	URL string
	// Dir holds its output journal and its log.
	Dir string
	t   testing.TB
	cmd *exec.Cmd
}

// Start runs systemd-journal-remote listening for HTTP on addr (a free
// loopback port if addr is "") and writing one journal file in a new directory; it is stopped when
// the test ends. As root, the remote runs as user nobody: it parses what
// the code under test sends and needs no privilege for that. Start skips
// the test when systemd-journal-remote or journalctl is not installed.
func Start(t testing.TB, addr string) *Remote {
	t.Helper()
	bin := ""
	for _, b := range binaries {
		if _, err := os.Stat(b); err == nil {
			bin = b
			break
		}
	}
	if bin == "" {
		t.Skip("systemd-journal-remote is not installed (apt-get install systemd-journal-remote; scripts/setup-deps.sh does)")
	}
	if _, err := exec.LookPath("journalctl"); err != nil {
		t.Skip("journalctl is not installed")
	}
	// Not t.TempDir: its parent is private to this user, and the remote
	// may run as another.
	dir, err := os.MkdirTemp("", "journal-remote-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if addr == "" {
		addr = FreeAddr(t)
	}

	logPath := filepath.Join(dir, "remote.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	cmd := exec.Command(bin, "--listen-http="+addr, "--output="+filepath.Join(dir, "remote.journal"),
		"--split-mode=none", "--compress=no")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.WaitDelay = time.Second
	if os.Geteuid() == 0 {
		uid, gid := nobody()
		if err := os.Chown(dir, int(uid), int(gid)); err != nil {
			t.Fatal(err)
		}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: gid}}
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", bin, err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	r := &Remote{URL: "http://" + addr, Dir: dir, t: t, cmd: cmd}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("systemd-journal-remote output:\n%s", b)
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case <-exited:
			b, _ := os.ReadFile(logPath)
			t.Fatalf("systemd-journal-remote exited: %s", b)
		default:
		}
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("systemd-journal-remote not listening on %s: %v", addr, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// nobody returns the uid and gid of user nobody (65534 if it is unknown).
func nobody() (uint32, uint32) {
	uid, gid := uint32(65534), uint32(65534)
	if u, err := user.Lookup("nobody"); err == nil {
		if v, err := strconv.ParseUint(u.Uid, 10, 32); err == nil {
			uid = uint32(v)
		}
		if v, err := strconv.ParseUint(u.Gid, 10, 32); err == nil {
			gid = uint32(v)
		}
	}
	return uid, gid
}

// Entry is one journal entry as journalctl -o json shows it, every value as
// bytes (journalctl writes non-UTF-8 and control-character values as arrays
// of numbers); the values of a field that occurs several times are joined
// with NUL bytes.
type Entry map[string]string

// Entries returns every entry the remote stored, in journal order, read
// with journalctl --file ... -o json --all.
func (r *Remote) Entries() ([]Entry, error) {
	out, err := exec.Command("journalctl", "--file", filepath.Join(r.Dir, "*.journal"), "-o", "json", "--all",
		"--no-pager").Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return nil, fmt.Errorf("journalctl: %w: %s", err, ee.Stderr)
		}
		return nil, fmt.Errorf("journalctl: %w", err)
	}
	var es []Entry
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		var raw map[string]json.RawMessage
		if err := json.Unmarshal(sc.Bytes(), &raw); err != nil {
			return nil, fmt.Errorf("journalctl line %q: %w", sc.Bytes(), err)
		}
		e := Entry{}
		for k, v := range raw {
			s, err := jsonValue(v)
			if err != nil {
				return nil, fmt.Errorf("journalctl field %s = %s: %w", k, v, err)
			}
			e[k] = s
		}
		es = append(es, e)
	}
	return es, sc.Err()
}

// WaitEntries waits until the remote stored at least n entries and returns
// them all.
func (r *Remote) WaitEntries(n int, timeout time.Duration) []Entry {
	r.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		es, err := r.Entries()
		if err == nil && len(es) >= n {
			return es
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("journal holds %d entries, want %d (%v)", len(es), n, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// FreeAddr returns a loopback TCP address that was free a moment ago.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// jsonValue decodes one field of journalctl's JSON: a string, an array of
// byte values, or an array of those for a field with several values.
func jsonValue(v json.RawMessage) (string, error) {
	var s string
	if json.Unmarshal(v, &s) == nil {
		return s, nil
	}
	var nums []byte
	var ints []int
	if json.Unmarshal(v, &ints) == nil {
		for _, n := range ints {
			if n < 0 || n > 255 {
				return "", fmt.Errorf("byte value %d", n)
			}
			nums = append(nums, byte(n))
		}
		return string(nums), nil
	}
	var multi []json.RawMessage
	if err := json.Unmarshal(v, &multi); err != nil {
		return "", err
	}
	var parts []string
	for _, m := range multi {
		p, err := jsonValue(m)
		if err != nil {
			return "", err
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, "\x00"), nil
}
