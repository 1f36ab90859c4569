package rekey

import (
	"context"
	"fmt"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
)

// metrics are the Rekeyer's instruments. Records out and dead-lettered are
// counted when their transaction commits, so they count what readers see.
type metrics struct {
	in           metric.Int64Counter
	out          metric.Int64Counter
	deadLettered metric.Int64Counter
	transactions metric.Int64Counter
	rebalances   metric.Int64Counter
	owned        metric.Int64Gauge
}

func newMetrics(mp metric.MeterProvider) (*metrics, error) {
	if mp == nil {
		mp = noop.NewMeterProvider()
	}
	m := mp.Meter("github.com/sessiontrace/sessiontrace/consumer/rekey")
	var errs []error
	counter := func(name, unit, desc string) metric.Int64Counter {
		c, err := m.Int64Counter(name, metric.WithUnit(unit), metric.WithDescription(desc))
		errs = append(errs, err)
		return c
	}
	g, err := m.Int64Gauge("sessiontrace.rekey.partitions", metric.WithUnit("{partition}"),
		metric.WithDescription("Source partitions this member owns."))
	errs = append(errs, err)
	out := &metrics{
		in: counter("sessiontrace.rekey.records.in", "{record}",
			"Records read from the source topics, by topic; a record read again after an aborted transaction counts again."),
		out: counter("sessiontrace.rekey.records.out", "{record}",
			"Records written to the output topic keyed by player, in committed transactions."),
		deadLettered: counter("sessiontrace.rekey.records.dead_lettered", "{record}",
			"Records whose player could not be found, written to the dead-letter topic in committed transactions, by reason."),
		transactions: counter("sessiontrace.rekey.transactions", "{transaction}",
			"Transactions ended, by outcome: committed, aborted (a rebalance or a failed write; the records are read again) or failed (the member stops)."),
		rebalances: counter("sessiontrace.rekey.rebalances", "{partition}", "Partitions assigned, revoked or lost, by kind."),
		owned:      g,
	}
	for _, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("rekey: create metric instruments: %w", err)
		}
	}
	return out, nil
}

func (m *metrics) add(c metric.Int64Counter, n int64, kv ...attribute.KeyValue) {
	if n == 0 {
		return
	}
	c.Add(context.Background(), n, metric.WithAttributes(kv...))
}
