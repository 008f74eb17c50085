package main

import (
	"context"
	"log"
	"sync"
	"time"

	"github.com/lastgasp/lastgasp/netconsole/forward"
	"github.com/lastgasp/lastgasp/netconsole/journal"
	"github.com/lastgasp/lastgasp/netconsole/receiver"
	"github.com/lastgasp/lastgasp/netconsole/sink"
)

// sinkDrainTime bounds how long shutdown waits for the sinks to send what
// they still hold.
const sinkDrainTime = time.Second

// sinkSet is the collector's outputs besides its store, as the flags turn
// them on (-forward, -journal).
type sinkSet struct {
	fwd     *forward.Forwarder // nil without -forward
	journal *journal.Sink      // nil without -journal

	fanout sink.Fanout
	runs   []func(context.Context) error // each sink's sender
	queued []func() int                  // what each sink still holds
	logs   []string                      // one line per sink, logged at start
}

// newSinkSet makes the sinks c asks for. None of them sends before start.
func newSinkSet(c config, logger *log.Logger) (*sinkSet, error) {
	s := &sinkSet{}
	if c.forward != "" {
		tc, err := forwardTLS(c)
		if err != nil {
			return nil, err
		}
		fwd, err := forward.New(c.forward, tc)
		if err != nil {
			return nil, err
		}
		fwd.QueueSize, fwd.Logf = c.forwardQueue, logger.Printf
		s.fwd = fwd
		s.add(fwd, fwd.Run, func() int { return fwd.Stats().Queued }, "forwarding to "+c.forward)
	}
	if c.journal != "" {
		jr, err := journal.New(c.journal)
		if err != nil {
			return nil, err
		}
		jr.QueueSize, jr.Logf = c.journalQueue, logger.Printf
		s.journal = jr
		s.add(jr, jr.Run, func() int { return jr.Stats().Queued }, "sending to systemd-journal-remote at "+jr.URL)
	}
	return s, nil
}

func (s *sinkSet) add(sk sink.Sink, run func(context.Context) error, queued func() int, logLine string) {
	s.fanout = append(s.fanout, sk)
	s.runs = append(s.runs, run)
	s.queued = append(s.queued, queued)
	s.logs = append(s.logs, logLine)
}

// forwardHook returns the receiver.Server.Forward hook that hands every
// stored message to all sinks, or nil when there are none.
func (s *sinkSet) forwardHook() func(receiver.Forwarded) {
	if len(s.fanout) == 0 {
		return nil
	}
	return forwardTo(s.fanout)
}

// forwardTo adapts a sink.Sink to receiver.Server.Forward. The Message is a
// copy of plain values, so the sink keeps nothing of the Forwarded.
func forwardTo(sk sink.Sink) func(receiver.Forwarded) {
	return func(f receiver.Forwarded) {
		sk.Send(sink.FromPacket(f.Host, f.Boot, f.Message, f.Received))
	}
}

// start runs every sink's sender. The returned stop, called once the
// receiver has stopped, gives the sinks up to sinkDrainTime to send what
// they hold, then stops them and waits for them.
func (s *sinkSet) start(logger *log.Logger) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for i, run := range s.runs {
		logger.Print(s.logs[i])
		wg.Go(func() {
			if err := run(ctx); err != nil {
				logger.Printf("%s: %v", s.logs[i], err)
			}
		})
	}
	return func() {
		deadline := time.Now().Add(sinkDrainTime)
		for time.Now().Before(deadline) && s.held() > 0 {
			time.Sleep(20 * time.Millisecond)
		}
		cancel()
		wg.Wait()
	}
}

// held is the messages all sinks still hold.
func (s *sinkSet) held() int {
	n := 0
	for _, q := range s.queued {
		n += q()
	}
	return n
}
