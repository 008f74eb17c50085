//go:build tools

// Package tools pins the build-time tools (the u-root image builder and the
// u-root commands baked into the image) in go.mod, so an image build needs
// nothing but the Go module proxy.
package tools

import (
	_ "github.com/u-root/u-root"
	_ "github.com/u-root/u-root/cmds/core/cat"
	_ "github.com/u-root/u-root/cmds/core/gosh"
	_ "github.com/u-root/u-root/cmds/core/ls"
)
