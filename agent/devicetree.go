package agent

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/lastgasp/lastgasp/boards"
)

// A board with ramoops.source = devicetree gets its ramoops region from the
// device tree: a /reserved-memory child with compatible = "ramoops"
// (Documentation/devicetree/bindings/reserved-memory/ramoops.yaml). The
// kernel makes a platform device of it at boot; ramoops.ko, loaded without
// parameters, binds to it and takes its region and record sizes from the
// node. The agent reads the node (from /sys/firmware/devicetree/base) only
// to say what is armed, to refuse a node that disagrees with the board, and
// to check the region against /proc/iomem as for a memmap= region.

// errNoDTRamoops is wrapped when the device tree has no ramoops node.
var errNoDTRamoops = errors.New(`no /reserved-memory node with compatible = "ramoops" in the device tree`)

// dtNode is a device-tree ramoops node: its path and its first reg entry.
type dtNode struct {
	path       string
	addr, size uint64
}

// dtCells reads a #address-cells / #size-cells property (one big-endian
// u32); def when absent or malformed.
func dtCells(path string, def int) int {
	b, err := os.ReadFile(path)
	if err != nil || len(b) != 4 {
		return def
	}
	return int(binary.BigEndian.Uint32(b))
}

// parseDTReg decodes the first (address, size) entry of a reg property
// with the given cell counts (1 or 2 each).
func parseDTReg(reg []byte, addrCells, sizeCells int) (addr, size uint64, err error) {
	if addrCells < 1 || addrCells > 2 || sizeCells < 1 || sizeCells > 2 {
		return 0, 0, fmt.Errorf("reg: #address-cells=%d #size-cells=%d: want 1 or 2", addrCells, sizeCells)
	}
	n := 4 * (addrCells + sizeCells)
	if len(reg) < n || len(reg)%n != 0 {
		return 0, 0, fmt.Errorf("reg: %d bytes, want a multiple of %d", len(reg), n)
	}
	cell := func(b []byte, c int) uint64 {
		if c == 1 {
			return uint64(binary.BigEndian.Uint32(b))
		}
		return binary.BigEndian.Uint64(b)
	}
	return cell(reg, addrCells), cell(reg[4*addrCells:], sizeCells), nil
}

// dtCompatible reports whether a compatible property (NUL-separated
// strings) lists want.
func dtCompatible(prop []byte, want string) bool {
	for _, s := range bytes.Split(prop, []byte{0}) {
		if string(s) == want {
			return true
		}
	}
	return false
}

// findDTRamoops looks for the ramoops node under root, a device tree as
// the kernel shows it in /sys/firmware/devicetree/base.
func findDTRamoops(root string) (dtNode, error) {
	if _, err := os.Stat(root); err != nil {
		return dtNode{}, fmt.Errorf("no device tree (%w): %w", err, errNoDTRamoops)
	}
	rm := filepath.Join(root, "reserved-memory")
	ents, err := os.ReadDir(rm)
	if err != nil {
		return dtNode{}, fmt.Errorf("no /reserved-memory: %w", errNoDTRamoops)
	}
	// A reserved-memory node's cells are the root's (the binding says
	// they must be); read its own first.
	ac := dtCells(filepath.Join(rm, "#address-cells"), dtCells(filepath.Join(root, "#address-cells"), 2))
	sc := dtCells(filepath.Join(rm, "#size-cells"), dtCells(filepath.Join(root, "#size-cells"), 1))
	sort.Slice(ents, func(i, j int) bool { return ents[i].Name() < ents[j].Name() })
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		dir := filepath.Join(rm, e.Name())
		c, err := os.ReadFile(filepath.Join(dir, "compatible"))
		if err != nil || !dtCompatible(c, "ramoops") {
			continue
		}
		n := dtNode{path: "/reserved-memory/" + e.Name()}
		reg, err := os.ReadFile(filepath.Join(dir, "reg"))
		if err != nil {
			return n, fmt.Errorf("%s: no reg (a dynamically allocated region cannot survive a reset): %w", n.path, err)
		}
		if n.addr, n.size, err = parseDTReg(reg, ac, sc); err != nil {
			return n, fmt.Errorf("%s: %w", n.path, err)
		}
		if n.size == 0 {
			return n, fmt.Errorf("%s: reg size 0", n.path)
		}
		return n, nil
	}
	return dtNode{}, fmt.Errorf("%d nodes in /reserved-memory, none ramoops: %w", len(ents), errNoDTRamoops)
}

// dtRamoopsRegion returns the region of the device tree's ramoops node,
// or logs why ramoops is not loaded and returns ok=false: no node, or a
// node that disagrees with the region the board states.
func (a *agent) dtRamoopsRegion(b *boards.Board, t0 time.Time) (addr, size uint64, ok bool) {
	n, err := findDTRamoops(a.Config.DeviceTree)
	if err != nil {
		a.Log.Step("ramoops", t0, fmt.Errorf("refusing to arm: ramoops.source = devicetree: %w (add the node to the DTB the board boots with, e.g. scripts/dtb-ramoops.sh)", err), "")
		return 0, 0, false
	}
	r := b.Ramoops
	if r.MemSize != 0 && (r.MemAddress != n.addr || r.MemSize != n.size) {
		a.Log.Step("ramoops", t0, fmt.Errorf("refusing to arm: device tree %s is %#x+%#x, the board says %#x+%#x", n.path, n.addr, n.size, r.MemAddress, r.MemSize), "")
		return 0, 0, false
	}
	a.Log.Infof("ramoops: region %#x+%#x from the device tree's %s", n.addr, n.size, n.path)
	return n.addr, n.size, true
}
