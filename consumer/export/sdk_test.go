package export

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// flakyExporter fails its first failures calls. It stands in for the inner
// exporter only in these unit tests of the retry wrapper; the consumer tests
// export over real OTLP gRPC.
type flakyExporter struct {
	mu       sync.Mutex
	failures int
	calls    int
	got      int
	called   chan struct{} // receives once per call when set
}

func (f *flakyExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.called != nil {
		select {
		case f.called <- struct{}{}:
		default:
		}
	}
	if f.calls <= f.failures {
		return errors.New("collector unavailable")
	}
	f.got += len(spans)
	return nil
}

func (f *flakyExporter) Shutdown(context.Context) error { return nil }

func spans(n int) []sdktrace.ReadOnlySpan {
	stubs := make(tracetest.SpanStubs, n)
	for i := range stubs {
		stubs[i].Name = "s"
	}
	return stubs.Snapshots()
}

func TestAckExporterAcknowledgesOnlyAcceptedBatches(t *testing.T) {
	tests := []struct {
		name      string
		failures  int
		abort     bool
		wantErr   bool
		wantAcked int64
	}{
		{"accepted at once", 0, false, false, 3},
		{"accepted after retries", 4, false, false, 3},
		{"aborted while failing", 1 << 30, true, true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inner := &flakyExporter{failures: tt.failures, called: make(chan struct{}, 1)}
			var results []error
			e := newAckExporter(inner, deliverer{initial: time.Millisecond, max: 4 * time.Millisecond, obs: Observer{Result: func(_ int, _ Class, err error) { results = append(results, err) }}})
			if tt.abort {
				go func() {
					// Abort once the wrapper has proven it keeps retrying.
					for range 3 {
						<-inner.called
					}
					e.abort()
				}()
			}
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			err := e.ExportSpans(ctx, spans(3))
			if (err != nil) != tt.wantErr {
				t.Fatalf("ExportSpans() = %v, want error %v", err, tt.wantErr)
			}
			if got := e.acked.Load(); got != tt.wantAcked {
				t.Fatalf("acked = %d, want %d", got, tt.wantAcked)
			}
			if !tt.abort && len(results) != tt.failures+1 {
				t.Fatalf("%d export attempts reported, want %d", len(results), tt.failures+1)
			}
		})
	}
}

// TestSDKLaneNeverAcknowledgesPastADroppedBatch ends a Flush while the
// endpoint is down, which makes the SDK's batch processor drop the batch it
// was exporting; once the endpoint is back, later spans go out. The
// acknowledged count must still be a prefix of the emitted spans that
// arrived: the lane is aborted rather than acknowledging later spans past
// the lost ones.
func TestSDKLaneNeverAcknowledgesPastADroppedBatch(t *testing.T) {
	spans := testSpans(t, 10, 1)
	half := len(spans) / 2
	rcv := startReceiver(t)
	rcv.Stop()
	out := exporter(t, rcv.Addr())
	log := newOutcomeLog()
	l := NewSDK(out.exp, Config{QueueSize: 1024, BatchSize: 1024, BatchTimeout: time.Hour,
		RetryInitial: time.Millisecond, RetryMax: 5 * time.Millisecond, Observer: log.observer()})
	t.Cleanup(func() { _ = l.Close(context.Background()) })

	for i := range spans[:half] {
		if err := l.Emit(t.Context(), &spans[i]); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(t.Context())
	flushed := make(chan error, 1)
	go func() { flushed <- l.Flush(ctx) }()
	log.waitClass(t, Retryable, 3) // the batch is being exported, and failing
	cancel()
	if err := <-flushed; err == nil {
		t.Fatal("flush succeeded while the endpoint was down")
	}

	if err := rcv.Restart(); err != nil {
		t.Fatal(err)
	}
	for i := range spans[half:] {
		_ = l.Emit(t.Context(), &spans[half+i]) // an aborted lane refuses them: fine
	}
	fctx, fcancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer fcancel()
	_ = l.Flush(fctx)

	got := map[[8]byte]bool{}
	for _, s := range rcv.Spans() {
		got[s.SpanID] = true
	}
	acked := l.Acked()
	for i := range acked {
		if !got[spans[i].SpanID] {
			t.Fatalf("%d spans acknowledged, but span %d of them never arrived (%d received)", acked, i, rcv.Count())
		}
	}
}
