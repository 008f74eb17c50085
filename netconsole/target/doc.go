// Package target creates and enables dynamic netconsole targets through
// configfs (Documentation/networking/netconsole.rst, "Dynamic
// reconfiguration"): one directory per target under
// <configfs>/netconsole, attributes written while disabled, then enabled.
package target
