// Package announce is the one definition of the line with which the
// lastgasp agent tells the collector which host and boot a netconsole
// stream belongs to. The agent writes it with Format right after a target is
// armed (it is the first message through the target) and again in its
// summary line; the collector binds the stream with Parse.
//
// On the wire it is an ordinary kernel log message (the 6.1 kernel has no
// netconsole userdata):
//
//	lastgasp: netconsole armed host=<host> boot=<boot id> k=v ...
//
// Any line starting with "lastgasp: " that carries host= and boot= tokens
// binds, so the summary line re-binds a stream for a collector that
// restarted after the first one.
package announce
