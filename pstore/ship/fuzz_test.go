package ship

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func FuzzParseAck(f *testing.F) {
	d := Digest([]byte("Kernel panic - not syncing: sysrq triggered crash\n"))
	for _, seed := range []struct {
		body, digest string
	}{
		{`{"digest":"` + d + `","stored":true,"duplicate":false,"path":"box-1/crash/dmesg-ramoops-0.` + d[:16] + `"}`, d}, // a real ack
		{`{"digest":"` + d + `","stored":true,"duplicate":true,"path":"p"}`, d},                                           // duplicate
		{`{"digest":"` + d + `","stored":false}`, d},                                                                      // not stored
		{`{"digest":"` + d + `","stored":true}`, Digest(nil)},                                                             // other record
		{`{"digest":"` + d + `","stored":true,"extra":[1,2,{}]}`, d},                                                      // unknown fields
		{`{"digest":"` + d + `","digest":"x","stored":true}`, d},                                                          // repeated key
		{`{"stored":"true"}`, ""}, // wrong type
		{`null`, ""},              // null
		{``, ""},                  // empty
	} {
		f.Add([]byte(seed.body), seed.digest)
	}
	f.Fuzz(func(t *testing.T, body []byte, digest string) {
		ack, err := ParseAck(body, digest)
		if err != nil {
			if !errors.Is(err, ErrAckMismatch) {
				t.Fatalf("ParseAck error %v does not wrap ErrAckMismatch", err)
			}
			return
		}
		if ack.Digest != digest || !ack.Stored {
			t.Fatalf("ParseAck(%q, %q) = %+v, accepted", body, digest, ack)
		}
		// Round trip through the server's encoding.
		b, err := json.Marshal(ack)
		if err != nil {
			t.Fatal(err)
		}
		again, err := ParseAck(b, digest)
		if err != nil {
			t.Fatalf("re-encoded ack %s: %v", b, err)
		}
		if diff := cmp.Diff(ack, again); diff != "" {
			t.Fatalf("round trip (-first +second):\n%s", diff)
		}
	})
}
