package sink

import (
	"time"

	"github.com/lastgasp/lastgasp/netconsole/wire"
)

// Message is one complete kernel message as the collector filed it.
type Message struct {
	// Host and Boot are the names the message is filed under: the
	// announced host (or the sender's address) and boot id; Boot is ""
	// when the boot is unknown.
	Host, Boot string
	// Extended reports whether the message came in netconsole's extended
	// format; only then are Seq and TimestampUsec set.
	Extended bool
	// Seq is the printk sequence number.
	Seq uint64
	// TimestampUsec is the printk timestamp, microseconds since the
	// sender's boot.
	TimestampUsec uint64
	// Facility and Level are the syslog facility and level (the kernel's
	// log level, 0 emergency ... 7 debug).
	Facility, Level int
	// Release is the kernel release the sender prepended (netconsole's
	// "release" option), or "".
	Release string
	// Text is the message text as received: untrusted bytes, which a sink
	// must encode or repair for its own format.
	Text string
	// Received is when the collector received the message's (last)
	// datagram.
	Received time.Time
}

// FromPacket returns the Message for a packet filed under host and boot
// (boot "" when unknown) and received at received.
func FromPacket(host, boot string, p wire.Packet, received time.Time) Message {
	return Message{
		Host: host, Boot: boot, Extended: p.Extended, Seq: p.Seq, TimestampUsec: p.TimestampUsec,
		Facility: p.Facility, Level: p.Level, Release: p.Release, Text: p.Text, Received: received,
	}
}

// Sink takes messages from the collector's receive path. Send must not
// block (a sink queues, and drops and counts what does not fit) and must not
// keep m, or anything it refers to, after it returns: a sink copies or
// encodes what it needs.
type Sink interface {
	Send(m Message)
}

// Fanout is a Sink that sends every message to each of its sinks in turn.
type Fanout []Sink

// Send implements Sink.
func (f Fanout) Send(m Message) {
	for _, s := range f {
		s.Send(m)
	}
}
