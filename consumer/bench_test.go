package consumer

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sessiontrace/sessiontrace/consumer/kafkatest"
)

// BenchmarkEndToEnd measures, side by side on the same broker and the same
// records, a bare franz-go group consume loop (no decoding, no processing)
// and the full pipeline: group consumer, decode, state machine, SDK batch
// processor and OTLP gRPC export to a receiver on 127.0.0.1, with commits.
// Each iteration consumes the whole topic with a fresh group. The broker is
// SESSIONTRACE_TEST_BROKERS when set, the in-process kfake cluster otherwise.
//
//	go test ./consumer -run '^$' -bench EndToEnd -benchtime 3x
func BenchmarkEndToEnd(b *testing.B) {
	backend := "kfake"
	if os.Getenv(kafkatest.BrokersEnv) != "" {
		backend = "external"
	}
	var brokers []string
	for _, be := range kafkatest.Backends() {
		if be.Name == backend {
			brokers = be.Start(b)
		}
	}
	s := buildScenario(b, scenarioSpec{partitions: 4, players: 12000, matches: 2})
	total := 0
	for _, recs := range s.records {
		total += len(recs)
	}
	topic := kafkatest.Topic(b, brokers, s.partitions)
	s.produce(b, brokers, topic)
	b.Logf("%s broker, %d records, %d spans per pass", backend, total, len(s.spans))

	b.Run("bare_franz_go", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumerGroup(kafkatest.Group(b)),
				kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
			if err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(b.Context(), 2*time.Minute)
			n := 0
			for n < total {
				fs := cl.PollFetches(ctx)
				if ctx.Err() != nil {
					b.Fatalf("consumed %d of %d records", n, total)
				}
				n += fs.NumRecords()
			}
			cancel()
			cl.Close()
		}
		b.ReportMetric(float64(total)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
	})

	b.Run("pipeline_otlp", func(b *testing.B) {
		b.ReportAllocs()
		rcv := startReceiver(b)
		rcv.KeepSpans(false) // count only: the receiver is not what is measured
		exp := exporter(b, rcv.Addr())
		want := 0
		for b.Loop() {
			want += len(s.spans)
			cfg := testConfig(brokers, topic, kafkatest.Group(b))
			cfg.ExportBatchSize = DefaultExportBatchSize
			cfg.ExportQueueSize = DefaultExportQueueSize
			cfg.ExportBatchTimeout = 200 * time.Millisecond
			r := startConsumer(b, cfg, exp)
			waitSpans(b, rcv, want, 2*time.Minute)
			r.shutdown(b)
		}
		b.ReportMetric(float64(total)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
		b.ReportMetric(float64(len(s.spans))*float64(b.N)/b.Elapsed().Seconds(), "spans/s")
	})
}
