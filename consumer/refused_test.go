package consumer

import (
	"strconv"
	"strings"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc/codes"

	"github.com/sessiontrace/sessiontrace/consumer/kafkatest"
	"github.com/sessiontrace/sessiontrace/consumer/receiver"
	"github.com/sessiontrace/sessiontrace/lifecycle"
)

// carriesPlayer reports whether an export request holds a span of player.
func carriesPlayer(req *coltracepb.ExportTraceServiceRequest, player string) bool {
	for _, rs := range req.ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			for _, sp := range ss.Spans {
				for _, kv := range sp.Attributes {
					if kv.Key == string(lifecycle.KeyPlayerID) && kv.Value.GetStringValue() == player {
						return true
					}
				}
			}
		}
	}
	return false
}

// TestRefusedSpansDeadLetterTheirRecords has the endpoint refuse, as
// InvalidArgument, every request that carries a span of one player (a span
// over a collector's limits, say). The lane isolates those spans; every
// other span must arrive, the records that closed the refused spans must be
// in the dead-letter topic as export_rejected, and the commit must reach
// the end only once they are: nothing is retried forever, nothing is lost.
func TestRefusedSpansDeadLetterTheirRecords(t *testing.T) {
	eachPath(t, func(t *testing.T, brokers []string, path string) {
		s := buildScenario(t, scenarioSpec{partitions: 1, players: 20, matches: 1})
		const refused = "player-000007"
		want := map[int64]bool{} // offsets of the records whose spans are refused
		keep := 0
		for id, sp := range s.spans {
			if spanPlayer(sp) == refused {
				want[s.closedBy[id]] = true
			} else {
				keep++
			}
		}
		topic := kafkatest.Topic(t, brokers, 1)
		group := kafkatest.Group(t)
		rcv := startReceiver(t)
		rcv.Respond(func(req *coltracepb.ExportTraceServiceRequest) receiver.Answer {
			if carriesPlayer(req, refused) {
				return receiver.Answer{Code: codes.InvalidArgument, Message: "span exceeds the collector's limits"}
			}
			return receiver.Answer{}
		})
		s.produce(t, brokers, topic)
		r := startConsumer(t, pathConfig(brokers, topic, group, path), exporter(t, rcv.Addr()))
		dead := consumeAll(t, brokers, topic+".dlq", len(want))
		waitSpans(t, rcv, keep, 60*time.Second)
		waitCommitted(t, brokers, group, topic, s.endOffsets(t), 30*time.Second)
		if ok, why := r.c.Readiness(); !ok {
			t.Errorf("not ready after refused spans (data, not configuration): %s", why)
		}
		r.shutdown(t)
		for _, d := range dead {
			off, _ := strconv.ParseInt(header(d, HeaderSourceOffset), 10, 64)
			if !want[off] || header(d, HeaderReason) != "export_rejected" || !strings.Contains(header(d, HeaderDetail), "collector's limits") {
				t.Errorf("dead letter of offset %d with reason %q detail %q, want export_rejected of one of %v", off,
					header(d, HeaderReason), header(d, HeaderDetail), want)
			}
		}
		for _, sp := range rcv.Spans() {
			if carriesAttr(sp, refused) {
				t.Errorf("span %s of the refused player reached the endpoint", sp.Name)
			}
		}
		if got := rcv.Count(); got < keep {
			t.Errorf("%d spans received, want the %d not refused", got, keep)
		}
	})
}

// TestEndpointRefusingTheConfigurationIsRetriedNotDropped has the endpoint
// answer Unauthenticated (a rotated API key) to everything: nothing may be
// acknowledged or committed, readiness must say why, and once the endpoint
// accepts again every span arrives.
func TestEndpointRefusingTheConfigurationIsRetriedNotDropped(t *testing.T) {
	eachPath(t, func(t *testing.T, brokers []string, path string) {
		s := buildScenario(t, scenarioSpec{partitions: 1, players: 10, matches: 1})
		topic := kafkatest.Topic(t, brokers, 1)
		group := kafkatest.Group(t)
		rcv := startReceiver(t)
		rcv.Respond(func(*coltracepb.ExportTraceServiceRequest) receiver.Answer {
			return receiver.Answer{Code: codes.Unauthenticated, Message: "invalid API key"}
		})
		s.produce(t, brokers, topic)
		r := startConsumer(t, pathConfig(brokers, topic, group, path), exporter(t, rcv.Addr()))
		eventually(t, 30*time.Second, "not ready while the endpoint refuses the configuration", func() bool {
			ok, why := r.c.Readiness()
			return !ok && strings.Contains(why, "invalid API key")
		})
		for p, off := range committedOffsets(t, brokers, group, topic) {
			if off > 0 {
				t.Errorf("partition %d committed to %d while every export was refused", p, off)
			}
		}
		rcv.Respond(nil)
		waitSpans(t, rcv, len(s.spans), 60*time.Second)
		waitCommitted(t, brokers, group, topic, s.endOffsets(t), 30*time.Second)
		eventually(t, 10*time.Second, "ready once the endpoint accepts again", func() bool {
			ok, _ := r.c.Readiness()
			return ok
		})
		r.shutdown(t)
		if dups := s.check(t, rcv.Spans()); dups != 0 {
			t.Errorf("%d duplicates: a refused request must not count as delivered", dups)
		}
	})
}

func spanPlayer(sp lifecycle.Span) string {
	for _, kv := range sp.Attrs {
		if kv.Key == lifecycle.KeyPlayerID {
			return kv.Value.AsString()
		}
	}
	return ""
}

func carriesAttr(sp receiver.Span, player string) bool {
	return sp.Attrs[string(lifecycle.KeyPlayerID)] == player
}
