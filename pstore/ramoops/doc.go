// Package ramoops checks a board's ramoops region before the agent arms it
// (Documentation/admin-guide/ramoops.rst). ramoops writes wherever it is
// told: a region that overlaps RAM the kernel uses would corrupt memory, so
// the region must lie in memory the firmware or the kernel command line
// (x86 memmap=SIZE$ADDR) reserved, as /proc/iomem reports it. It also tells
// whether a pstore backend is already registered (the kernel takes one).
package ramoops
