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
