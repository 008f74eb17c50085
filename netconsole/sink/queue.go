package sink

import (
	"sync"
	"sync/atomic"
)

// DefaultQueueSize is a Queue's capacity when its Size is zero.
const DefaultQueueSize = 10000

// Queue is the bounded queue between the receive goroutines, which must
// never wait for a sink, and the sink's sender: Put never blocks, and what
// does not fit is dropped and counted. The zero value is ready to use.
type Queue struct {
	// Size is the capacity in messages; zero means DefaultQueueSize. It
	// must not change after the first use.
	Size int

	once              sync.Once
	ch                chan []byte
	enqueued, dropped atomic.Uint64
}

func (q *Queue) init() {
	q.once.Do(func() {
		n := q.Size
		if n <= 0 {
			n = DefaultQueueSize
		}
		q.ch = make(chan []byte, n)
	})
}

// Put queues an encoded message, or counts it as dropped if the queue is
// full, and reports whether it was queued.
func (q *Queue) Put(b []byte) bool {
	q.init()
	select {
	case q.ch <- b:
		q.enqueued.Add(1)
		return true
	default:
		q.dropped.Add(1)
		return false
	}
}

// C is the channel the sender takes messages from.
func (q *Queue) C() <-chan []byte {
	q.init()
	return q.ch
}

// Drop counts n messages the sender gave up on (a remote that refused
// them, or messages still held when it stopped).
func (q *Queue) Drop(n int) { q.dropped.Add(uint64(n)) }

// Counts returns the messages queued and dropped so far, and how many wait
// now.
func (q *Queue) Counts() (enqueued, dropped uint64, waiting int) {
	q.init()
	return q.enqueued.Load(), q.dropped.Load(), len(q.ch)
}
