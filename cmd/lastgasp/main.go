// Command lastgasp is the lastgasp agent, the /init of a u-root initramfs;
// its logic is package agent (github.com/lastgasp/lastgasp/agent).
package main

import "github.com/lastgasp/lastgasp/agent"

func main() { agent.Main() }
