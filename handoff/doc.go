// Package handoff passes the machine from the lastgasp agent (PID 1 of the
// initramfs) to the main system without losing the logging the agent armed:
// switch_root into the root file system named on the kernel command line
// (root=, rootfstype=, rootflags=, ro/rw, rootwait, rootdelay=, init=, as in
// Documentation/admin-guide/kernel-parameters.txt and switch_root(8)), or
// kexec_file_load(2) of the main kernel with a command line that re-arms
// netconsole (Documentation/networking/netconsole.rst) and ramoops
// (Documentation/admin-guide/ramoops.rst) from the first line it logs.
package handoff
