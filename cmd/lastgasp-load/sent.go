package main

import (
	"bufio"
	"io"
	"strconv"
)

// WriteSent writes what each host sent, one line a host, for a script to
// compare with a store:
//
//	load-0007 first=1002 last=1027 skipped=1010,1020 multi=1024:3
//
// first and last are the first and last sequence numbers sent; skipped
// lists the deliberately skipped numbers (one may follow last: no receiver
// can see that one); multi lists the messages sent in fragments, as
// seq:datagrams. An empty list is "-".
func WriteSent(w io.Writer, sent []HostSent) error {
	bw := bufio.NewWriter(w)
	var b []byte
	for _, h := range sent {
		b = append(b[:0], h.Name...)
		b = append(b, " first="...)
		b = strconv.AppendUint(b, h.First, 10)
		b = append(b, " last="...)
		b = strconv.AppendUint(b, h.Last, 10)
		b = append(b, " skipped="...)
		if len(h.Skipped) == 0 {
			b = append(b, '-')
		}
		for i, s := range h.Skipped {
			if i > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendUint(b, s, 10)
		}
		b = append(b, " multi="...)
		if len(h.Multi) == 0 {
			b = append(b, '-')
		}
		for i, m := range h.Multi {
			if i > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendUint(b, m.Seq, 10)
			b = append(b, ':')
			b = strconv.AppendInt(b, int64(m.Datagrams), 10)
		}
		b = append(b, '\n')
		if _, err := bw.Write(b); err != nil {
			return err
		}
	}
	return bw.Flush()
}
