package consumer

import (
	"sync/atomic"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/trace"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc/codes"

	"github.com/sessiontrace/sessiontrace/consumer/kafkatest"
	"github.com/sessiontrace/sessiontrace/consumer/receiver"
)

// TestExportRefusalsNeverWedgeAPartition has the endpoint answer some
// requests with a partial success and refuse, for good, every request that
// holds one poisoned span (InvalidArgument). Every other span must arrive,
// the poisoned one never, and the commit must reach the end of every
// partition: the partial successes are not resent and the refused span is
// isolated and settled instead of retried forever.
func TestExportRefusalsNeverWedgeAPartition(t *testing.T) {
	eachPath(t, func(t *testing.T, brokers []string, path string) {
		s := buildScenario(t, scenarioSpec{partitions: 2, players: 40, openAtEnd: 2, matches: 2})
		topic := kafkatest.Topic(t, brokers, s.partitions)
		group := kafkatest.Group(t)
		rcv := startReceiver(t)
		var poisoned trace.SpanID
		for id, sp := range s.spans {
			if sp.ParentSpanID.IsValid() && (!poisoned.IsValid() || id.String() < poisoned.String()) {
				poisoned = id // the same span on every run: the least phase span ID
			}
		}
		var requests, partials atomic.Int64
		rcv.Respond(func(req *coltracepb.ExportTraceServiceRequest) receiver.Answer {
			for _, rs := range req.GetResourceSpans() {
				for _, ss := range rs.GetScopeSpans() {
					for _, sp := range ss.GetSpans() {
						if trace.SpanID(sp.GetSpanId()) == poisoned {
							return receiver.Answer{Code: codes.InvalidArgument, Message: "poisoned span"}
						}
					}
				}
			}
			if requests.Add(1)%3 == 0 {
				partials.Add(1)
				return receiver.Answer{Rejected: 1, Message: "one span over the limit"}
			}
			return receiver.Answer{}
		})
		s.produce(t, brokers, topic)
		reader := sdkmetric.NewManualReader()
		r := startConsumer(t, pathConfig(brokers, topic, group, path), exporter(t, rcv.Addr()),
			WithMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))))
		waitSpans(t, rcv, len(s.spans)-1, 60*time.Second)
		waitCommitted(t, brokers, group, topic, s.endOffsets(t), 30*time.Second)
		r.shutdown(t)

		var rm metricdata.ResourceMetrics
		if err := reader.Collect(t.Context(), &rm); err != nil {
			t.Fatal(err)
		}
		rejected := map[string]int64{}
		for _, sm := range rm.ScopeMetrics {
			for _, m := range sm.Metrics {
				if sum, ok := m.Data.(metricdata.Sum[int64]); ok && m.Name == "sessiontrace.spans.rejected" {
					for _, dp := range sum.DataPoints {
						reason, _ := dp.Attributes.Value("reason")
						rejected[reason.AsString()] += dp.Value
					}
				}
			}
		}
		if rejected["export_rejected"] != 1 || rejected["partial_success"] != partials.Load() || partials.Load() == 0 {
			t.Errorf("sessiontrace.spans.rejected by reason %v, want export_rejected 1 and partial_success %d", rejected, partials.Load())
		}

		got := map[trace.SpanID]int{}
		for _, sp := range rcv.Spans() {
			got[sp.SpanID]++
		}
		for id, sp := range s.spans {
			switch {
			case id == poisoned && got[id] != 0:
				t.Errorf("the poisoned span arrived %d times", got[id])
			case id != poisoned && got[id] != 1:
				t.Errorf("span %s %q arrived %d times, want once", id, sp.Name, got[id])
			}
		}
	})
}
