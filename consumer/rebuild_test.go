package consumer

import (
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/sessiontrace/sessiontrace/consumer/kafkatest"
)

// TestRebuildCountsNoAnomalies hands a partition over gracefully in the
// middle of sessions that span the commit, and consumes the rest with a new
// member. The new member replays from the committed offset and meets the
// tails of sessions that began below it; they look like unknown sessions
// and out-of-phase events, although the first member saw them whole and
// the scenario has no anomaly at all. Rebuilding below the mark must count
// none of them.
func TestRebuildCountsNoAnomalies(t *testing.T) {
	kafkatest.Each(t, func(t *testing.T, brokers []string) {
		s := buildScenario(t, scenarioSpec{partitions: 2, players: 60, openAtEnd: 4, matches: 2, stagger: time.Minute})
		first, rest := s.split(0.5)
		topic := kafkatest.Topic(t, brokers, s.partitions)
		group := kafkatest.Group(t)
		rcv := startReceiver(t)
		exp := exporter(t, rcv.Addr())

		run := func(part *scenario, wantSpans int, commits map[int32]int64) (anomalies map[string]int64, records int64) {
			t.Helper()
			reader := sdkmetric.NewManualReader()
			part.produce(t, brokers, topic)
			r := startConsumer(t, testConfig(brokers, topic, group), exp, WithMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))))
			waitSpans(t, rcv, wantSpans, 60*time.Second)
			waitCommitted(t, brokers, group, topic, commits, 30*time.Second)
			r.shutdown(t)
			var rm metricdata.ResourceMetrics
			if err := reader.Collect(t.Context(), &rm); err != nil {
				t.Fatal(err)
			}
			return sumByAttr(rm, "sessiontrace.events.anomalies", "kind"), sumByAttr(rm, "sessiontrace.records", "")[""]
		}
		atHandover := first.endOffsets(t)
		for p, off := range atHandover {
			if off == 0 {
				t.Fatalf("partition %d commits offset 0 at the hand-over: no session spans the commit", p)
			}
		}
		if got, _ := run(first, len(first.spans), atHandover); len(got) != 0 {
			t.Errorf("first member counted anomalies %v in a scenario without any", got)
		}
		got, records := run(rest, len(s.spans), s.endOffsets(t))
		committed, below := 0, 0
		for p, recs := range s.records {
			committed += len(first.records[p]) - int(atHandover[p])
			below += len(first.records[p])
			records -= int64(len(recs) - len(first.records[p]))
		}
		if committed == 0 {
			t.Fatal("no session spans the commit: the scenario tests nothing")
		}
		// The dedup window (65536 events) covers every record, so the new
		// member re-reads them all: those below the committed offset to
		// refill the window, the rest to rebuild the sessions.
		if records != int64(below) {
			t.Fatalf("second member rebuilt %d records, want the %d below the mark", records, below)
		}
		if len(got) != 0 {
			t.Errorf("rebuilding %d records below the mark counted anomalies %v", below, got)
		}
		if dups := s.check(t, rcv.Spans()); dups != 0 {
			t.Errorf("%d duplicate spans across a graceful hand-over", dups)
		}
	})
}

// sumByAttr sums an Int64 counter's data points by the value of attribute
// key ("" sums them all under "").
func sumByAttr(rm metricdata.ResourceMetrics, name, key string) map[string]int64 {
	out := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			sum, ok := m.Data.(metricdata.Sum[int64])
			if !ok || m.Name != name {
				continue
			}
			for _, dp := range sum.DataPoints {
				v := ""
				if key != "" {
					val, _ := dp.Attributes.Value(attribute.Key(key))
					v = val.AsString()
				}
				if dp.Value != 0 {
					out[v] += dp.Value
				}
			}
		}
	}
	return out
}
