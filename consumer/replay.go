package consumer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"time"

	"go.opentelemetry.io/otel/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/sessiontrace/sessiontrace/consumer/export"
	"github.com/sessiontrace/sessiontrace/lifecycle"
	"github.com/sessiontrace/sessiontrace/schema"
)

// Record is one recorded Kafka record to replay.
type Record struct {
	Topic     string
	Partition int32
	Offset    int64
	Key       []byte
	Value     []byte
	// Headers are the record's headers, as a mapping may read them (and
	// every decoder reads traceparent); nil for a JSONL file of events.
	Headers []schema.Header
	// ValueTooLarge marks a record whose value was longer than the
	// decoder's max_record_bytes and was therefore not kept (a recording
	// need not hold a huge value in memory to replay it): it is rejected as
	// too_large, as the consumer rejects it, whatever Value holds.
	ValueTooLarge bool
	// Timestamp is the record's Kafka timestamp, zero when the recording
	// has none (a JSONL file of events): then the event's ts is not bounded
	// by it (Config.MaxFutureSkew, MaxPastSkew).
	Timestamp time.Time
}

// Sink receives the spans a replay finishes, in the order they finish.
type Sink interface {
	// Write takes the spans one record finished. It may block (back-pressure)
	// and must not keep spans after returning: the slice is reused.
	Write(ctx context.Context, spans []lifecycle.Span) error
	// Close flushes what is buffered and releases the sink.
	Close(ctx context.Context) error
}

// OTLPSink exports replayed spans through the same lane as the consumer, on
// the export path cfg.ExportPath names: the direct path uploads through the
// client of WithOTLPClient, the sdk path through exp (blocking batch
// processor, acknowledging exporter); the one the path needs must be given.
// Batches are cut by size only, so the same input yields the same export
// requests, byte for byte, on either path. Close waits until every span was
// accepted.
func OTLPSink(exp sdktrace.SpanExporter, cfg Config, opts ...Option) (Sink, error) {
	if err := cfg.ValidatePipeline(); err != nil {
		return nil, fmt.Errorf("replay config: %w", err)
	}
	p := &pipeline{cfg: cfg, exporter: exp, log: slog.Default()}
	for _, o := range opts {
		o.apply(p)
	}
	if err := p.check(); err != nil {
		return nil, fmt.Errorf("replay: %w", err)
	}
	m, err := newMetrics(p.mp)
	if err != nil {
		return nil, err
	}
	p.metrics, p.exportLog = m, newRateLog(p.log, 10*time.Second)
	lc := export.Config{
		QueueSize:    cfg.ExportQueueSize,
		BatchSize:    cfg.ExportBatchSize,
		BatchTimeout: math.MaxInt64, // never cut a batch by time: determinism
		RetryInitial: cfg.RetryInitial,
		RetryMax:     cfg.RetryMax,
		Resource:     p.resource,
		Observer:     p.observer("", -1, metric.WithAttributes()),
	}
	return &otlpSink{lane: p.newLane(lc)}, nil
}

type otlpSink struct{ lane export.Lane }

func (s *otlpSink) Write(ctx context.Context, spans []lifecycle.Span) error {
	for i := range spans {
		if err := s.lane.Emit(ctx, &spans[i]); err != nil {
			return err
		}
	}
	return nil
}

func (s *otlpSink) Close(ctx context.Context) error {
	flushErr := s.lane.Flush(ctx)
	acked, emitted := s.lane.Acked(), s.lane.Emitted()
	closeErr := s.lane.Close(ctx)
	if err := errors.Join(flushErr, closeErr); err != nil {
		return fmt.Errorf("replay: export: %w", err)
	}
	if acked != emitted {
		return fmt.Errorf("replay: export: %d of %d spans accepted", acked, emitted)
	}
	return nil
}

// ReplayStats summarises a replay.
type ReplayStats struct {
	Records  int
	Spans    int
	Rejected map[string]int // by reason: records that would go to the dead-letter topic
	// Ignored counts records skipped by the mapping's ignore list.
	Ignored int
	// InvalidTraceparents counts events whose traceparent was ignored
	// because it did not parse (they are applied without the link).
	InvalidTraceparents int
	// Anomalies counts applied events with an anomaly, by kind.
	Anomalies map[string]int
	// Open are the sessions still open at the end of the input (closed only
	// when Finish was asked to).
	Open []lifecycle.OpenSession
	// Elapsed is the wall time between the first Process and Finish.
	Elapsed time.Duration
}

// Replayer runs recorded records through the decoder, reorder window and
// state machine of the group consumer, one of each per partition, without a
// group and without commits. It is deterministic: the same records give the
// same spans in the same order.
type Replayer struct {
	cfg     Config
	sink    Sink
	parts   map[string]*replayPartition
	order   []string // partitions in first-seen order, for a deterministic Finish
	spans   []lifecycle.Span
	steps   []step[struct{}]
	stats   ReplayStats
	started time.Time
}

// replayPartition is one partition of a replay and the offset after its
// last record.
type replayPartition struct {
	p    *partition[struct{}]
	next int64
}

// NewReplayer validates the pipeline part of cfg (no brokers needed).
func NewReplayer(cfg Config, sink Sink) (*Replayer, error) {
	if err := cfg.ValidatePipeline(); err != nil {
		return nil, fmt.Errorf("replay config: %w", err)
	}
	if _, err := newPartition[struct{}](cfg); err != nil {
		return nil, fmt.Errorf("replay config: %w", err)
	}
	return &Replayer{
		cfg: cfg, sink: sink,
		parts: map[string]*replayPartition{},
		stats: ReplayStats{Rejected: map[string]int{}, Anomalies: map[string]int{}},
	}, nil
}

// Process replays one record. Records of one partition must come in offset
// order; partitions may interleave.
func (r *Replayer) Process(ctx context.Context, rec Record) error {
	if r.started.IsZero() {
		r.started = time.Now()
	}
	r.stats.Records++
	if rec.ValueTooLarge {
		r.stats.Rejected[string(schema.ReasonTooLarge)]++
		return nil
	}
	key := fmt.Sprintf("%s/%d", rec.Topic, rec.Partition)
	rp := r.parts[key]
	if rp == nil {
		p, err := newPartition[struct{}](r.cfg)
		if err != nil {
			return err
		}
		rp = &replayPartition{p: p}
		r.parts[key] = rp
		r.order = append(r.order, key)
	}
	rp.next = rec.Offset + 1
	spans, steps := rp.p.process(&schema.Record{Key: rec.Key, Value: rec.Value, Headers: rec.Headers}, rec.Timestamp, rec.Offset, struct{}{}, r.spans[:0], r.steps[:0])
	if err := r.done(ctx, spans, steps); err != nil {
		return fmt.Errorf("replay %s offset %d: %w", key, rec.Offset, err)
	}
	return nil
}

// done counts what steps did and writes their spans.
func (r *Replayer) done(ctx context.Context, spans []lifecycle.Span, steps []step[struct{}]) error {
	r.spans, r.steps = spans[:0], steps[:0]
	for _, st := range steps {
		if st.badLink != "" {
			r.stats.InvalidTraceparents++
		}
		switch {
		case st.held:
		case st.ignored:
			r.stats.Ignored++
		case st.reason != "":
			r.stats.Rejected[st.reason]++
		case st.out != 0:
			for _, k := range outcomeKinds {
				if st.out.Has(k.flag) {
					r.stats.Anomalies[k.name]++
				}
			}
		}
	}
	r.stats.Spans += len(spans)
	if len(spans) == 0 {
		return nil
	}
	return r.sink.Write(ctx, spans)
}

// Finish applies what the reorder windows still hold (the input ended, so
// nothing is left to wait for), reports the sessions still open, ends them
// as "end_of_input" when closeOpen is set (never the default: a recording
// usually stops mid-session), and closes the sink.
func (r *Replayer) Finish(ctx context.Context, closeOpen bool) (ReplayStats, error) {
	var werr error
	for _, key := range r.order {
		rp := r.parts[key]
		spans, steps := rp.p.flush(rp.next, r.spans[:0], r.steps[:0])
		if err := r.done(ctx, spans, steps); err != nil && werr == nil {
			werr = err
		}
		m := rp.p.m
		m.OpenSessions(func(s lifecycle.OpenSession) { r.stats.Open = append(r.stats.Open, s) })
		if closeOpen {
			spans := m.CloseAll("end_of_input", r.spans[:0])
			r.stats.Spans += len(spans)
			if len(spans) > 0 && werr == nil {
				werr = r.sink.Write(ctx, spans)
			}
		}
	}
	if !r.started.IsZero() {
		r.stats.Elapsed = time.Since(r.started)
	}
	return r.stats, errors.Join(werr, r.sink.Close(ctx))
}

// outcomeKinds names the anomaly flags for metrics and reports.
var outcomeKinds = []struct {
	flag lifecycle.Outcome
	name string
}{
	{lifecycle.Duplicate, "duplicate_event"},
	{lifecycle.UnknownSession, "unknown_session"},
	{lifecycle.Clamped, "clamped_timestamp"},
	{lifecycle.Superseded, "superseded_session"},
	{lifecycle.OutOfPhase, "out_of_phase"},
}
