package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/sessiontrace/sessiontrace/cmd/sessiontrace/internal/simulate"
	"github.com/sessiontrace/sessiontrace/consumer"
	"github.com/sessiontrace/sessiontrace/consumer/export"
	"github.com/sessiontrace/sessiontrace/consumer/receiver"
	"github.com/sessiontrace/sessiontrace/lifecycle"
	"github.com/sessiontrace/sessiontrace/schema"
)

// countingExporter counts the spans the OTLP endpoint accepted, so the bench
// knows what arrived at an endpoint it cannot look into, and, while a
// latency recorder is set, times every accepted root span. The consumer's
// lanes call it concurrently.
type countingExporter struct {
	sdktrace.SpanExporter
	acked atomic.Int64
	// latency, when set, gets every accepted root span (used only when the
	// endpoint is not the embedded receiver, which times spans itself).
	latency atomic.Pointer[latencyRecorder]

	mu sync.Mutex
	// changed is closed and replaced on every accepted export, so wait wakes
	// exactly when the count moved.
	changed chan struct{}
}

func newCountingExporter(exp sdktrace.SpanExporter) *countingExporter {
	return &countingExporter{SpanExporter: exp, changed: make(chan struct{})}
}

// ExportSpans exports through the wrapped exporter and counts what it
// accepted.
func (e *countingExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	// A partial success is an accepted request: the lane acknowledges it.
	err := e.SpanExporter.ExportSpans(ctx, spans)
	if err != nil && export.Classify(err) != export.PartialSuccess {
		return err
	}
	if l := e.latency.Load(); l != nil {
		now := time.Now()
		for _, s := range spans {
			if s.Name() == lifecycle.SpanLifecycle && !s.Parent().SpanID().IsValid() {
				l.add(now, s.EndTime().UnixNano())
			}
		}
	}
	e.accepted(int64(len(spans)))
	return err
}

// accepted counts n accepted spans and wakes wait.
func (e *countingExporter) accepted(n int64) {
	e.acked.Add(n)
	e.mu.Lock()
	close(e.changed)
	e.changed = make(chan struct{})
	e.mu.Unlock()
}

// countingClient is countingExporter's view of the direct export path,
// whose uploads go through the OTLP client and bypass the exporter.
type countingClient struct {
	otlptrace.Client
	e *countingExporter
}

// UploadTraces uploads through the wrapped client and counts (and, in the
// latency phase, times) what the endpoint accepted.
func (c *countingClient) UploadTraces(ctx context.Context, rss []*tracepb.ResourceSpans) error {
	err := c.Client.UploadTraces(ctx, rss)
	if err != nil && export.Classify(err) != export.PartialSuccess {
		return err
	}
	rss = decodedSpans(rss)
	n := 0
	for _, rs := range rss {
		for _, ss := range rs.GetScopeSpans() {
			n += len(ss.GetSpans())
		}
	}
	if l := c.e.latency.Load(); l != nil {
		l.addResourceSpans(time.Now(), rss)
	}
	c.e.accepted(int64(n))
	return err
}

// decodedSpans returns rss with every span as a message. The direct export
// path carries the spans already encoded, as unknown fields of their
// ScopeSpans (the spans field's own wire bytes), which a marshal and
// unmarshal turn back into the spans field. It costs a copy of the request,
// paid only when the bench exports to an endpoint of the user's.
func decodedSpans(rss []*tracepb.ResourceSpans) []*tracepb.ResourceSpans {
	out := make([]*tracepb.ResourceSpans, 0, len(rss))
	for _, rs := range rss {
		b, err := proto.Marshal(rs)
		if err != nil {
			return rss
		}
		d := new(tracepb.ResourceSpans)
		if err := proto.Unmarshal(b, d); err != nil {
			return rss
		}
		out = append(out, d)
	}
	return out
}

// wait blocks until at least n spans were accepted or ctx is done.
func (e *countingExporter) wait(ctx context.Context, n int64) error {
	for {
		e.mu.Lock()
		changed := e.changed
		e.mu.Unlock()
		if e.acked.Load() >= n {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("wait for %d spans, %d accepted: %w", n, e.acked.Load(), ctx.Err())
		}
	}
}

// latencyRecorder collects, per root span, the time from the record that
// closed the session being produced to the span being received. In the
// latency phase every event is stamped with the wall-clock instant it is
// handed to the Kafka client (its ts and the record timestamp), so a root
// span's end time, which is its closing disconnect's ts, is that record's
// produce time.
type latencyRecorder struct {
	mu      sync.Mutex
	samples []time.Duration
	changed chan struct{}
}

func newLatencyRecorder() *latencyRecorder {
	return &latencyRecorder{changed: make(chan struct{})}
}

func (l *latencyRecorder) add(received time.Time, endNanos int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.samples = append(l.samples, received.Sub(time.Unix(0, endNanos)))
	close(l.changed)
	l.changed = make(chan struct{})
}

// onExport is the embedded receiver's callback: it times the root spans of
// each request as the receiver takes it.
func (l *latencyRecorder) onExport(req *coltracepb.ExportTraceServiceRequest) {
	l.addResourceSpans(time.Now(), req.GetResourceSpans())
}

// addResourceSpans times the root spans among rss, received at now. It
// serves any place that sees OTLP messages: the receiver's callback, or a
// wrapper of an exporter client that uploads them.
func (l *latencyRecorder) addResourceSpans(now time.Time, rss []*tracepb.ResourceSpans) {
	for _, rs := range rss {
		for _, ss := range rs.GetScopeSpans() {
			for _, sp := range ss.GetSpans() {
				if sp.GetName() == lifecycle.SpanLifecycle && len(sp.GetParentSpanId()) == 0 {
					l.add(now, int64(sp.GetEndTimeUnixNano()))
				}
			}
		}
	}
}

// wait blocks until n root spans were timed or ctx is done.
func (l *latencyRecorder) wait(ctx context.Context, n int) error {
	for {
		l.mu.Lock()
		changed, got := l.changed, len(l.samples)
		l.mu.Unlock()
		if got >= n {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("wait for %d root spans, %d received: %w", n, got, ctx.Err())
		}
	}
}

// latencySummary is what the latency phase measured.
type latencySummary struct {
	Roots              int // root spans timed
	P50, P90, P99, Max time.Duration
	Target             time.Duration // kafka.export_batch_timeout + kafka.lifecycle.reorder_window + 1s
	WithinTarget       int           // roots received within Target
	MeasuredAt         string        // where "received" was observed
	Rate               float64       // events per second produced
	Duration           time.Duration // how long events were produced
	EventsProduced     int
	ExpectedRoots      int // disconnects produced
}

func (l *latencyRecorder) summary(target time.Duration) latencySummary {
	l.mu.Lock()
	s := slices.Clone(l.samples)
	l.mu.Unlock()
	slices.Sort(s)
	out := latencySummary{Roots: len(s), Target: target}
	if len(s) == 0 {
		return out
	}
	// Nearest-rank percentiles: the smallest sample with at least p of all
	// samples at or below it.
	rank := func(p float64) time.Duration {
		i := int(p*float64(len(s))+0.999999) - 1
		return s[min(max(i, 0), len(s)-1)]
	}
	out.P50, out.P90, out.P99, out.Max = rank(0.50), rank(0.90), rank(0.99), s[len(s)-1]
	out.WithinTarget, _ = slices.BinarySearch(s, target+1)
	return out
}

// latencyTick is how often the latency phase tops up production to the
// rate: fine enough that records leave at an even pace.
const latencyTick = 5 * time.Millisecond

// latencyGrace bounds the wait, after the last record, for the sessions it
// closed, beyond the batch timeout itself.
const latencyGrace = 30 * time.Second

// latencyPhase runs the pipeline on a fresh topic while producing events at
// f.latencyRate for f.latencyDuration, stamped with the wall clock, and
// times every session's root span from the produce time of the record that
// closed it to its arrival: at the embedded receiver when there is one, at
// the export's acknowledgement otherwise. Every session of the simulated
// traffic ends with a disconnect record (the idle timeout of an hour never
// strikes in the phase), so the roots expected are the disconnects produced.
func latencyPhase(ctx context.Context, k kafkaConfig, cc consumer.Config, exp *countingExporter, opts []consumer.Option,
	recv *receiver.Receiver, f benchFlags) (latencySummary, error) {
	// Root spans wait for the reorder window too (in stream time, which
	// the wall-clock stamps make wall time here).
	target := cc.ExportBatchTimeout + cc.Lifecycle.ReorderWindow + latencySlack
	rec := newLatencyRecorder()
	measuredAt := "root span received by the embedded receiver"
	if recv != nil {
		// The callback makes the receiver decode every request from now on,
		// which is why this phase comes after the throughput phases.
		recv.OnExport(rec.onExport)
	} else {
		measuredAt = "root span's export acknowledged by the OTLP endpoint"
		exp.latency.Store(rec)
		defer exp.latency.Store(nil)
	}
	sum := func() latencySummary {
		s := rec.summary(target)
		s.MeasuredAt, s.Rate = measuredAt, f.latencyRate
		return s
	}

	c, err := consumer.New(cc, exp, opts...)
	if err != nil {
		return sum(), fmt.Errorf("%w: %w", errInvalidConfig, err)
	}
	run := startConsumer(ctx, c)
	defer run.stop()
	if err := run.ready(ctx); err != nil {
		return sum(), err
	}

	sc := simulate.DefaultConfig()
	sc.Players, sc.Sessions, sc.Seed = benchLatencyPlayers, 0, f.seed
	gen, err := simulate.New(sc)
	if err != nil {
		return sum(), err
	}
	cl, err := k.kafkaClient()
	if err != nil {
		return sum(), err
	}
	defer cl.Close()
	var failed atomic.Pointer[error]
	promise := func(_ *kgo.Record, err error) {
		if err != nil {
			failed.CompareAndSwap(nil, &err)
		}
	}

	var ev schema.Event
	n, disconnects := 0, 0
	tick := time.NewTicker(latencyTick)
	defer tick.Stop()
	begin := time.Now()
	var elapsed time.Duration
produce:
	for failed.Load() == nil {
		select {
		case <-ctx.Done():
			break produce
		case now := <-tick.C:
			elapsed = now.Sub(begin)
		}
		if elapsed >= f.latencyDuration {
			break
		}
		due := int(elapsed.Seconds() * f.latencyRate)
		for ; n < due && gen.Next(&ev); n++ {
			// Each event happens when it is produced: its ts, and so the end
			// of the root span a disconnect closes, is the record's
			// timestamp.
			now := time.Now()
			ev.TS = now.UnixNano()
			if ev.Type == schema.SessionDisconnect {
				disconnects++
			}
			value := schema.AppendJSON(make([]byte, 0, 320), &ev)
			cl.Produce(ctx, &kgo.Record{Key: []byte(ev.PlayerID), Value: value, Timestamp: now, Topic: cc.Topic}, promise)
		}
	}
	if err := cl.Flush(ctx); err != nil {
		return sum(), fmt.Errorf("produce to %s: flush: %w", cc.Topic, err)
	}
	if p := failed.Load(); p != nil {
		return sum(), fmt.Errorf("produce to %s: %w", cc.Topic, *p)
	}
	wctx, cancel := context.WithTimeout(ctx, target+latencyGrace)
	defer cancel()
	werr := rec.wait(wctx, disconnects)
	if err := run.stop(); err != nil {
		werr = errors.Join(werr, fmt.Errorf("consumer: %w", err))
	}
	s := sum()
	s.Duration, s.EventsProduced, s.ExpectedRoots = elapsed, n, disconnects
	return s, werr
}
