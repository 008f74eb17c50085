package wire

import "fmt"

// DropReason says why a Host gave up on a message or fragment. It is a
// closed set: counters and metrics are keyed by it, never by its text.
type DropReason uint8

// Drop reasons. Their String forms are what the collector writes into a
// host's log and uses as the metric label.
const (
	// DropOutOfRange: a sequence number or fragment offset outside what
	// the format allows.
	DropOutOfRange DropReason = iota + 1
	// DropInvalidFragment: a fragment header that does not parse as one.
	DropInvalidFragment
	// DropConflict: an unfragmented message, or a fragment header, that
	// contradicts the fragments already held for its sequence number.
	DropConflict
	// DropOverlap: a fragment overlapping another of its message.
	DropOverlap
	// DropTooLarge: a message larger than Config.MaxPendingBytes.
	DropTooLarge
	// DropPendingLimit: the oldest incomplete message, dropped to stay
	// within Config.MaxPendingBytes.
	DropPendingLimit
	// DropTimeout: an incomplete message older than FragmentTimeout.
	DropTimeout
	// DropDrained: an incomplete message when the Host was drained.
	DropDrained
	// DropReboot: an incomplete message of a boot that ended.
	DropReboot
	// DropMemory: an incomplete message shed for a bound outside the
	// Host (Shed).
	DropMemory
	numDropReasons
)

// DropReasons lists every DropReason, for exporting counters.
var DropReasons = func() []DropReason {
	rs := make([]DropReason, 0, numDropReasons-1)
	for r := DropOutOfRange; r < numDropReasons; r++ {
		rs = append(rs, r)
	}
	return rs
}()

var reasonNames = [...]string{
	DropOutOfRange:      "out-of-range",
	DropInvalidFragment: "invalid-fragment",
	DropConflict:        "conflict",
	DropOverlap:         "overlap",
	DropTooLarge:        "too-large",
	DropPendingLimit:    "pending-limit",
	DropTimeout:         "timeout",
	DropDrained:         "drained",
	DropReboot:          "reboot",
	DropMemory:          "memory",
}

var reasonTexts = [...]string{
	DropOutOfRange:      "sequence number out of range",
	DropInvalidFragment: "invalid fragment",
	DropConflict:        "conflicts with fragments of the same message",
	DropOverlap:         "fragment overlaps another",
	DropTooLarge:        "message larger than pending limit",
	DropPendingLimit:    "pending bytes limit exceeded",
	DropTimeout:         "incomplete message timed out",
	DropDrained:         "incomplete message drained",
	DropReboot:          "incomplete message before reboot",
	DropMemory:          "memory limit exceeded",
}

// String returns the reason's short name, such as "timeout": a metric label.
func (r DropReason) String() string {
	if r > 0 && r < numDropReasons {
		return reasonNames[r]
	}
	return fmt.Sprintf("DropReason(%d)", int(r))
}

// Text returns a sentence for a log line, such as "incomplete message timed
// out".
func (r DropReason) Text() string {
	if r > 0 && r < numDropReasons {
		return reasonTexts[r]
	}
	return r.String()
}
