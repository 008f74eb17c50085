// Command guards fails the build when the default image or the agent
// outgrow what the project promises (make guards, part of make test):
//
//   - the default image (boards/qemu-x86_64.board) must stay at or below
//     2,000,000 bytes of xz;
//
//   - the agent (cmd/lastgasp, built with its default tags) must not link
//     net/http (about 1.1 MB of xz: its own HTTP/1.1 client is in pstore/ship);
//
//   - and it must link crypto/tls: TLS uploads are the default (only a lab
//     image built with lastgasp_notls leaves them out).
//
//     go run ./scripts/guards -image build/qemu-x86_64/initramfs.cpio.xz
//
// Each failure names the figure and the limit.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// DefaultImageLimit is the budget of the default image, in bytes of xz.
const DefaultImageLimit = 2_000_000

func main() {
	image := flag.String("image", "", "the default board's initramfs.cpio.xz to check against -limit (none: no size check)")
	limit := flag.Int64("limit", DefaultImageLimit, "largest allowed size of -image, bytes")
	agent := flag.String("agent", "./cmd/lastgasp", "the agent's package, checked with go list -deps")
	forbid := flag.String("forbid", "net/http", "comma-separated packages the agent must not link")
	require := flag.String("require", "crypto/tls", "comma-separated packages the agent must link")
	goos := flag.String("goos", "linux", "GOOS of the agent's build")
	goarch := flag.String("goarch", "amd64", "GOARCH of the agent's build")
	flag.Parse()

	failed := false
	if *image != "" {
		st, err := os.Stat(*image)
		if err == nil {
			err = CheckImageSize(*image, st.Size(), *limit)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "guards: FAIL:", err)
			failed = true
		} else {
			fmt.Printf("guards: ok: %s: %d bytes xz <= %d (%d left)\n", *image, st.Size(), *limit, *limit-st.Size())
		}
	}
	deps, err := listDeps(*agent, *goos, *goarch)
	if err == nil {
		err = CheckNoDeps(*agent, deps, strings.Split(*forbid, ","))
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "guards: FAIL:", err)
		failed = true
	} else {
		fmt.Printf("guards: ok: %s (GOOS=%s GOARCH=%s, default tags) links none of %s (%d packages)\n", *agent, *goos, *goarch, *forbid, len(deps))
	}
	if deps != nil && *require != "" {
		if err := CheckDeps(*agent, deps, strings.Split(*require, ",")); err != nil {
			fmt.Fprintln(os.Stderr, "guards: FAIL:", err)
			failed = true
		} else {
			fmt.Printf("guards: ok: %s (default tags) links %s\n", *agent, *require)
		}
	}
	if failed {
		os.Exit(1)
	}
}

// CheckImageSize returns an error naming the size and the limit when size
// (the bytes of the image at path) is over limit.
func CheckImageSize(path string, size, limit int64) error {
	if size > limit {
		return fmt.Errorf("image %s is %d bytes xz, over the limit of %d bytes by %d (README, \"Image budget\")", path, size, limit, size-limit)
	}
	return nil
}

// CheckNoDeps returns an error naming each forbidden package found in deps
// (the import paths pkg depends on) and the count of dependencies.
func CheckNoDeps(pkg string, deps, forbidden []string) error {
	have := make(map[string]bool, len(deps))
	for _, d := range deps {
		have[d] = true
	}
	var bad []string
	for _, f := range forbidden {
		if f = strings.TrimSpace(f); f != "" && have[f] {
			bad = append(bad, f)
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("%s links %s (%d of its %d dependencies; allowed: 0): the agent speaks HTTP with its own client in pstore/ship", pkg, strings.Join(bad, ", "), len(bad), len(deps))
	}
	return nil
}

// CheckDeps returns an error naming each required package missing from
// deps (the import paths pkg depends on).
func CheckDeps(pkg string, deps, required []string) error {
	have := make(map[string]bool, len(deps))
	for _, d := range deps {
		have[d] = true
	}
	var missing []string
	for _, r := range required {
		if r = strings.TrimSpace(r); r != "" && !have[r] {
			missing = append(missing, r)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%s does not link %s (with its default tags): TLS uploads are the default; only lastgasp_notls leaves them out", pkg, strings.Join(missing, ", "))
	}
	return nil
}

// listDeps runs go list -deps for pkg as it is built for the image.
func listDeps(pkg, goos, goarch string) ([]string, error) {
	cmd := exec.Command("go", "list", "-deps", pkg)
	cmd.Env = append(os.Environ(), "GOOS="+goos, "GOARCH="+goarch, "CGO_ENABLED=0")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go list -deps %s: %w: %s", pkg, err, strings.TrimSpace(stderr.String()))
	}
	return strings.Fields(string(out)), nil
}
