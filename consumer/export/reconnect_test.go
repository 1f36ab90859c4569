package export

import (
	"context"
	"testing"
	"time"
)

// TestExportsResumeWithinRetryMax keeps the endpoint (a real receiver on a
// fixed 127.0.0.1 port) down long enough for gRPC's default reconnect
// backoff (1s growing by 1.6 up to 120s) to reach several seconds, then
// brings it back: the first accepted export must follow within a few
// retryMax, because ClientOptions bounds gRPC's backoff by the lane's.
func TestExportsResumeWithinRetryMax(t *testing.T) {
	if testing.Short() {
		t.Skip("keeps an endpoint down for seconds")
	}
	const (
		retryMax = 250 * time.Millisecond
		downtime = 6 * time.Second
		// Our retry waits at most retryMax, gRPC's reconnect at most
		// retryMax plus 20% jitter; the rest is slack for a loaded machine.
		bound = 4 * retryMax
	)
	spans := testSpans(t, 2, 0)
	for _, path := range paths {
		t.Run(path.name, func(t *testing.T) {
			t.Parallel()
			rcv := startReceiver(t)
			rcv.Stop()
			out := newOut(t, rcv.Addr(), 10*time.Millisecond, retryMax)
			log := newOutcomeLog()
			l := path.lane(out, Config{QueueSize: 64, BatchSize: 64, BatchTimeout: time.Millisecond,
				RetryInitial: 10 * time.Millisecond, RetryMax: retryMax, Observer: log.observer()})
			t.Cleanup(func() { _ = l.Close(context.Background()) })
			for i := range spans {
				if err := l.Emit(t.Context(), &spans[i]); err != nil {
					t.Fatal(err)
				}
			}
			ctx, cancel := context.WithTimeout(t.Context(), downtime+30*time.Second)
			defer cancel()
			// The downtime: failed attempts for downtime since the first.
			var first time.Time
			for failures := 0; first.IsZero() || time.Since(first) < downtime; {
				select {
				case c := <-log.results:
					if c != Retryable {
						t.Fatalf("attempt classed %s while the endpoint is down", c)
					}
					if failures++; failures == 1 {
						first = time.Now()
					}
				case <-ctx.Done():
					t.Fatalf("waiting for failed attempts: %v", ctx.Err())
				}
			}
			if err := rcv.Restart(); err != nil {
				t.Fatal(err)
			}
			up := time.Now()
			for {
				select {
				case c := <-log.results:
					if c != Accepted {
						continue
					}
					took := time.Since(up)
					t.Logf("first accepted export %v after the endpoint came back", took)
					if took > bound {
						t.Errorf("first accepted export %v after the endpoint came back, want at most %v (retry_max %v)", took, bound, retryMax)
					}
					return
				case <-ctx.Done():
					t.Fatalf("no export accepted after the endpoint came back: %v", ctx.Err())
				}
			}
		})
	}
}
