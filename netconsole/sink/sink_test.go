package sink

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/lastgasp/lastgasp/netconsole/wire"
)

// record is a Sink that keeps what it is sent.
type record []Message

func (r *record) Send(m Message) { *r = append(*r, m) }

func TestFromPacket(t *testing.T) {
	at := time.Date(2026, 11, 25, 16, 4, 5, 0, time.UTC)
	for _, tt := range []struct {
		name, datagram string
		want           Message
	}{
		{
			// Documentation/networking/netconsole.rst, "Extended console":
			// "6.4.0,6,812,3163223,-;..." with the release option on.
			name:     "extended with release",
			datagram: "6.4.0,6,812,3163223,-;Kernel panic - not syncing: sysrq triggered crash",
			want: Message{Host: "box1", Boot: "b1", Extended: true, Seq: 812, TimestampUsec: 3163223, Level: 6,
				Release: "6.4.0", Text: "Kernel panic - not syncing: sysrq triggered crash", Received: at},
		},
		{
			name:     "facility and level from prival 30 (daemon.info)",
			datagram: "30,5,100,-;x",
			want:     Message{Host: "box1", Boot: "b1", Extended: true, Seq: 5, TimestampUsec: 100, Facility: 3, Level: 6, Text: "x", Received: at},
		},
		{
			name:     "legacy",
			datagram: "[    3.163223] plain console line",
			want:     Message{Host: "box1", Boot: "b1", Text: "[    3.163223] plain console line", Received: at},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p, err := wire.Parse([]byte(tt.datagram))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, FromPacket("box1", "b1", p, at)); diff != "" {
				t.Errorf("FromPacket mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestFanout(t *testing.T) {
	var a, b record
	f := Fanout{&a, &b}
	msgs := []Message{{Host: "h", Seq: 1, Text: "one"}, {Host: "h", Seq: 2, Text: "two"}}
	for _, m := range msgs {
		f.Send(m)
	}
	for name, got := range map[string]record{"first": a, "second": b} {
		if diff := cmp.Diff(record(msgs), got); diff != "" {
			t.Errorf("%s sink (-want +got):\n%s", name, diff)
		}
	}
	Fanout(nil).Send(msgs[0]) // no sinks: nothing to do
}
