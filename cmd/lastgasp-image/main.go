// Command lastgasp-image builds a board's lastgasp initramfs and prints its
// size. The kernel package must already be unpacked (scripts/fetch-kernel.sh).
//
//	lastgasp-image -board boards/qemu-x86_64.board -kernel build/kernel/amd64 -o build/qemu-x86_64/initramfs.cpio.xz
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/lastgasp/lastgasp/boards"
	"github.com/lastgasp/lastgasp/initramfs"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "lastgasp-image:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("lastgasp-image", flag.ContinueOnError)
	boardFile := fs.String("board", "boards/qemu-x86_64.board", "board profile")
	kdir := fs.String("kernel", "", "kernel cache dir from scripts/fetch-kernel.sh (holds root/ and kver)")
	out := fs.String("o", "", "output .cpio.xz")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *kdir == "" || *out == "" {
		return fmt.Errorf("-kernel and -o are required")
	}
	b, err := boards.Load(*boardFile)
	if err != nil {
		return err
	}
	kver, err := os.ReadFile(filepath.Join(*kdir, "kver"))
	if err != nil {
		return fmt.Errorf("%w (run scripts/fetch-kernel.sh first)", err)
	}
	t0 := time.Now()
	res, err := initramfs.Build(context.Background(), initramfs.Options{
		Board: b, BoardFile: *boardFile, KernelRoot: filepath.Join(*kdir, "root"),
		KernelRelease: strings.TrimSpace(string(kver)), WorkDir: filepath.Join(filepath.Dir(*out), "work"),
		Output: *out, Stdout: os.Stderr, Stderr: os.Stderr,
	})
	if err != nil {
		return err
	}
	bcj := res.BCJ
	if bcj == "" {
		bcj = "none"
	}
	fmt.Printf("image %s: %d bytes xz (%.2f MiB, branch filter %s), %d bytes cpio, %d modules, built in %v\n",
		*out, res.XZBytes, float64(res.XZBytes)/(1<<20), bcj, res.CPIOBytes, len(res.Modules), time.Since(t0).Round(100*time.Millisecond))
	return nil
}
