// Package initramfs builds the lastgasp image at build time: board profile ->
// kernel modules and their dependency closure from modules.dep -> staging tree
// -> u-root busybox build (agent as /init, lastgasp-sh as the rescue shell) -> xz
// (--check=crc32, which the kernel's decompressor requires). It is never
// imported by the agent.
package initramfs
