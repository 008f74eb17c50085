//go:build tools

// Package tools pins the build-time tool (the u-root image builder) in
// go.mod, so an image build needs nothing but the Go module proxy. The
// image's commands are lastgasp's own (the agent and handoff/rescue's
// shell), so no u-root command is pinned.
package tools

import (
	_ "github.com/u-root/u-root"
)
