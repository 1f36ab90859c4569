package export

import (
	"context"
	"errors"
	"time"

	"go.opentelemetry.io/otel/sdk/resource"

	"github.com/sessiontrace/sessiontrace/lifecycle"
)

// errAborted is what Flush and Emit return when the lane was aborted before
// the spans they wait for were accepted.
var errAborted = errors.New("export lane aborted")

// Lane is one partition's export path. NewDirect and NewSDK build the two
// implementations; both keep the same contract:
//
//   - Emit blocks while the lane's queue is full (back-pressure, never a
//     drop) and is called from one goroutine only, the partition's worker or
//     the replay;
//   - Acked only ever covers a prefix of the emitted spans, in emission
//     order, so a record is acknowledged when Acked reaches the emitted
//     count after its spans;
//   - every upload attempt is classified (see Classify) and handled as the
//     package doc's table says: retried until accepted, acknowledged on a
//     partial success, split to isolate spans the endpoint refuses, never
//     dropped;
//   - Flush waits until every span emitted before it was acknowledged, or
//     ctx ends; Close aborts and releases the lane (call Flush first to
//     drain), and is idempotent.
type Lane interface {
	// Emit hands one span to the lane. It may block while the queue is full;
	// s is copied (its Attrs slice is kept: lifecycle never modifies it once
	// the span is returned). An error means the span will never be
	// acknowledged (and, the lane being aborted, nothing after it either).
	Emit(ctx context.Context, s *lifecycle.Span) error
	// Emitted returns how many spans were handed to Emit.
	Emitted() int64
	// Acked returns how many of the emitted spans are settled: accepted by
	// the endpoint, or refused for good and reported to Observer.Rejected
	// or Observer.Partial. They are a prefix of the emitted spans.
	Acked() int64
	// Flush waits until every span emitted so far is acknowledged or ctx
	// ends.
	Flush(ctx context.Context) error
	// Abort stops retries and cancels in-flight exports, which unblocks an
	// Emit waiting on a full queue; what was not acknowledged stays
	// unacknowledged. Safe to call from any goroutine.
	Abort()
	// Close aborts the lane and releases it.
	Close(ctx context.Context) error
}

// Observer is told what happens to a lane's uploads. Every func is
// optional, and all are called from the lane's export goroutine (the SDK
// path's batch processor goroutine), one at a time: they must not block for
// long, since the lane waits for them.
type Observer struct {
	// Result is called after every upload attempt of n spans, with the
	// attempt's class and error (nil and Accepted when it was accepted).
	Result func(n int, class Class, err error)
	// Partial is called when the endpoint accepted a request but says it
	// rejected some of its spans (OTLP partial success), with the number
	// and its message. Those spans are acknowledged and never sent again.
	Partial func(rejected int64, msg string)
	// Rejected is called for each span the endpoint refuses for good
	// (class RejectedData, isolated by splitting the batch), with its
	// 0-based emission index in the lane and the endpoint's message. It is
	// called before Acked passes seq+1, so the caller can keep the span's
	// source record uncommitted until it has dealt with it. s is valid only
	// during the call.
	Rejected func(seq int64, s *lifecycle.Span, msg string)
}

// Config configures a lane.
type Config struct {
	// QueueSize is the most spans a lane holds before Emit blocks.
	QueueSize int
	// BatchSize is the most spans in one export request.
	BatchSize int
	// BatchTimeout is how long the first span of a partial batch waits
	// before the batch is exported anyway.
	BatchTimeout time.Duration
	// RetryInitial and RetryMax bound the backoff between attempts of a
	// failed upload: it starts at RetryInitial and doubles up to RetryMax.
	RetryInitial time.Duration
	RetryMax     time.Duration
	// Resource describes the exported spans; nil is the SDK's default.
	Resource *resource.Resource
	// Observer is told about every upload.
	Observer Observer
}
