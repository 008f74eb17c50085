package agent

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lastgasp/lastgasp/boards"
)

// fakeDT writes a device tree as /sys/firmware/devicetree/base shows it:
// one directory per node, one file per property.
func fakeDT(t *testing.T, props map[string][]byte) string {
	t.Helper()
	root := t.TempDir()
	for p, v := range props {
		f := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f, v, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func be32(v ...uint32) []byte {
	var b []byte
	for _, x := range v {
		b = binary.BigEndian.AppendUint32(b, x)
	}
	return b
}

// qemuVirtDT is the shape of QEMU virt's DT after scripts/dtb-ramoops.sh.
func qemuVirtDT() map[string][]byte {
	return map[string][]byte{
		"#address-cells":                              be32(2),
		"#size-cells":                                 be32(2),
		"reserved-memory/#address-cells":              be32(2),
		"reserved-memory/#size-cells":                 be32(2),
		"reserved-memory/ramoops@50000000/compatible": []byte("ramoops\x00"),
		"reserved-memory/ramoops@50000000/reg":        be32(0, 0x50000000, 0, 0x100000),
		"reserved-memory/ramoops@50000000/no-map":     nil,
		"reserved-memory/lastgasp-ring@50100000/reg":  be32(0, 0x50100000, 0, 0x10000),
	}
}

// The iomem of that guest: no-map regions are "reserved", not System RAM.
const virtIomem = `40000000-4fffffff : System RAM
  40210000-41b5ffff : Kernel code
50000000-5010ffff : reserved
50110000-5fffffff : System RAM
`

func TestFindDTRamoops(t *testing.T) {
	n, err := findDTRamoops(fakeDT(t, qemuVirtDT()))
	if err != nil || n.addr != 0x50000000 || n.size != 0x100000 || n.path != "/reserved-memory/ramoops@50000000" {
		t.Fatalf("findDTRamoops = %+v, %v", n, err)
	}
	// One-cell addresses (a 32-bit board's DT), compatible with a vendor string first.
	n, err = findDTRamoops(fakeDT(t, map[string][]byte{
		"#address-cells": be32(1), "#size-cells": be32(1),
		"reserved-memory/ramoops@3f000000/compatible": []byte("vendor,oops\x00ramoops\x00"),
		"reserved-memory/ramoops@3f000000/reg":        be32(0x3f000000, 0x80000),
	}))
	if err != nil || n.addr != 0x3f000000 || n.size != 0x80000 {
		t.Fatalf("one cell: %+v, %v", n, err)
	}
	for name, dt := range map[string]map[string][]byte{
		"no reserved-memory": {"#address-cells": be32(2)},
		"no ramoops node":    {"reserved-memory/lastgasp-ring@50100000/reg": be32(0, 0x50100000, 0, 0x10000)},
	} {
		if _, err := findDTRamoops(fakeDT(t, dt)); !errors.Is(err, errNoDTRamoops) {
			t.Errorf("%s: %v, want errNoDTRamoops", name, err)
		}
	}
	if _, err := findDTRamoops(filepath.Join(t.TempDir(), "none")); !errors.Is(err, errNoDTRamoops) {
		t.Errorf("no device tree: %v, want errNoDTRamoops", err)
	}
	bad := qemuVirtDT()
	bad["reserved-memory/ramoops@50000000/reg"] = be32(0x50000000, 0x100000)
	if _, err := findDTRamoops(fakeDT(t, bad)); err == nil || errors.Is(err, errNoDTRamoops) {
		t.Errorf("short reg: %v, want a reg error", err)
	}
}

func TestRamoopsSafeDeviceTree(t *testing.T) {
	b, err := boards.Load("../boards/qemu-aarch64.board")
	if err != nil {
		t.Fatal(err)
	}
	iomem := filepath.Join(t.TempDir(), "iomem")
	if err := os.WriteFile(iomem, []byte(virtIomem), 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(dt map[string][]byte, b *boards.Board) (bool, string) {
		var log bytes.Buffer
		cfg := defaultConfig()
		cfg.Iomem = iomem
		cfg.PstoreParams = t.TempDir()
		cfg.DeviceTree = fakeDT(t, dt)
		a := &agent{Config: cfg, Log: openKmsg(filepath.Join(t.TempDir(), "no-kmsg"), &log)}
		return a.ramoopsSafe(b), log.String()
	}
	if ok, out := run(qemuVirtDT(), b); !ok || !strings.Contains(out, "region 0x50000000+0x100000 from the device tree's /reserved-memory/ramoops@50000000") {
		t.Errorf("good DT: ok=%v log=%q", ok, out)
	}
	none := qemuVirtDT()
	delete(none, "reserved-memory/ramoops@50000000/compatible")
	if ok, out := run(none, b); ok || !strings.Contains(out, `no /reserved-memory node with compatible = "ramoops"`) {
		t.Errorf("no node: ok=%v log=%q", ok, out)
	}
	moved := qemuVirtDT()
	moved["reserved-memory/ramoops@50000000/reg"] = be32(0, 0x50000000, 0, 0x200000)
	if ok, out := run(moved, b); ok || !strings.Contains(out, "the board says 0x50000000+0x100000") {
		t.Errorf("disagreeing node: ok=%v log=%q", ok, out)
	}
	// A node over System RAM (no no-map, or a region the kernel uses) is
	// refused by the iomem check, as a memmap= region would be.
	ram := qemuVirtDT()
	ram["reserved-memory/ramoops@50000000/reg"] = be32(0, 0x48000000, 0, 0x100000)
	bb := *b
	bb.Ramoops.MemSize, bb.Ramoops.MemAddress = 0, 0 // the board states no region: the DT's is taken
	if ok, out := run(ram, &bb); ok || !strings.Contains(out, "overlaps System RAM") {
		t.Errorf("node over RAM: ok=%v log=%q", ok, out)
	}
}

func FuzzParseDTReg(f *testing.F) {
	f.Add(be32(0, 0x50000000, 0, 0x100000), 2, 2)
	f.Add(be32(0x3f000000, 0x80000), 1, 1)
	f.Add(be32(0, 0x3f000000, 0x80000), 2, 1)
	f.Add([]byte{1, 2, 3}, 2, 2)
	f.Add([]byte{}, 0, 3)
	f.Fuzz(func(t *testing.T, reg []byte, ac, sc int) {
		addr, size, err := parseDTReg(reg, ac, sc)
		if err != nil {
			return
		}
		if ac < 1 || ac > 2 || sc < 1 || sc > 2 || len(reg) < 4*(ac+sc) {
			t.Fatalf("accepted reg %x with cells %d/%d", reg, ac, sc)
		}
		if ac == 1 && addr > 0xffffffff || sc == 1 && size > 0xffffffff {
			t.Fatalf("one cell gave %#x+%#x", addr, size)
		}
	})
}

func FuzzDTCompatible(f *testing.F) {
	f.Add([]byte("ramoops\x00"), "ramoops")
	f.Add([]byte("vendor,x\x00ramoops\x00"), "ramoops")
	f.Add([]byte("ramoopsx\x00"), "ramoops")
	f.Fuzz(func(t *testing.T, prop []byte, want string) {
		got := dtCompatible(prop, want)
		if got && !bytes.Contains(append(append([]byte{0}, prop...), 0), append(append([]byte{0}, want...), 0)) && want != "" {
			t.Fatalf("dtCompatible(%q, %q) = true", prop, want)
		}
	})
}
