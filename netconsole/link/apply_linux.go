package link

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/vishvananda/netlink"
)

// ApplyOption configures Apply.
type ApplyOption func(*applyConfig)

type applyConfig struct {
	resolvConf string
}

// WithResolvConf makes Apply write the lease's DNS servers, as nameserver
// lines, to path (atomically: temporary file, then rename). Without it Apply
// writes no file at all; netconsole needs no name resolution. Never point it
// at /etc/resolv.conf outside the machine being configured: a network
// namespace does not isolate files.
func WithResolvConf(path string) ApplyOption {
	return func(c *applyConfig) { c.resolvConf = path }
}

// Apply configures the lease on its interface with netlink: the MTU (if the
// lease has one), the address, then the routes. With classless static routes
// (RFC 3442) those are installed, on-link ones first, and Router is not used
// on its own; otherwise a default route via Router, if any. A gateway outside
// the lease's subnet is installed with the onlink flag, as servers that hand
// out /32 addresses expect.
func Apply(l *Lease, opts ...ApplyOption) error {
	var cfg applyConfig
	for _, o := range opts {
		o(&cfg)
	}
	link, err := linkByName(l.Interface)
	if err != nil {
		return err
	}
	if l.MTU != 0 && l.MTU != link.Attrs().MTU {
		if l.MTU < minMTU {
			return fmt.Errorf("link: %s: mtu %d below %d", l.Interface, l.MTU, minMTU)
		}
		if err := netlink.LinkSetMTU(link, l.MTU); err != nil {
			return fmt.Errorf("link: %s: set mtu %d: %w", l.Interface, l.MTU, err)
		}
	}
	addr := &netlink.Addr{IPNet: &net.IPNet{IP: l.Address.IP, Mask: l.Address.Mask}}
	if err := netlink.AddrReplace(link, addr); err != nil {
		return fmt.Errorf("link: %s: add address %s: %w", l.Interface, l.Address.String(), err)
	}
	idx := link.Attrs().Index
	routes := l.Routes
	if len(routes) == 0 && l.Router != nil {
		routes = []Route{{Dest: net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)}, Gateway: l.Router}}
	}
	subnet := net.IPNet{IP: l.Address.IP.Mask(l.Address.Mask), Mask: l.Address.Mask}
	var onlink []net.IPNet
	for _, r := range routes {
		if r.OnLink() {
			onlink = append(onlink, r.Dest)
		}
	}
	install := func(r Route) error {
		nr := &netlink.Route{LinkIndex: idx}
		if ones, _ := r.Dest.Mask.Size(); ones > 0 {
			nr.Dst = &net.IPNet{IP: r.Dest.IP, Mask: r.Dest.Mask}
		}
		if r.OnLink() {
			nr.Scope = netlink.SCOPE_LINK
		} else {
			nr.Gw = r.Gateway
			if !subnet.Contains(r.Gateway) && !containedIn(r.Gateway, onlink) {
				nr.Flags = int(netlink.FLAG_ONLINK)
			}
		}
		if err := netlink.RouteReplace(nr); err != nil {
			return fmt.Errorf("link: %s: route %s: %w", l.Interface, r, err)
		}
		return nil
	}
	for _, r := range routes {
		if r.OnLink() {
			if err := install(r); err != nil {
				return err
			}
		}
	}
	for _, r := range routes {
		if !r.OnLink() {
			if err := install(r); err != nil {
				return err
			}
		}
	}
	if cfg.resolvConf != "" && len(l.DNS) > 0 {
		if err := writeResolvConf(cfg.resolvConf, l); err != nil {
			return fmt.Errorf("link: %s: %w", l.Interface, err)
		}
	}
	return nil
}

func containedIn(ip net.IP, nets []net.IPNet) bool {
	for _, n := range nets {
		if n.Contains(ip) {
			return true
		}
	}
	return false
}

func writeResolvConf(path string, l *Lease) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# written by lastgasp from the lease on %s\n", l.Interface)
	for _, ip := range l.DNS {
		fmt.Fprintf(&b, "nameserver %s\n", ip)
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".resolv.conf.*")
	if err != nil {
		return fmt.Errorf("resolv.conf %s: %w", path, err)
	}
	defer os.Remove(f.Name())
	if _, err := f.WriteString(b.String()); err != nil {
		f.Close()
		return fmt.Errorf("resolv.conf %s: %w", path, err)
	}
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		return fmt.Errorf("resolv.conf %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("resolv.conf %s: %w", path, err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("resolv.conf %s: %w", path, err)
	}
	return nil
}
