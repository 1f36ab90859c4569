package consumer

import (
	"context"
	"fmt"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
)

// metrics are the consumer's own instruments. Attributes are low-cardinality:
// topic, partition, reason, kind.
type metrics struct {
	records      metric.Int64Counter
	bytes        metric.Int64Counter
	rejected     metric.Int64Counter
	ignored      metric.Int64Counter
	anomalies    metric.Int64Counter
	dlq          metric.Int64Counter
	dlqFailed    metric.Int64Counter
	spans        metric.Int64Counter
	exportFailed metric.Int64Counter
	// spansRejected counts spans the endpoint refused for good.
	spansRejected metric.Int64Counter
	rebalances    metric.Int64Counter
	commits       metric.Int64Counter
	snapshots     metric.Int64Counter
	fallbacks     metric.Int64Counter
	openSessions  metric.Int64Gauge
	committed     metric.Int64Gauge
	lag           metric.Int64Gauge
}

func newMetrics(mp metric.MeterProvider) (*metrics, error) {
	if mp == nil {
		mp = noop.NewMeterProvider()
	}
	m := mp.Meter("github.com/sessiontrace/sessiontrace/consumer")
	var errs []error
	counter := func(name, unit, desc string) metric.Int64Counter {
		c, err := m.Int64Counter(name, metric.WithUnit(unit), metric.WithDescription(desc))
		errs = append(errs, err)
		return c
	}
	gauge := func(name, unit, desc string) metric.Int64Gauge {
		g, err := m.Int64Gauge(name, metric.WithUnit(unit), metric.WithDescription(desc))
		errs = append(errs, err)
		return g
	}
	out := &metrics{
		records:      counter("sessiontrace.records", "{record}", "Records consumed."),
		bytes:        counter("sessiontrace.record.bytes", "By", "Bytes of record values consumed."),
		rejected:     counter("sessiontrace.records.rejected", "{record}", "Records sent to the dead-letter topic, by reason: failed to decode or validate, ts too far from the record's timestamp, duplicate or out-of-phase events, spans the OTLP endpoint refused."),
		ignored:      counter("sessiontrace.records.ignored", "{record}", "Records skipped because the mapping's type.ignore lists their event name; not dead-lettered."),
		anomalies:    counter("sessiontrace.events.anomalies", "{event}", "Events applied with an anomaly (unknown session, clamped timestamp, superseded session...), by kind."),
		dlq:          counter("sessiontrace.dlq.records", "{record}", "Records written to the dead-letter topic, by reason."),
		dlqFailed:    counter("sessiontrace.dlq.failures", "{record}", "Dead-letter write attempts that failed and are retried (or written truncated, when too large), by reason and error."),
		spans:        counter("sessiontrace.spans.exported", "{span}", "Spans accepted by the OTLP endpoint."),
		exportFailed: counter("sessiontrace.spans.export_failures", "{span}", "Spans in export attempts that failed and will be retried."),
		spansRejected: counter("sessiontrace.spans.rejected", "{span}",
			"Spans the OTLP endpoint refused for good and that are not sent again: rejected in a partial success, or refused on their own (InvalidArgument, too large), by reason."),
		rebalances: counter("sessiontrace.rebalances", "{partition}", "Partitions assigned, revoked or lost, by kind."),
		commits:    counter("sessiontrace.commits", "{commit}", "Offset commits, by result."),
		snapshots:  counter("sessiontrace.snapshots", "{snapshot}", "Snapshots of a partition's open sessions written to the snapshot topic, by result."),
		fallbacks: counter("sessiontrace.snapshots.fallbacks", "{partition}",
			"Partitions whose commit named a snapshot that was missing or corrupt: they replayed from the oldest record the topic still holds instead."),
		openSessions: gauge("sessiontrace.sessions.open", "{session}", "Open sessions per partition."),
		committed:    gauge("sessiontrace.commit.offset", "{offset}", "Last committed offset per partition."),
		lag:          gauge("sessiontrace.commit.lag", "{record}", "High watermark minus committed offset per partition."),
	}
	for _, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("create metric instruments: %w", err)
		}
	}
	return out, nil
}

func partitionAttrs(topic string, partition int32) metric.MeasurementOption {
	return metric.WithAttributes(attribute.String("topic", topic), attribute.Int("partition", int(partition)))
}

func (m *metrics) add(c metric.Int64Counter, n int64, kv ...attribute.KeyValue) {
	c.Add(context.Background(), n, metric.WithAttributes(kv...))
}
