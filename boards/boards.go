package boards

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/lastgasp/lastgasp/netconsole/ipconf"
)

// ErrInvalid is wrapped by every error that reports a malformed profile.
var ErrInvalid = errors.New("invalid board profile")

// Ramoops is the ramoops region and record layout of a board.
type Ramoops struct {
	MemAddress  uint64
	MemSize     uint64
	RecordSize  uint64
	ConsoleSize uint64
	FtraceSize  uint64
	PmsgSize    uint64
	ECC         uint64
	// FromDT (ramoops.source = devicetree): the region is the device
	// tree's /reserved-memory node with compatible = "ramoops"
	// (devicetree.go); ramoops is loaded without parameters.
	FromDT bool
}

// Enabled reports whether the board reserves a ramoops region.
func (r Ramoops) Enabled() bool { return r.MemSize != 0 || r.FromDT }

// Params returns the ramoops module parameters for the region, in the form
// finit_module takes ("mem_address=0x5000000 mem_size=..."); none when the
// region comes from the device tree.
func (r Ramoops) Params() string {
	if r.MemSize == 0 || r.FromDT {
		return ""
	}
	p := []string{
		fmt.Sprintf("mem_address=%#x", r.MemAddress),
		fmt.Sprintf("mem_size=%#x", r.MemSize),
		fmt.Sprintf("record_size=%#x", r.RecordSize),
	}
	for _, kv := range []struct {
		k string
		v uint64
	}{{"console_size", r.ConsoleSize}, {"ftrace_size", r.FtraceSize}, {"pmsg_size", r.PmsgSize}} {
		if kv.v != 0 {
			p = append(p, fmt.Sprintf("%s=%#x", kv.k, kv.v))
		}
	}
	p = append(p, fmt.Sprintf("ecc=%d", r.ECC))
	return strings.Join(p, " ")
}

// Ring is the region of lastgasp's own persistent RAM log (package
// pstore/ring: the console and pmsg equivalents Debian's kernels lack),
// reserved next to ramoops (x86: a second memmap=SIZE$ADDR).
type Ring struct {
	MemAddress uint64 // ring.mem_address
	MemSize    uint64 // ring.mem_size; 0: no ring
	// PmsgSize (ring.pmsg_size) is the part of each half (a boot's share)
	// for the agent's own lines; 0 means a quarter.
	PmsgSize uint64
}

// Enabled reports whether the board reserves a ring region.
func (r Ring) Enabled() bool { return r.MemSize != 0 }

// Board is a parsed board profile.
type Board struct {
	Name          string
	Arch          string
	KernelPackage string
	KernelCmdline string
	Modules       []string
	ModulesLate   []string
	// ModulesOnDemand (modules.ondemand) go into the image but are loaded
	// only when a feature asks for them: 8021q for a VLAN.
	ModulesOnDemand []string
	NIC             []string
	// VLAN (vlan) is an 802.1Q VLAN ID (1-4094) the agent's traffic is
	// tagged with: it creates <nic>.<id> on each candidate NIC and runs
	// DHCP and netconsole there. 0: untagged.
	VLAN int
	// VLANName and VLANParent come from dracut's vlan=<name>:<parent> on
	// the kernel command line: the VLAN interface on VLANParent gets that
	// name (other candidates get link.VLANName's). Not board keys.
	VLANName, VLANParent string
	Receivers            []string
	// ReceiverOption (receiver.dhcp_option) is the DHCPv4 option that
	// carries receivers when none is configured: 7 (RFC 2132 log server,
	// the default) or a site-specific code 128-254 with IPv4 addresses.
	ReceiverOption int
	// ReceiverOption6 (receiver.dhcp6_option) is the DHCPv6 option code
	// that carries IPv6 receivers (16-byte addresses); 0: DHCPv6 is not
	// asked for receivers. DHCPv6 has no standard log server option.
	ReceiverOption6 int
	// Upload (upload) is the collectors' base URLs, comma-separated, in
	// the order the agent tries them (UploadURLs).
	Upload string
	// UploadCA (upload.ca) is where the image holds the collector's CA
	// for https:// uploads; UploadCAFile (upload.ca_file), if set, is a
	// file relative to the board file that the image build bakes there.
	// Without it the CA is supplied at boot like the client credential.
	UploadCA     string
	UploadCAFile string
	// BuildTags (build.tags) are Go build tags for the image's binaries,
	// e.g. lastgasp_notls for a lab agent without TLS (plain http://).
	BuildTags []string
	Ramoops   Ramoops
	Ring      Ring
	EFI       EFI // NVRAM hygiene for efi_pstore (efi.go)
	LogLevel  int
	// MainLogLevel (console.main_loglevel) is the console loglevel handed
	// to the main system (switch_root, kexec): 5 by default, so warnings,
	// oopses and panics always go out and info-level boot noise does not.
	MainLogLevel int
	// IP (ip) is a static network configuration in the kernel's ip= syntax;
	// an ip= on the kernel command line wins over it.
	IP            string
	DHCPTimeout   time.Duration
	ARPTimeout    time.Duration
	UploadTimeout time.Duration
	Handoff       string // rescue, switch_root or kexec (see the Handoff* constants)
	Kexec         Kexec  // the main kernel for the kexec handoff
	// IgnoreLoglevel (console.ignore_loglevel) sends every message to the
	// consoles, netconsole included, whatever its level.
	IgnoreLoglevel bool
	Host           string
}

// Defaults returns the values a profile starts from before its keys apply.
func Defaults() Board {
	return Board{
		NIC:            []string{"eth*", "en*"},
		LogLevel:       7,
		MainLogLevel:   5,
		ReceiverOption: 7,
		DHCPTimeout:    10 * time.Second,
		ARPTimeout:     2 * time.Second,
		UploadTimeout:  20 * time.Second,
		UploadCA:       DefaultUploadCA,
		Handoff:        HandoffRescue,
	}
}

// DefaultUploadCA is where the agent looks for the collector's CA unless
// the board says otherwise (upload.ca).
const DefaultUploadCA = "/etc/lastgasp/ca.pem"

// TagNoTLS is the build tag that leaves TLS out of the agent (https://
// uploads; about 0.53 MB of xz), for lab images that upload over plain
// http://. Without it, as in the default image, the agent speaks both.
const TagNoTLS = "lastgasp_notls"

// Load reads and parses the profile at path.
func Load(path string) (*Board, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("boards: %w", err)
	}
	defer f.Close()
	b, err := Parse(f)
	if err != nil {
		return nil, fmt.Errorf("boards: %s: %w", filepath.Base(path), err)
	}
	return b, nil
}

// Parse reads a profile from r and validates it.
func Parse(r io.Reader) (*Board, error) {
	b := Defaults()
	seen := map[string]bool{}
	listSet := map[string]bool{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), 64*1024)
	line := 0
	for sc.Scan() {
		line++
		text := sc.Text()
		if i := strings.IndexByte(text, '#'); i >= 0 {
			text = text[:i]
		}
		text = strings.TrimSpace(text)
		if text == "" {
			continue
		}
		k, v, ok := strings.Cut(text, "=")
		if !ok {
			return nil, fmt.Errorf("line %d: want \"key = value\": %w", line, ErrInvalid)
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if err := b.set(k, v, seen, listSet); err != nil {
			return nil, fmt.Errorf("line %d: %s: %w", line, k, err)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read: %w", err)
	}
	if err := b.Validate(); err != nil {
		return nil, err
	}
	return &b, nil
}

func (b *Board) set(k, v string, seen, listSet map[string]bool) error {
	list := func(dst *[]string) error {
		if !listSet[k] {
			*dst = nil
			listSet[k] = true
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			return fmt.Errorf("empty list: %w", ErrInvalid)
		}
		*dst = append(*dst, f...)
		return nil
	}
	switch k {
	case "modules":
		return list(&b.Modules)
	case "modules.late":
		return list(&b.ModulesLate)
	case "modules.ondemand":
		return list(&b.ModulesOnDemand)
	case "nic":
		return list(&b.NIC)
	case "receiver":
		return list(&b.Receivers)
	case "build.tags":
		return list(&b.BuildTags)
	}
	if seen[k] {
		return fmt.Errorf("given twice: %w", ErrInvalid)
	}
	seen[k] = true
	num := func(dst *uint64) error {
		n, err := strconv.ParseUint(v, 0, 64)
		if err != nil {
			return fmt.Errorf("not a number %q: %w", v, ErrInvalid)
		}
		*dst = n
		return nil
	}
	dur := func(dst *time.Duration) error {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return fmt.Errorf("not a positive duration %q: %w", v, ErrInvalid)
		}
		*dst = d
		return nil
	}
	switch k {
	case "name":
		b.Name = v
	case "arch":
		b.Arch = v
	case "kernel.package":
		b.KernelPackage = v
	case "kernel.cmdline":
		b.KernelCmdline = v
	case "upload":
		b.Upload = v
	case "upload.ca":
		b.UploadCA = v
	case "upload.ca_file":
		b.UploadCAFile = v
	case "ramoops.mem_address":
		return num(&b.Ramoops.MemAddress)
	case "ramoops.mem_size":
		return num(&b.Ramoops.MemSize)
	case "ramoops.record_size":
		return num(&b.Ramoops.RecordSize)
	case "ramoops.console_size":
		return num(&b.Ramoops.ConsoleSize)
	case "ramoops.ftrace_size":
		return num(&b.Ramoops.FtraceSize)
	case "ramoops.pmsg_size":
		return num(&b.Ramoops.PmsgSize)
	case "ramoops.ecc":
		return num(&b.Ramoops.ECC)
	// The ring region (package pstore/ring).
	case "ring.mem_address":
		return num(&b.Ring.MemAddress)
	case "ring.mem_size":
		return num(&b.Ring.MemSize)
	case "ring.pmsg_size":
		return num(&b.Ring.PmsgSize)
	case "console.loglevel":
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 8 {
			return fmt.Errorf("want 0-8, got %q: %w", v, ErrInvalid)
		}
		b.LogLevel = n
	case "dhcp.timeout":
		return dur(&b.DHCPTimeout)
	case "arp.timeout":
		return dur(&b.ARPTimeout)
	case "upload.timeout":
		return dur(&b.UploadTimeout)
	case "host":
		b.Host = v
	case "receiver.dhcp_option":
		n, err := ParseReceiverOption(v)
		if err != nil {
			return err
		}
		b.ReceiverOption = n
	case "receiver.dhcp6_option":
		n, err := ParseReceiverOption6(v)
		if err != nil {
			return err
		}
		b.ReceiverOption6 = n
	case "vlan":
		id, err := ParseVLAN(v)
		if err != nil {
			return err
		}
		b.VLAN = id
	case "ip":
		if _, err := ipconf.ParseIPArg(v); err != nil {
			return fmt.Errorf("kernel ip= syntax: %v: %w", err, ErrInvalid)
		}
		b.IP = v
	default:
		if ok, err := b.efiKey(k, v); ok {
			return err
		}
		if ok, err := b.handoffKey(k, v); ok {
			return err
		}
		if ok, err := b.dtKey(k, v); ok {
			return err
		}
		return fmt.Errorf("unknown key: %w", ErrInvalid)
	}
	return nil
}

// Validate checks that the board's values are complete and consistent.
func (b *Board) Validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf(format+": %w", append(a, ErrInvalid)...)
	}
	if !validName(b.Name) {
		return bad("name %q: want [a-z0-9._-]", b.Name)
	}
	if b.Arch != "amd64" && b.Arch != "arm64" {
		return bad("arch %q: want amd64 or arm64", b.Arch)
	}
	if b.KernelPackage == "" {
		return bad("kernel.package missing")
	}
	for _, m := range b.ImageModules() {
		if !validName(strings.ToLower(m)) {
			return bad("module name %q", m)
		}
	}
	if b.VLAN < 0 || b.VLAN > 4094 {
		return bad("vlan %d: want 1-4094 or 0", b.VLAN)
	}
	for _, p := range b.NIC {
		if _, err := filepath.Match(p, ""); err != nil {
			return bad("nic pattern %q", p)
		}
	}
	for _, r := range b.Receivers {
		if _, err := ParseReceiver(r); err != nil {
			return err
		}
	}
	if b.Upload != "" {
		if _, err := ParseUploads(b.Upload); err != nil {
			return err
		}
	}
	if !filepath.IsAbs(b.UploadCA) || filepath.Clean(b.UploadCA) != b.UploadCA || b.UploadCA == "/" {
		return bad("upload.ca %q: want an absolute path inside the image", b.UploadCA)
	}
	if b.UploadCAFile != "" && strings.ContainsAny(b.UploadCAFile, ":") {
		return bad("upload.ca_file %q: ':' not allowed", b.UploadCAFile)
	}
	for _, t := range b.BuildTags {
		if !validTag(t) {
			return bad("build tag %q: want [A-Za-z0-9_.]", t)
		}
	}
	if r := b.Ramoops; r.MemSize != 0 {
		if r.RecordSize == 0 || r.RecordSize > r.MemSize {
			return bad("ramoops.record_size must be >0 and <= mem_size")
		}
		if r.RecordSize+r.ConsoleSize+r.FtraceSize+r.PmsgSize > r.MemSize {
			return bad("ramoops zones exceed mem_size")
		}
		if r.MemAddress == 0 {
			return bad("ramoops.mem_address missing")
		}
	}
	if g := b.Ring; g.Enabled() {
		// The ring is written through /dev/mem, which does not know
		// ramoops' region (ramoops maps it without claiming it).
		if g.MemAddress == 0 || g.MemSize < 4096 || g.PmsgSize >= g.MemSize/2 {
			return bad("ring: want mem_address, mem_size >= 4096 and pmsg_size < mem_size/2")
		}
		if r := b.Ramoops; r.MemSize != 0 && g.MemAddress < r.MemAddress+r.MemSize && r.MemAddress < g.MemAddress+g.MemSize {
			return bad("ring region %#x+%#x overlaps the ramoops region %#x+%#x", g.MemAddress, g.MemSize, r.MemAddress, r.MemSize)
		}
	}
	return b.validateHandoff()
}

// ModuleVLAN is the kernel module that provides 802.1Q VLAN devices.
const ModuleVLAN = "8021q"

// ImageModules returns every module the image must hold: modules,
// modules.late and modules.ondemand, plus 8021q when the board sets a VLAN.
func (b *Board) ImageModules() []string {
	var out []string
	seen := map[string]bool{}
	for _, l := range [][]string{b.Modules, b.ModulesLate, b.ModulesOnDemand} {
		for _, m := range l {
			if k := strings.ReplaceAll(m, "-", "_"); !seen[k] {
				seen[k] = true
				out = append(out, m)
			}
		}
	}
	if b.VLAN != 0 && !seen[ModuleVLAN] {
		out = append(out, ModuleVLAN)
	}
	return out
}

// ParseReceiverOption parses a DHCPv4 option code for receivers: 7 (RFC
// 2132 log server) or a site-specific code, 128-254 (RFC 2132 section 2).
func ParseReceiverOption(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || s != strconv.Itoa(n) || (n != 7 && (n < 128 || n > 254)) {
		return 0, fmt.Errorf("receiver DHCP option %q: want 7 or a site-specific code 128-254: %w", s, ErrInvalid)
	}
	return n, nil
}

// MaxAssignedOption6 is the highest DHCPv6 option code IANA had assigned
// when this was written; a receiver option must be above it, so that it
// never collides with an option the client itself sends or parses (client
// and server ID, IA_NA, DNS servers, ...).
const MaxAssignedOption6 = 148

// ParseReceiverOption6 parses a DHCPv6 option code for IPv6 receivers: an
// unassigned code, MaxAssignedOption6+1 to 65535 (e.g. 65001), or "0"/"off"
// for none.
func ParseReceiverOption6(s string) (int, error) {
	if s == "off" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > 65535 || s != strconv.Itoa(n) || (n != 0 && n <= MaxAssignedOption6) {
		return 0, fmt.Errorf("receiver DHCPv6 option %q: want an unassigned code %d-65535 (e.g. 65001), or 0/off: %w", s, MaxAssignedOption6+1, ErrInvalid)
	}
	return n, nil
}

// ParseVLAN parses an 802.1Q VLAN ID: 1-4094, or "0"/"off" for none.
func ParseVLAN(s string) (int, error) {
	if s == "off" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > 4094 || s != strconv.Itoa(n) {
		return 0, fmt.Errorf("vlan %q: want an 802.1Q VLAN ID 1-4094, or 0/off: %w", s, ErrInvalid)
	}
	return n, nil
}

// DefaultReceiverPort is the netconsole UDP port used when a receiver names no port.
const DefaultReceiverPort = 6666

// ParseReceiver parses "host[:port]" (IPv4 or [IPv6]) into a UDP address.
// The host must be an IP address: the agent resolves no names.
func ParseReceiver(s string) (*net.UDPAddr, error) {
	host, portStr := s, ""
	if h, p, err := net.SplitHostPort(s); err == nil {
		host, portStr = h, p
	} else if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		host = s[1 : len(s)-1]
	}
	ip := net.ParseIP(host)
	if ip == nil {
		return nil, fmt.Errorf("receiver %q: not an IP address: %w", s, ErrInvalid)
	}
	port := DefaultReceiverPort
	if portStr != "" {
		n, err := strconv.Atoi(portStr)
		if err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("receiver %q: bad port: %w", s, ErrInvalid)
		}
		port = n
	}
	return &net.UDPAddr{IP: ip, Port: port}, nil
}
