// Command lastgasp-sh is the image's rescue shell (/bin/sh, which the agent
// runs on the console after its work); its logic is package rescue
// (github.com/lastgasp/lastgasp/handoff/rescue).
package main

import (
	"os"

	"github.com/lastgasp/lastgasp/handoff/rescue"
)

func main() { os.Exit(rescue.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) }
