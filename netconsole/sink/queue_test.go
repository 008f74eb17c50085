package sink

import "testing"

func TestQueue(t *testing.T) {
	q := &Queue{Size: 2}
	for i, want := range []bool{true, true, false, false} {
		if got := q.Put([]byte{byte(i)}); got != want {
			t.Errorf("Put #%d = %v, want %v", i, got, want)
		}
	}
	if b := <-q.C(); b[0] != 0 {
		t.Errorf("first out = %v, want the first in", b)
	}
	q.Drop(1)
	if e, d, w := q.Counts(); e != 2 || d != 3 || w != 1 {
		t.Errorf("Counts = %d queued, %d dropped, %d waiting; want 2, 3, 1", e, d, w)
	}
}
