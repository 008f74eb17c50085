package main

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/lastgasp/lastgasp/initramfs"
)

// The handoff scenarios boot the image with a virtio disk that holds a small
// minix file system written by this harness (minix.ko is the smallest block
// file system module of the Debian kernel, ~20 KB xz; writing the image in
// Go needs no mount on the host). The "main system" is mainInitSrc, a tiny
// static Go program built here: it writes one line to /dev/kmsg, which must
// reach the collector through the netconsole the agent armed.

// mainInitLine starts the line the main system's init writes to /dev/kmsg.
const mainInitLine = "lastgasp-e2e: main init"

// mainInitSrc is the test's main-system init (standard library only). As
// the switch_root target it finds /dev and /proc moved in by the agent. As
// the /init of the kexec'd kernel's initramfs it mounts them itself and loads
// the modules listed in /modules.order with the parameters modprobe would
// take from the kernel command line (<module>.<param>=...): that is how a
// modular netconsole picks up netconsole.netconsole= and replays the log
// buffer from the kernel's first line.
const mainInitSrc = `package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
	"unsafe"
)

func main() {
	mode := "switch_root"
	if _, err := os.Stat("/dev/kmsg"); err != nil {
		mode = "initramfs"
		os.MkdirAll("/dev", 0o755)
		syscall.Mount("devtmpfs", "/dev", "devtmpfs", 0, "")
		os.MkdirAll("/proc", 0o755)
		syscall.Mount("proc", "/proc", "proc", 0, "")
	}
	cl, _ := os.ReadFile("/proc/cmdline")
	if order, err := os.ReadFile("/modules.order"); err == nil {
		for _, m := range strings.Fields(string(order)) {
			if err := load(m, string(cl)); err != nil {
				fmt.Println("init:", m, err)
			}
		}
	}
	msg := fmt.Sprintf("` + mainInitLine + ` pid=%d mode=%s", os.Getpid(), mode)
	if k, err := os.OpenFile("/dev/kmsg", os.O_WRONLY, 0); err == nil {
		fmt.Fprintf(k, "<5>%s\n", msg)
		k.Close()
	} else {
		fmt.Println("init: /dev/kmsg:", err)
	}
	for {
		time.Sleep(time.Hour)
	}
}

// sysFinitModule is finit_module(2) on linux/amd64 (the syscall package
// predates it).
const sysFinitModule = 313

func load(path, cmdline string) error {
	name := strings.ReplaceAll(strings.TrimSuffix(filepath.Base(path), ".ko"), "-", "_")
	var params []string
	for _, a := range strings.Fields(cmdline) {
		if p, ok := strings.CutPrefix(a, name+"."); ok {
			params = append(params, p)
		}
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	p, _ := syscall.BytePtrFromString(strings.Join(params, " "))
	if _, _, e := syscall.Syscall(sysFinitModule, f.Fd(), uintptr(unsafe.Pointer(p)), 0); e != 0 {
		return e
	}
	return nil
}
`

// buildMainInit builds mainInitSrc as a static linux/amd64 binary.
func buildMainInit(dir string) ([]byte, error) {
	src := filepath.Join(dir, "maininit")
	if err := os.MkdirAll(src, 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(src, "main.go"), []byte(mainInitSrc), 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(src, "go.mod"), []byte("module maininit\n\ngo 1.26\n"), 0o644); err != nil {
		return nil, err
	}
	bin := filepath.Join(dir, "maininit.bin")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64", "GOWORK=off", "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("build main init: %v: %s", err, out)
	}
	return os.ReadFile(bin)
}

// diskArgs are the default user-mode NIC plus a read-only virtio disk.
func diskArgs(img string) []string {
	return []string{"-netdev", "user,id=n0", "-device", "virtio-net-pci,netdev=n0,romfile=",
		"-drive", "file=" + img + ",format=raw,if=none,id=d0,readonly=on", "-device", "virtio-blk-pci,drive=d0"}
}

// storedLine matches a collector kernel.log line.
var storedLine = regexp.MustCompile(`^\S+ \S+ seq=(\d+) ts=(\d+)\.(\d+) (.*)$`)

// lineTS returns the kernel timestamp (seconds) of the first stored line
// containing s.
func lineTS(logs, s string) (float64, bool) {
	for _, l := range strings.Split(logs, "\n") {
		if m := storedLine.FindStringSubmatch(l); m != nil && strings.Contains(m[4], s) {
			sec, _ := strconv.ParseFloat(m[2]+"."+m[3], 64)
			return sec, true
		}
	}
	return 0, false
}

// gapLines returns the collector's gap lines: lost sequence numbers.
func gapLines(logs string) []string {
	var out []string
	for _, l := range strings.Split(logs, "\n") {
		if strings.Contains(l, "lastgaspd: gap ") {
			out = append(out, l)
		}
	}
	return out
}

// handoffSwitchRoot: the agent mounts root= (a minix disk), switches to it
// and execs its /sbin/init as PID 1; that init's /dev/kmsg line reaches the
// collector through the targets the agent armed, with no sequence gap.
func handoffSwitchRoot(e *Env) (string, error) {
	c, err := e.StartCollector("collector")
	if err != nil {
		return "", err
	}
	initBin, err := buildMainInit(e.Dir)
	if err != nil {
		return "", err
	}
	img := filepath.Join(e.Dir, "root.minix")
	if err := writeMinix(img, []minixFile{
		{Path: "/sbin/init", Perm: 0o755, Data: initBin},
		{Path: "/dev"}, {Path: "/proc"}, {Path: "/sys"}, {Path: "/run"},
		{Path: "/etc/os-release", Perm: 0o644, Data: []byte("NAME=lastgasp-e2e\n")},
	}); err != nil {
		return "", err
	}
	if err := fsckMinix(img); err != nil {
		return "", err
	}
	// main_loglevel=7: the main system's info lines go out too, so that a
	// sequence gap at the collector can only mean a lost line.
	vm, err := e.Boot("vm", BootOpts{Initrd: labInitrd(e), Append: agentArgs(c, "lastgasp.handoff=switch_root lastgasp.main_loglevel=7 root=/dev/vda rootfstype=minix ro"),
		NetArgs: diskArgs(img), Timeout: 3 * time.Minute})
	if err != nil {
		return "", err
	}
	if err := c.WaitLog(bootTimeout, "lastgasp: netconsole armed", "handoff: switch_root to /dev/vda", mainInitLine+" pid=1 mode=switch_root"); err != nil {
		return "", fmt.Errorf("%w (console tail: %q)", err, tail(vm.Serial(), 600))
	}
	logs := c.Logs()
	if g := gapLines(logs); len(g) > 0 {
		return "", fmt.Errorf("lines lost across the handoff: %v", g)
	}
	with, _ := lineTS(logs, mainInitLine)

	// The same kernel without lastgasp: the init is the initramfs's /init.
	cpio := filepath.Join(e.Dir, "bare.cpio")
	if err := writeCPIO(cpio, []cpioFile{{Path: "init", Perm: 0o755, Data: initBin}, {Path: "dev"}}); err != nil {
		return "", err
	}
	bare := *e
	bare.Initrd = cpio
	bare.cleanups = nil
	defer bare.cleanup()
	bvm, err := bare.Boot("bare", BootOpts{Timeout: 2 * time.Minute})
	if err != nil {
		return "", err
	}
	if _, err := bvm.WaitSerial(bootTimeout, 0, mainInitLine); err != nil {
		return "", fmt.Errorf("baseline: %w", err)
	}
	without := serialTS(bvm.Serial(), mainInitLine)
	return fmt.Sprintf("main init at %.2fs after kernel start (without lastgasp %.2fs), gaps=0", with, without), nil
}

// handoffKexec: the agent reads a bzImage and an initramfs from root= (a
// minix disk) and kexecs them with netconsole= (the MAC it resolved) and the
// ramoops reservation on the command line. The second kernel's modular
// netconsole, loaded by the test init with those parameters as modprobe
// would, replays its log buffer: the collector gets the second kernel's
// first lines, to the gateway's MAC, and the init's line.
func handoffKexec(e *Env) (string, error) {
	c, err := e.StartCollector("collector")
	if err != nil {
		return "", err
	}
	initBin, err := buildMainInit(e.Dir)
	if err != nil {
		return "", err
	}
	kdir := filepath.Dir(e.Kernel) // build/kernel/amd64
	kverB, err := os.ReadFile(filepath.Join(kdir, "kver"))
	if err != nil {
		return "", fmt.Errorf("kernel release: %w", err)
	}
	kver := strings.TrimSpace(string(kverB))
	bz, err := os.ReadFile(filepath.Join(kdir, "bzImage"))
	if err != nil {
		return "", fmt.Errorf("kexec_file_load needs the bzImage: %w", err)
	}
	files := []cpioFile{{Path: "init", Perm: 0o755, Data: initBin}, {Path: "dev"}, {Path: "proc"}}
	mods, err := moduleFiles(filepath.Join(kdir, "root", "lib", "modules", kver), []string{"virtio_pci", "virtio_net", "netconsole"})
	if err != nil {
		return "", err
	}
	var order []string
	for _, m := range mods {
		files = append(files, m)
		order = append(order, "/"+m.Path)
	}
	files = append(files, cpioFile{Path: "modules.order", Perm: 0o644, Data: []byte(strings.Join(order, "\n") + "\n")})
	var initrd bytes.Buffer
	if err := writeCPIOTo(&initrd, files); err != nil {
		return "", err
	}
	img := filepath.Join(e.Dir, "boot.minix")
	if err := writeMinix(img, []minixFile{
		{Path: "/boot/vmlinuz", Perm: 0o644, Data: bz},
		{Path: "/boot/initrd.img", Perm: 0o644, Data: initrd.Bytes()},
	}); err != nil {
		return "", err
	}
	if err := fsckMinix(img); err != nil {
		return "", err
	}
	vm, err := e.Boot("vm", BootOpts{Initrd: labInitrd(e), Append: agentArgs(c, "lastgasp.handoff=kexec root=/dev/vda rootfstype=minix",
		"lastgasp.kexec_kernel=/boot/vmlinuz", "lastgasp.kexec_initrd=/boot/initrd.img",
		// Every level goes out, so a sequence gap at the collector is a
		// lost line, not a debug line the console loglevel filtered.
		"lastgasp.ignore_loglevel=1"),
		NetArgs: diskArgs(img), Timeout: 4 * time.Minute})
	if err != nil {
		return "", err
	}
	if err := c.WaitLog(bootTimeout, "lastgasp: netconsole armed", "handoff: kexec /boot/vmlinuz"); err != nil {
		return "", fmt.Errorf("first kernel: %w (console tail: %q)", err, tail(vm.Serial(), 600))
	}
	// The second kernel: its banner, its command line with the target, its
	// netconsole's own report of the MAC it sends to, and the init's line.
	err = c.WaitLog(bootTimeout, "Linux version", "Command line: ", "netconsole=+6665@10.0.2.15/eth0,",
		"remote ethernet address "+gatewayMAC, mainInitLine+" pid=1 mode=initramfs")
	if err != nil {
		return "", fmt.Errorf("second kernel: %w (console tail: %q)", err, tail(vm.Serial(), 600))
	}
	logs := c.Logs()
	first, ok := firstSeq(logs, "Linux version")
	if !ok || first != 0 {
		return "", fmt.Errorf("second kernel's banner arrived as seq=%d (found %v), want seq=0: the replay missed the start", first, ok)
	}
	if g := gapLines(logs); len(g) > 0 {
		return "", fmt.Errorf("lines lost: %v", g)
	}
	initTS, _ := lineTS(logs, mainInitLine)
	return fmt.Sprintf("second kernel from seq=0, main init at %.2fs after the second kernel's start, gaps=0", initTS), nil
}

// firstSeq returns the sequence number of the first stored line containing s.
func firstSeq(logs, s string) (int, bool) {
	for _, l := range strings.Split(logs, "\n") {
		if m := storedLine.FindStringSubmatch(l); m != nil && strings.Contains(m[4], s) {
			n, _ := strconv.Atoi(m[1])
			return n, true
		}
	}
	return 0, false
}

// serialTS returns the console timestamp of the first console line
// containing s.
func serialTS(serial, s string) float64 {
	for _, l := range strings.Split(serial, "\n") {
		if m := kmsgLine.FindStringSubmatch(strings.TrimRight(l, "\r")); m != nil && strings.Contains(m[2], s) {
			ts, _ := strconv.ParseFloat(m[1], 64)
			return ts
		}
	}
	return -1
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// moduleFiles returns the modules (with their dependencies, in load order)
// as initramfs files under lib/modules/<release>/.
func moduleFiles(modDir string, names []string) ([]cpioFile, error) {
	dep, err := os.ReadFile(filepath.Join(modDir, "modules.dep"))
	if err != nil {
		return nil, fmt.Errorf("modules: %w", err)
	}
	dm, err := initramfs.ParseDep(bytes.NewReader(dep))
	if err != nil {
		return nil, err
	}
	bi, _ := os.ReadFile(filepath.Join(modDir, "modules.builtin"))
	builtin, err := initramfs.ParseBuiltin(bytes.NewReader(bi))
	if err != nil {
		return nil, err
	}
	paths, err := dm.Closure(names, builtin)
	if err != nil {
		return nil, err
	}
	var out []cpioFile
	for _, p := range paths {
		d, err := os.ReadFile(filepath.Join(modDir, p))
		if err != nil {
			return nil, err
		}
		out = append(out, cpioFile{Path: path.Join("lib/modules", filepath.Base(modDir), p), Perm: 0o644, Data: d})
	}
	return out, nil
}

// fsckMinix checks an image with util-linux's fsck.minix where installed.
func fsckMinix(img string) error {
	if _, err := exec.LookPath("fsck.minix"); err != nil {
		return nil
	}
	out, err := exec.Command("fsck.minix", "-f", img).CombinedOutput()
	if err != nil {
		return fmt.Errorf("fsck.minix %s: %v: %s", img, err, out)
	}
	return nil
}

// cpioFile is one initramfs entry; no Data and no Perm make a directory.
type cpioFile struct {
	Path string // relative
	Perm uint32
	Data []byte
}

func writeCPIO(out string, files []cpioFile) error {
	var b bytes.Buffer
	if err := writeCPIOTo(&b, files); err != nil {
		return err
	}
	return os.WriteFile(out, b.Bytes(), 0o644)
}

// writeCPIOTo writes a newc archive (what the kernel unpacks as initramfs),
// parent directories first.
func writeCPIOTo(w *bytes.Buffer, files []cpioFile) error {
	seen := map[string]bool{}
	ino := 1
	entry := func(name string, mode uint32, data []byte) {
		fmt.Fprintf(w, "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
			ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(name)+1, 0)
		ino++
		w.WriteString(name + "\x00")
		for w.Len()%4 != 0 {
			w.WriteByte(0)
		}
		w.Write(data)
		for w.Len()%4 != 0 {
			w.WriteByte(0)
		}
	}
	var dir func(string)
	dir = func(d string) {
		if d == "." || d == "/" || seen[d] {
			return
		}
		dir(path.Dir(d))
		seen[d] = true
		entry(d, 0o040755, nil)
	}
	for _, f := range files {
		if f.Data == nil && f.Perm == 0 {
			dir(f.Path)
			continue
		}
		dir(path.Dir(f.Path))
		entry(f.Path, 0o100000|f.Perm, f.Data)
	}
	entry("TRAILER!!!", 0, nil)
	return nil
}

// minixFile is one file of a minix image; no Data and no Perm make a
// directory.
type minixFile struct {
	Path string // absolute
	Perm uint16
	Data []byte
}

// Minix v1 layout with 30-character names (mkfs.minix -n 30): 1 KiB blocks,
// 16-bit zone numbers (images up to 64 MiB), 32-byte inodes with 7 direct
// zones, one indirect and one double indirect.
const (
	minixBlock     = 1024
	minixMagic30   = 0x138F
	minixInodeSize = 32
	minixDirent    = 32
	minixPtrs      = minixBlock / 2
)

type minixNode struct {
	path     string
	dir      bool
	perm     uint16
	data     []byte
	ino      int
	children []string
	nlink    int
}

// writeMinix writes a read-only-use minix v1 image holding files.
func writeMinix(out string, files []minixFile) error {
	nodes := map[string]*minixNode{"/": {path: "/", dir: true, perm: 0o755}}
	var mkdir func(string) *minixNode
	mkdir = func(p string) *minixNode {
		if n := nodes[p]; n != nil {
			return n
		}
		parent := mkdir(path.Dir(p))
		n := &minixNode{path: p, dir: true, perm: 0o755}
		nodes[p] = n
		parent.children = append(parent.children, p)
		return n
	}
	for _, f := range files {
		if !strings.HasPrefix(f.Path, "/") || len(path.Base(f.Path)) > 30 {
			return fmt.Errorf("minix: bad path %q", f.Path)
		}
		if f.Data == nil && f.Perm == 0 {
			mkdir(f.Path)
			continue
		}
		parent := mkdir(path.Dir(f.Path))
		nodes[f.Path] = &minixNode{path: f.Path, perm: f.Perm, data: f.Data}
		parent.children = append(parent.children, f.Path)
	}
	// Inode numbers in breadth-first order from the root (inode 1).
	order := []*minixNode{nodes["/"]}
	for i := 0; i < len(order); i++ {
		n := order[i]
		n.ino = i + 1
		sort.Strings(n.children)
		for _, c := range n.children {
			order = append(order, nodes[c])
		}
	}
	// Directory contents need inode numbers: fill them in now.
	for _, n := range order {
		if !n.dir {
			n.nlink = 1
			continue
		}
		n.nlink = 2
		parent := nodes[path.Dir(n.path)]
		var d bytes.Buffer
		dirent := func(ino int, name string) {
			var e [minixDirent]byte
			binary.LittleEndian.PutUint16(e[:], uint16(ino))
			copy(e[2:], name)
			d.Write(e[:])
		}
		dirent(n.ino, ".")
		dirent(parent.ino, "..")
		for _, c := range n.children {
			dirent(nodes[c].ino, path.Base(c))
			if nodes[c].dir {
				n.nlink++
			}
		}
		n.data = d.Bytes()
	}
	blocksFor := func(size int) int {
		b := (size + minixBlock - 1) / minixBlock
		total := b
		if b > 7 {
			total++ // indirect
		}
		if b > 7+minixPtrs {
			rest := b - 7 - minixPtrs
			total += 1 + (rest+minixPtrs-1)/minixPtrs // double indirect + its indirect blocks
		}
		return total
	}
	data := 0
	for _, n := range order {
		data += blocksFor(len(n.data))
	}
	ninodes := len(order)
	inodeBlocks := (ninodes*minixInodeSize + minixBlock - 1) / minixBlock
	imap := (ninodes + 1 + minixBlock*8 - 1) / (minixBlock * 8)
	zmap := 1
	var first, nzones int
	for {
		first = 2 + imap + zmap + inodeBlocks
		nzones = first + data
		need := (nzones - first + 1 + minixBlock*8 - 1) / (minixBlock * 8)
		if need <= zmap {
			break
		}
		zmap = need
	}
	if nzones > 0xFFFF {
		return fmt.Errorf("minix: %d blocks, v1 holds at most 65535", nzones)
	}
	img := make([]byte, nzones*minixBlock)
	le := binary.LittleEndian
	sb := img[minixBlock:]
	le.PutUint16(sb[0:], uint16(ninodes))
	le.PutUint16(sb[2:], uint16(nzones))
	le.PutUint16(sb[4:], uint16(imap))
	le.PutUint16(sb[6:], uint16(zmap))
	le.PutUint16(sb[8:], uint16(first))
	le.PutUint16(sb[10:], 0) // log zone size
	le.PutUint32(sb[12:], (7+minixPtrs+minixPtrs*minixPtrs)*minixBlock)
	le.PutUint16(sb[16:], minixMagic30)
	le.PutUint16(sb[18:], 1) // valid, cleanly unmounted
	// Every inode and every data zone is in use: set all bitmap bits (the
	// bits past the last inode or zone must be set as well).
	for i := 2 * minixBlock; i < (2+imap+zmap)*minixBlock; i++ {
		img[i] = 0xFF
	}
	next := first
	alloc := func() int { next++; return next - 1 }
	now := uint32(time.Now().Unix())
	for _, n := range order {
		ind := img[(2+imap+zmap)*minixBlock+(n.ino-1)*minixInodeSize:]
		mode := uint16(0o100000)
		if n.dir {
			mode = 0o040000
		}
		le.PutUint16(ind[0:], mode|n.perm)
		le.PutUint32(ind[4:], uint32(len(n.data)))
		le.PutUint32(ind[8:], now)
		ind[13] = byte(n.nlink)
		nb := (len(n.data) + minixBlock - 1) / minixBlock
		zones := make([]int, nb)
		for i := range zones {
			zones[i] = alloc()
			copy(img[zones[i]*minixBlock:], n.data[i*minixBlock:min((i+1)*minixBlock, len(n.data))])
		}
		for i := 0; i < 7 && i < nb; i++ {
			le.PutUint16(ind[14+2*i:], uint16(zones[i]))
		}
		if nb > 7 {
			ib := alloc()
			le.PutUint16(ind[14+2*7:], uint16(ib))
			for i := 7; i < nb && i < 7+minixPtrs; i++ {
				le.PutUint16(img[ib*minixBlock+2*(i-7):], uint16(zones[i]))
			}
		}
		if nb > 7+minixPtrs {
			db := alloc()
			le.PutUint16(ind[14+2*8:], uint16(db))
			rest := zones[7+minixPtrs:]
			for j := 0; len(rest) > 0; j++ {
				ib := alloc()
				le.PutUint16(img[db*minixBlock+2*j:], uint16(ib))
				k := min(minixPtrs, len(rest))
				for i := 0; i < k; i++ {
					le.PutUint16(img[ib*minixBlock+2*i:], uint16(rest[i]))
				}
				rest = rest[k:]
			}
		}
	}
	if next != nzones {
		return fmt.Errorf("minix: allocated %d blocks, laid out %d", next, nzones)
	}
	return os.WriteFile(out, img, 0o644)
}
