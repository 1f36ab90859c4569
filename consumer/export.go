package consumer

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/sessiontrace/sessiontrace/lifecycle"
)

// ackExporter wraps the shared span exporter for one partition's lane. It is
// where acknowledgement is observed: a batch counts as acknowledged only when
// the inner exporter accepted it. A failed batch is retried, never returned to
// the batch processor (which would drop it), so the lane's acknowledged count
// can only ever cover a prefix of the spans the partition emitted, in order.
type ackExporter struct {
	inner    sdktrace.SpanExporter
	acked    atomic.Int64 // spans accepted by the inner exporter, a prefix of those emitted
	initial  time.Duration
	max      time.Duration
	abortCtx context.Context // cancelled by abort: retries stop, in-flight exports are cancelled
	abort    context.CancelFunc
	onResult func(n int, err error)
}

func newAckExporter(inner sdktrace.SpanExporter, initial, max time.Duration, onResult func(int, error)) *ackExporter {
	ctx, cancel := context.WithCancel(context.Background())
	return &ackExporter{inner: inner, initial: initial, max: max, abortCtx: ctx, abort: cancel, onResult: onResult}
}

// ExportSpans exports spans, retrying with backoff until the inner exporter
// accepts them, ctx is done or the lane is aborted. Because the batch
// processor exports one batch at a time, blocking here is what turns a
// collector outage into back-pressure: the queue fills and the partition
// worker blocks instead of anything being dropped.
func (e *ackExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(e.abortCtx, cancel)
	defer stop()
	backoff := e.initial
	for {
		err := e.inner.ExportSpans(ctx, spans)
		if e.onResult != nil {
			e.onResult(len(spans), err)
		}
		if err == nil {
			e.acked.Add(int64(len(spans)))
			return nil
		}
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return err
		}
		backoff = min(2*backoff, e.max)
	}
}

// Shutdown stops retrying. The inner exporter is shared by every partition and
// is shut down by its owner, not here.
func (e *ackExporter) Shutdown(context.Context) error {
	e.abort()
	return nil
}

// lane is one partition's export path. Two implementations exist, chosen by
// Config.ExportPath: sdkLane (a tracer provider and the SDK's blocking batch
// processor over an acknowledging exporter) and directLane (OTLP messages
// built straight from lifecycle.Span values, uploaded through the same
// otlptrace.Client). Both keep the same contract:
//
//   - emit blocks while the lane's queue is full (back-pressure, never a
//     drop) and is called from one goroutine only, the partition's worker or
//     the replay;
//   - acked only ever covers a prefix of the emitted spans, in emission
//     order, so a record is acknowledged when acked reaches the emitted count
//     after its spans;
//   - a failed export is retried with backoff until it is accepted or the
//     lane is aborted;
//   - flush waits until every span emitted before it was acknowledged, or
//     ctx ends; close aborts and releases the lane (call flush first to
//     drain), and is idempotent.
type lane interface {
	// emit hands one span to the lane. It may block; s is copied (its Attrs
	// slice is kept: lifecycle never modifies it once the span is returned).
	// An error means the span was not queued and will never be acknowledged.
	emit(ctx context.Context, s *lifecycle.Span) error
	// emitted returns how many spans were handed to emit.
	emitted() int64
	// acked returns how many of the emitted spans the endpoint accepted.
	acked() int64
	// flush waits until every span emitted so far was accepted or ctx ends.
	flush(ctx context.Context) error
	// abort stops retries and cancels in-flight exports, which unblocks an
	// emit waiting on a full queue; what was not accepted stays
	// unacknowledged.
	abort()
	// close aborts the lane and releases it.
	close(ctx context.Context) error
}

// sdkLane is the SDK export path: its own tracer provider and blocking
// batch processor over an ackExporter. One lane per partition keeps the
// acknowledged spans a per-partition prefix (so acknowledgement is a counter,
// not a lookup per span) and lets export scale with partitions instead of
// running through the SDK's single export goroutine per processor.
type sdkLane struct {
	tp       *sdktrace.TracerProvider
	exp      *ackExporter
	emitter  *lifecycle.Emitter
	n        int64 // spans handed to the processor; owned by the emitting goroutine
	closeOne sync.Once
}

type laneConfig struct {
	queueSize    int
	batchSize    int
	batchTimeout time.Duration
	retryInitial time.Duration
	retryMax     time.Duration
	resource     *resource.Resource
	onResult     func(n int, err error)
}

func newSDKLane(inner sdktrace.SpanExporter, cfg laneConfig) *sdkLane {
	exp := newAckExporter(inner, cfg.retryInitial, cfg.retryMax, cfg.onResult)
	bsp := sdktrace.NewBatchSpanProcessor(exp,
		sdktrace.WithBlocking(), // the SDK default drops spans when the queue is full
		sdktrace.WithMaxQueueSize(cfg.queueSize),
		sdktrace.WithMaxExportBatchSize(cfg.batchSize),
		sdktrace.WithBatchTimeout(cfg.batchTimeout),
		sdktrace.WithExportTimeout(0), // no processor deadline: a timed-out batch would be dropped
	)
	opts := []sdktrace.TracerProviderOption{
		sdktrace.WithSpanProcessor(bsp),
		sdktrace.WithIDGenerator(lifecycle.IDGenerator()),
		sdktrace.WithSampler(sdktrace.AlwaysSample()), // an unsampled span never reaches the exporter
	}
	if cfg.resource != nil {
		opts = append(opts, sdktrace.WithResource(cfg.resource))
	}
	tp := sdktrace.NewTracerProvider(opts...)
	return &sdkLane{
		tp:      tp,
		exp:     exp,
		emitter: lifecycle.NewEmitter(tp.Tracer(scopeName)),
	}
}

// emit hands one span to the batch processor, blocking while its queue is
// full. When ctx ends while it waits, the processor drops the span; it
// counts as emitted and, as the ackExporter never sees it, is never
// acknowledged (nor is anything after it: the processor is then shutting
// down with the lane).
func (l *sdkLane) emit(ctx context.Context, s *lifecycle.Span) error {
	if err := l.emitter.Emit(ctx, s); err != nil {
		return err
	}
	l.n++
	return nil
}

func (l *sdkLane) emitted() int64 { return l.n }

func (l *sdkLane) acked() int64 { return l.exp.acked.Load() }

func (l *sdkLane) flush(ctx context.Context) error { return l.tp.ForceFlush(ctx) }

func (l *sdkLane) abort() { l.exp.abort() }

// close stops the lane. Spans still queued are abandoned (never acknowledged,
// so never committed past): call flush first to drain.
func (l *sdkLane) close(ctx context.Context) error {
	var err error
	l.closeOne.Do(func() {
		l.exp.abort()
		err = l.tp.Shutdown(ctx)
	})
	return err
}
