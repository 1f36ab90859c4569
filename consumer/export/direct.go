package export

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/sessiontrace/sessiontrace/lifecycle"
)

// directLane is the direct export path of one partition: a bounded queue of
// lifecycle.Span values and one export goroutine that cuts batches by size
// and timeout, encodes each straight to OTLP messages (spanEncoder) and
// uploads them through the process's otlptrace.Client, settling each as its
// outcome class says. It keeps the Lane contract with the SDK path's
// batching: a batch is exported when it holds batchSize spans or when its
// first span has waited batchTimeout, and Flush exports the partial batch
// at once, so a replay (no timeout) sends the same requests on both paths.
type directLane struct {
	client       otlptrace.Client
	enc          *spanEncoder
	batchSize    int
	batchTimeout time.Duration
	deliverer    deliverer

	q       *spanQueue
	flushes chan flushRequest
	n       atomic.Int64 // spans handed to Emit (atomic: Flush may run on another goroutine)
	ackN    atomic.Int64 // spans settled, a prefix of those emitted

	abortCtx context.Context // cancelled by Abort: the export goroutine stops, uploads are cancelled
	abortFn  context.CancelFunc
	done     chan struct{} // closed when the export goroutine returned
	closeOne sync.Once
}

// flushRequest asks the export goroutine to export, now, every span up to
// the emitted count target; done is closed once they were settled.
type flushRequest struct {
	target int64
	done   chan struct{}
}

// NewDirect returns the direct export path's lane over client, which must
// be started, built with ClientOptions, and is never stopped by the lane.
func NewDirect(client otlptrace.Client, cfg Config) Lane { return newDirectLane(client, cfg) }

func newDirectLane(client otlptrace.Client, cfg Config) *directLane {
	ctx, cancel := context.WithCancel(context.Background())
	l := &directLane{
		client:       client,
		enc:          newSpanEncoder(cfg.Resource, sdktrace.NewSpanLimits()),
		batchSize:    cfg.BatchSize,
		batchTimeout: cfg.BatchTimeout,
		deliverer:    deliverer{initial: cfg.RetryInitial, max: cfg.RetryMax, obs: cfg.Observer},
		q:            newSpanQueue(cfg.QueueSize),
		flushes:      make(chan flushRequest),
		abortCtx:     ctx,
		abortFn:      cancel,
		done:         make(chan struct{}),
	}
	go l.run()
	return l
}

// Emit queues a copy of s, blocking while the queue is full. When ctx ends
// or the lane is aborted first, the span is not queued; it still counts as
// emitted, and the lane is aborted so that nothing after it can be
// acknowledged either: the acknowledged count stays a prefix.
func (l *directLane) Emit(ctx context.Context, s *lifecycle.Span) error {
	err := l.q.push(ctx, l.abortCtx, s)
	if err != nil {
		l.Abort()
		err = fmt.Errorf("queue span: %w", err)
	}
	l.n.Add(1)
	return err
}

func (l *directLane) Emitted() int64 { return l.n.Load() }

func (l *directLane) Acked() int64 { return l.ackN.Load() }

// Flush asks the export goroutine to export what it holds and waits until
// every span emitted so far was accepted.
func (l *directLane) Flush(ctx context.Context) error {
	target := l.n.Load()
	if l.ackN.Load() >= target {
		return nil
	}
	req := flushRequest{target: target, done: make(chan struct{})}
	select {
	case l.flushes <- req:
	case <-ctx.Done():
		return ctx.Err()
	case <-l.done:
		return errAborted
	}
	select {
	case <-req.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-l.done:
		return errAborted
	}
}

func (l *directLane) Abort() { l.abortFn() }

// Close aborts the lane and waits for its export goroutine to return.
// Spans still queued are abandoned (never acknowledged, so never committed
// past): call Flush first to drain.
func (l *directLane) Close(ctx context.Context) error {
	var err error
	l.closeOne.Do(func() {
		l.abortFn()
		select {
		case <-l.done:
		case <-ctx.Done():
			err = ctx.Err()
		}
	})
	return err
}

// run is the export goroutine. It owns the batch and the encoder, and
// returns when the lane is aborted.
func (l *directLane) run() {
	defer close(l.done)
	batch := make([]lifecycle.Span, 0, l.batchSize)
	timer := time.NewTimer(l.batchTimeout)
	timer.Stop()
	defer timer.Stop()
	var taken int64 // spans taken from the queue

	// fill moves queued spans into the batch, up to a full one, and starts
	// the batch timeout when the batch gets its first span.
	fill := func() {
		before := len(batch)
		batch = l.q.take(batch, l.batchSize-len(batch))
		taken += int64(len(batch) - before)
		if before == 0 && len(batch) > 0 {
			timer.Reset(l.batchTimeout)
		}
	}
	for {
		if l.abortCtx.Err() != nil {
			return
		}
		fill()
		if len(batch) == l.batchSize {
			if !l.exportBatch(&batch, timer) {
				return
			}
			continue
		}
		select {
		case <-l.abortCtx.Done():
			return
		case <-l.q.notEmpty:
		case <-timer.C:
			if !l.exportBatch(&batch, timer) {
				return
			}
		case req := <-l.flushes:
			// Every span up to target was queued before Flush was called:
			// take them all, exporting full batches on the way.
			for taken < req.target {
				before := taken
				fill()
				if len(batch) == l.batchSize && !l.exportBatch(&batch, timer) {
					return
				}
				if taken == before { // not visible yet: wait for the push
					select {
					case <-l.q.notEmpty:
					case <-l.abortCtx.Done():
						return
					}
				}
			}
			if !l.exportBatch(&batch, timer) {
				return
			}
			close(req.done)
		}
	}
}

// exportBatch settles *batch (see deliverer) and empties it; false means
// the lane was aborted first.
func (l *directLane) exportBatch(batch *[]lifecycle.Span, timer *time.Timer) bool {
	timer.Stop()
	b := *batch
	if len(b) == 0 {
		return true
	}
	upload := func(ctx context.Context, lo, hi int) error {
		if err := l.client.UploadTraces(ctx, l.enc.encode(b[lo:hi])); err != nil {
			// Worded as the SDK's exporter words it, so logs read the same
			// on both paths.
			return fmt.Errorf("traces export: %w", err)
		}
		return nil
	}
	base := l.ackN.Load() // batches are settled in order, one at a time
	if err := l.deliverer.deliver(l.abortCtx, base, 0, len(b), upload, func(i int) *lifecycle.Span { return &b[i] }); err != nil {
		return false
	}
	if l.abortCtx.Err() != nil {
		// Aborted while uploading: an Emit may have failed since, and the
		// batch may hold spans queued after that hole, which the
		// acknowledged count must never pass. Not acknowledging an
		// accepted batch only costs duplicates.
		return false
	}
	l.ackN.Add(int64(len(b)))
	clear(b) // the spans' attributes can be collected
	*batch = b[:0]
	return true
}
