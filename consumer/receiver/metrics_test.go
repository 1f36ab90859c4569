package receiver

import (
	"context"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	metricpb "go.opentelemetry.io/proto/otlp/metrics/v1"
)

// sumOf returns the value of the counter name with attribute key=val in the
// last export that carries it, and whether it was found.
func sumOf(rms []*metricpb.ResourceMetrics, name, key, val string) (int64, bool) {
	var v int64
	found := false
	for _, rm := range rms {
		for _, sm := range rm.GetScopeMetrics() {
			for _, m := range sm.GetMetrics() {
				if m.GetName() != name {
					continue
				}
				for _, dp := range m.GetSum().GetDataPoints() {
					for _, kv := range dp.GetAttributes() {
						if kv.GetKey() == key && kv.GetValue().GetStringValue() == val {
							v, found = dp.GetAsInt(), true
						}
					}
				}
			}
		}
	}
	return v, found
}

func TestMetricsService(t *testing.T) {
	tests := []struct {
		name string
		adds []int64
		want int64
	}{
		{name: "one export", adds: []int64{3}, want: 3},
		{name: "cumulative over exports", adds: []int64{1, 2, 4}, want: 7},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := startReceiver(t)
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			defer cancel()
			exp, err := otlpmetricgrpc.New(ctx, otlpmetricgrpc.WithInsecure(), otlpmetricgrpc.WithEndpoint(r.Addr()))
			if err != nil {
				t.Fatalf("otlpmetricgrpc.New: %v", err)
			}
			// A long interval: only ForceFlush exports, so the test decides
			// when data points leave.
			mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewPeriodicReader(exp, sdkmetric.WithInterval(time.Hour))))
			t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
			c, err := mp.Meter("test").Int64Counter("test.count")
			if err != nil {
				t.Fatalf("Int64Counter: %v", err)
			}
			var sum int64
			for _, n := range tt.adds {
				c.Add(ctx, n, metric.WithAttributes(attribute.String("k", "v")))
				sum += n
				if err := mp.ForceFlush(ctx); err != nil {
					t.Fatalf("ForceFlush: %v", err)
				}
				want := sum
				if err := r.WaitMetrics(ctx, func(rms []*metricpb.ResourceMetrics) bool {
					got, ok := sumOf(rms, "test.count", "k", "v")
					return ok && got == want
				}); err != nil {
					t.Fatalf("WaitMetrics: %v", err)
				}
			}
			if got, _ := sumOf(r.Metrics(), "test.count", "k", "v"); got != tt.want {
				t.Errorf("test.count = %d, want %d", got, tt.want)
			}
			if got := len(r.Metrics()); got != len(tt.adds) {
				t.Errorf("received %d resource metrics, want one per flush (%d)", got, len(tt.adds))
			}
			if r.Count() != 0 {
				t.Errorf("Count = %d spans after metrics only, want 0", r.Count())
			}
		})
	}
}

func TestWaitMetricsDeadline(t *testing.T) {
	r := startReceiver(t)
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	calls := 0
	err := r.WaitMetrics(ctx, func([]*metricpb.ResourceMetrics) bool { calls++; return false })
	if err == nil {
		t.Fatal("WaitMetrics returned nil with nothing received")
	}
	if calls != 1 {
		t.Errorf("done called %d times with no export, want 1", calls)
	}
}
