package export

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/sessiontrace/sessiontrace/lifecycle"
)

// ackExporter wraps the shared span exporter for one partition's lane. It is
// where acknowledgement is observed: a batch counts as acknowledged only when
// it is settled (accepted, or its refused spans reported). A failing batch is
// retried, never returned to the batch processor as long as the lane lives;
// when it must be returned unsettled (the lane is aborted, or ForceFlush's
// context ended), the processor drops it, so the lane is aborted and nothing
// after it is acknowledged either: the acknowledged count only ever covers a
// prefix of the spans the partition emitted, in order.
type ackExporter struct {
	inner     sdktrace.SpanExporter
	acked     atomic.Int64 // spans settled, a prefix of those emitted
	deliverer deliverer
	abortCtx  context.Context // cancelled by abort: retries stop, in-flight exports are cancelled
	abort     context.CancelFunc
}

func newAckExporter(inner sdktrace.SpanExporter, d deliverer) *ackExporter {
	ctx, cancel := context.WithCancel(context.Background())
	return &ackExporter{inner: inner, deliverer: d, abortCtx: ctx, abort: cancel}
}

// ExportSpans settles spans, retrying until the inner exporter accepts
// them, ctx is done or the lane is aborted. Because the batch processor
// exports one batch at a time, blocking here is what turns a collector
// outage into back-pressure: the queue fills and the partition worker
// blocks instead of anything being dropped.
func (e *ackExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	if e.abortCtx.Err() != nil {
		return errAborted
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(e.abortCtx, cancel)
	defer stop()
	upload := func(ctx context.Context, lo, hi int) error { return e.inner.ExportSpans(ctx, spans[lo:hi]) }
	var view lifecycle.Span
	span := func(i int) *lifecycle.Span {
		view = spanOf(spans[i])
		return &view
	}
	base := e.acked.Load() // the processor exports one batch at a time, in order
	if err := e.deliverer.deliver(ctx, base, 0, len(spans), upload, span); err != nil {
		// The processor drops a batch it gets an error for: abort, so that a
		// later batch is never acknowledged past it.
		e.abort()
		return err
	}
	if e.abortCtx.Err() != nil {
		// Aborted while uploading: spans queued after a hole may be in this
		// batch. Not acknowledging an accepted batch only costs duplicates.
		return errAborted
	}
	e.acked.Add(int64(len(spans)))
	return nil
}

// Shutdown stops retrying. The inner exporter is shared by every partition and
// is shut down by its owner, not here.
func (e *ackExporter) Shutdown(context.Context) error {
	e.abort()
	return nil
}

// spanOf rebuilds the lifecycle view of an SDK span for Observer.Rejected.
func spanOf(s sdktrace.ReadOnlySpan) lifecycle.Span {
	sp := lifecycle.Span{
		Name:         s.Name(),
		TraceID:      s.SpanContext().TraceID(),
		SpanID:       s.SpanContext().SpanID(),
		ParentSpanID: s.Parent().SpanID(),
		Start:        s.StartTime().UnixNano(),
		End:          s.EndTime().UnixNano(),
		Attrs:        s.Attributes(),
	}
	for _, l := range s.Links() {
		sc := l.SpanContext
		sp.Links = append(sp.Links, lifecycle.Link{TraceID: sc.TraceID(), SpanID: sc.SpanID(), Flags: sc.TraceFlags()})
	}
	return sp
}

// sdkLane is the SDK export path: its own tracer provider and blocking
// batch processor over an ackExporter. One lane per partition keeps the
// acknowledged spans a per-partition prefix (so acknowledgement is a counter,
// not a lookup per span) and lets export scale with partitions instead of
// running through the SDK's single export goroutine per processor.
type sdkLane struct {
	tp       *sdktrace.TracerProvider
	exp      *ackExporter
	emitter  *emitter
	n        atomic.Int64 // spans handed to the processor (atomic: Flush may run on another goroutine)
	closeOne sync.Once
}

// NewSDK returns the SDK export path's lane over exp, the process's shared
// exporter (an otlptrace exporter over a client built with ClientOptions),
// which the lane never shuts down.
func NewSDK(exp sdktrace.SpanExporter, cfg Config) Lane { return newSDKLane(exp, cfg) }

func newSDKLane(inner sdktrace.SpanExporter, cfg Config) *sdkLane {
	exp := newAckExporter(inner, deliverer{initial: cfg.RetryInitial, max: cfg.RetryMax, obs: cfg.Observer})
	bsp := sdktrace.NewBatchSpanProcessor(exp,
		sdktrace.WithBlocking(), // the SDK default drops spans when the queue is full
		sdktrace.WithMaxQueueSize(cfg.QueueSize),
		sdktrace.WithMaxExportBatchSize(cfg.BatchSize),
		sdktrace.WithBatchTimeout(cfg.BatchTimeout),
		sdktrace.WithExportTimeout(0), // no processor deadline: a timed-out batch would be dropped
	)
	opts := []sdktrace.TracerProviderOption{
		sdktrace.WithSpanProcessor(bsp),
		sdktrace.WithIDGenerator(idGenerator{}),
		sdktrace.WithSampler(sdktrace.AlwaysSample()), // an unsampled span never reaches the exporter
	}
	if cfg.Resource != nil {
		opts = append(opts, sdktrace.WithResource(cfg.Resource))
	}
	tp := sdktrace.NewTracerProvider(opts...)
	return &sdkLane{
		tp:      tp,
		exp:     exp,
		emitter: newEmitter(tp.Tracer(scopeName)),
	}
}

// Emit hands one span to the batch processor, blocking while its queue is
// full. When ctx ends while it waits, the processor may drop the span; it
// counts as emitted and the lane is aborted, so neither it nor anything
// after it is acknowledged.
func (l *sdkLane) Emit(ctx context.Context, s *lifecycle.Span) error {
	if l.exp.abortCtx.Err() != nil {
		l.n.Add(1)
		return fmt.Errorf("queue span: %w", errAborted)
	}
	err := l.emitter.Emit(ctx, s)
	l.n.Add(1)
	if err == nil && ctx.Err() != nil {
		err = fmt.Errorf("queue span: %w", context.Cause(ctx))
	}
	if err != nil {
		l.Abort()
	}
	return err
}

func (l *sdkLane) Emitted() int64 { return l.n.Load() }

func (l *sdkLane) Acked() int64 { return l.exp.acked.Load() }

// Flush exports what the processor holds and waits until every span
// emitted so far is acknowledged. A batch that ctx's end cuts off is
// dropped by the processor, which aborts the lane.
func (l *sdkLane) Flush(ctx context.Context) error {
	target := l.n.Load()
	if l.exp.acked.Load() >= target {
		return nil
	}
	if err := l.tp.ForceFlush(ctx); err != nil {
		return err
	}
	if l.exp.acked.Load() < target {
		return errAborted
	}
	return nil
}

func (l *sdkLane) Abort() { l.exp.abort() }

// Close stops the lane. Spans still queued are abandoned (never acknowledged,
// so never committed past): call Flush first to drain.
func (l *sdkLane) Close(ctx context.Context) error {
	var err error
	l.closeOne.Do(func() {
		l.exp.abort()
		err = l.tp.Shutdown(ctx)
	})
	return err
}
