package consumer

import (
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/sessiontrace/sessiontrace/consumer/kafkatest"
	"github.com/sessiontrace/sessiontrace/consumer/sessionmetrics"
)

// TestSessionMetricsCountEachSessionOnce hands a partition from one consumer
// to the next mid-stream, with sessions open across the hand-over, and
// checks that the two consumers' session metrics add up to exactly the
// sessions and phases of the reference run. The second consumer replays the
// open sessions from the committed offset and re-derives spans the first one
// exported; counting those again would break the sums.
func TestSessionMetricsCountEachSessionOnce(t *testing.T) {
	kafkatest.Each(t, func(t *testing.T, brokers []string) {
		s := buildScenario(t, scenarioSpec{partitions: 2, players: 60, openAtEnd: 4, matches: 2})
		first, rest := s.split(0.5)
		topic := kafkatest.Topic(t, brokers, s.partitions)
		group := kafkatest.Group(t)
		rcv := startReceiver(t)
		exp := exporter(t, rcv.Addr())

		var sessions, phases uint64
		run := func(part *scenario, wantSpans int) {
			t.Helper()
			reader := sdkmetric.NewManualReader()
			rec, err := sessionmetrics.New(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)), sessionmetrics.DefaultConfig())
			if err != nil {
				t.Fatal(err)
			}
			part.produce(t, brokers, topic)
			r := startConsumer(t, testConfig(brokers, topic, group), exp, WithSessionMetrics(rec))
			waitSpans(t, rcv, wantSpans, 60*time.Second)
			r.shutdown(t) // drains and commits, with the exported-through mark
			var rm metricdata.ResourceMetrics
			if err := reader.Collect(t.Context(), &rm); err != nil {
				t.Fatal(err)
			}
			sessions += histogramCount(rm, sessionmetrics.MetricSessionDuration)
			phases += histogramCount(rm, sessionmetrics.MetricPhaseDuration)
		}
		run(first, len(first.spans))
		run(rest, len(s.spans))

		if dups := s.check(t, rcv.Spans()); dups != 0 {
			t.Errorf("%d duplicate spans across a graceful hand-over", dups)
		}
		if want := uint64(s.roots); sessions != want {
			t.Errorf("sessions counted = %d, want %d (one per root span)", sessions, want)
		}
		if want := uint64(len(s.spans) - s.roots); phases != want {
			t.Errorf("phases counted = %d, want %d (one per phase span)", phases, want)
		}
	})
}

func histogramCount(rm metricdata.ResourceMetrics, name string) uint64 {
	var n uint64
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if h, ok := m.Data.(metricdata.Histogram[float64]); ok && m.Name == name {
				for _, dp := range h.DataPoints {
					n += dp.Count
				}
			}
		}
	}
	return n
}
