package agent

import (
	"bytes"
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/lastgasp/lastgasp/netconsole/nexthop"
)

// TestResolveEarly: the first answer is returned while the resolver still
// lingers; the socket is closed only when the resolver is done; without an
// answer the resolver's error comes back.
func TestResolveEarly(t *testing.T) {
	macA := net.HardwareAddr{2, 0, 0, 0, 0, 0xa}
	errNone := errors.New("no answer")
	for _, tt := range []struct {
		name    string
		answer  net.HardwareAddr // passed to OnAnswer, nil for none
		linger  time.Duration    // how long run goes on after answering
		runErr  error
		want    net.HardwareAddr
		wantErr error
	}{
		{name: "answer then linger", answer: macA, linger: 300 * time.Millisecond, want: macA},
		{name: "answer, no linger", answer: macA, want: macA},
		{name: "no answer", runErr: errNone, wantErr: errNone},
	} {
		t.Run(tt.name, func(t *testing.T) {
			runDone := make(chan struct{})
			closed := make(chan struct{})
			run := func(ctx context.Context, r nexthop.Resolver) (net.HardwareAddr, error) {
				defer close(runDone)
				if tt.answer == nil {
					return nil, tt.runErr
				}
				r.OnAnswer(tt.answer)
				select {
				case <-time.After(tt.linger):
				case <-ctx.Done():
					t.Error("the linger was cut short by the caller going on")
				}
				return tt.answer, nil
			}
			closeFn := func() error {
				select {
				case <-runDone:
				default:
					t.Error("socket closed while the resolver was still running")
				}
				close(closed)
				return nil
			}
			t0 := time.Now()
			got, err := resolveEarly(context.Background(), 2*time.Second, run, closeFn, nexthop.Resolver{})
			if !errors.Is(err, tt.wantErr) || !bytes.Equal(got, tt.want) {
				t.Fatalf("resolveEarly = %v, %v; want %v, %v", got, err, tt.want, tt.wantErr)
			}
			if tt.linger > 0 {
				if d := time.Since(t0); d >= tt.linger {
					t.Errorf("returned after %v: it waited for the linger (%v)", d, tt.linger)
				}
			}
			select {
			case <-closed:
			case <-time.After(3 * time.Second):
				t.Fatal("socket never closed")
			}
		})
	}
}

// TestResolveEarlyCancelled: a cancelled caller gets ctx's error at once.
func TestResolveEarlyCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	run := func(ctx context.Context, r nexthop.Resolver) (net.HardwareAddr, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	if _, err := resolveEarly(ctx, time.Second, run, func() error { return nil }, nexthop.Resolver{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}
