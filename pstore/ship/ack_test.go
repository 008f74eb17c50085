package ship

import (
	"encoding/json"
	"testing"
)

var ackSeeds = []string{
	`{"digest":"ab12","stored":true,"duplicate":false,"path":"h/b/crash/x"}`,
	` { "Digest" : "a\u00e9\"\\\/\b\f\n\r\t" , "STORED":true, "extra":[1,-2.5e+3,{"a":null}], "n":0 } `,
	`{"digest":null,"stored":null}`,
	`{"path":"\ud83d\ude00"}`,
	`{}`,
	`{"digest":"a","digest":"b"}`,
	`{"stored":"yes"}`,
	`{"digest":"x"} trailing`,
	`{"digest":"\ud800"}`,
	`{"a":01}`,
	`[]`,
}

func TestDecodeAck(t *testing.T) {
	a, err := decodeAck([]byte(ackSeeds[0]))
	if err != nil || a != (Ack{Digest: "ab12", Stored: true, Path: "h/b/crash/x"}) {
		t.Fatalf("decodeAck = %+v, %v", a, err)
	}
	a, err = decodeAck([]byte(ackSeeds[1]))
	if err != nil || a.Digest != "a\u00e9\"\\/\b\f\n\r\t" || !a.Stored {
		t.Fatalf("decodeAck = %+v, %v", a, err)
	}
	if a, err := decodeAck([]byte(`{"digest":"a","digest":"b"}`)); err != nil || a.Digest != "b" {
		t.Fatalf("duplicate key: %+v, %v (encoding/json keeps the last)", a, err)
	}
	for _, bad := range []string{`{"stored":"yes"}`, `{"digest":"x"} trailing`, `{"digest":"\ud800"}`, `{"a":01}`, `[]`, ``, `{"digest":"x`, `{"digest":1}`, "{\"digest\":\"\x01\"}", `{"a":[`} {
		if a, err := decodeAck([]byte(bad)); err == nil {
			t.Errorf("decodeAck(%q) = %+v, want an error", bad, a)
		}
	}
}

// FuzzDecodeAck: whatever decodeAck accepts, encoding/json decodes to the
// same Ack.
func FuzzDecodeAck(f *testing.F) {
	for _, s := range ackSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := decodeAck(b)
		if err != nil {
			return
		}
		var want Ack
		if jerr := json.Unmarshal(b, &want); jerr != nil {
			t.Fatalf("decodeAck(%q) = %+v, encoding/json refuses it: %v", b, got, jerr)
		}
		if got != want {
			t.Fatalf("decodeAck(%q) = %+v, encoding/json %+v", b, got, want)
		}
	})
}
