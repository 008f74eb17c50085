package main

import (
	"flag"
	"path/filepath"
)

// The lab image (boards/qemu-x86_64-lab.board) is the default board plus
// the modules only QEMU scenarios use (e1000, virtio_blk + minix, 8021q),
// with an agent built without TLS: the default image, which carries TLS,
// has no room for them in its 2,000,000-byte budget. The scenarios that
// need one of them boot it with BootOpts{Initrd: labInitrd(e)}.
var initrdLab = flag.String("initrd-lab", "", "image of boards/qemu-x86_64-lab.board (default: <build>/qemu-x86_64-lab/initramfs.cpio.xz next to -initrd)")

// labInitrd is the lab image's path.
func labInitrd(e *Env) string {
	if *initrdLab != "" {
		return *initrdLab
	}
	return filepath.Join(filepath.Dir(filepath.Dir(e.Initrd)), "qemu-x86_64-lab", "initramfs.cpio.xz")
}
