package export

import (
	"context"
	"errors"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/status"

	"github.com/sessiontrace/sessiontrace/lifecycle"
)

// deliverer settles batches for one lane, on either export path: it uploads,
// classifies each attempt and acts on its class (see the package doc).
type deliverer struct {
	initial, max time.Duration
	obs          Observer
}

// uploadFunc uploads spans [lo, hi) of the batch being delivered.
type uploadFunc func(ctx context.Context, lo, hi int) error

// deliver settles spans [lo, hi) of a batch whose span 0 has emission index
// base: it returns nil once every one of them is accepted, or reported as
// rejected (Observer.Partial, Observer.Rejected), and the last attempt's
// error when ctx ended first. span returns span i of the batch for
// Observer.Rejected.
func (d *deliverer) deliver(ctx context.Context, base int64, lo, hi int, upload uploadFunc, span func(i int) *lifecycle.Span) error {
	backoff := d.initial
	for {
		err := upload(ctx, lo, hi)
		class := Classify(err)
		if d.obs.Result != nil {
			d.obs.Result(hi-lo, class, err)
		}
		switch class {
		case Accepted:
			return nil
		case PartialSuccess:
			// The request was accepted: resending it would deliver the
			// accepted spans twice, and the rejected ones would be
			// rejected again.
			var ps *PartialSuccessError
			errors.As(err, &ps)
			if d.obs.Partial != nil {
				d.obs.Partial(ps.Rejected, ps.Message)
			}
			return nil
		case RejectedData:
			if ctx.Err() != nil {
				return err
			}
			if hi-lo == 1 {
				if d.obs.Rejected != nil {
					d.obs.Rejected(base+int64(lo), span(lo), message(err))
				}
				return nil
			}
			// Halves, recursively: k refused spans among n cost about
			// 2k·log2(n) requests, and every other span is sent once.
			mid := lo + (hi-lo)/2
			if err := d.deliver(ctx, base, lo, mid, upload, span); err != nil {
				return err
			}
			return d.deliver(ctx, base, mid, hi, upload, span)
		}
		// Retryable, and RejectedConfig: dropping would lose spans that
		// another credential or endpoint would take; the caller reports
		// the class (readiness, logs) while the lane waits.
		if ctx.Err() != nil {
			return err
		}
		wait := backoff
		if asked, ok := retryDelay(err); ok {
			wait = asked
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return err
		}
		backoff = min(2*backoff, d.max)
	}
}

// maxRetryDelay caps the delay an endpoint may ask for: a collector that
// asks for hours by mistake must not stall every partition for hours.
const maxRetryDelay = 5 * time.Minute

// retryDelay returns the delay the endpoint asked for with a
// google.rpc.RetryInfo detail of a retryable status, which OTLP clients
// honour instead of their own backoff (a collector under load says when to
// come back), capped at maxRetryDelay; false when err carries none.
func retryDelay(err error) (time.Duration, bool) {
	s, ok := status.FromError(err)
	if !ok {
		return 0, false
	}
	for _, d := range s.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok && ri.GetRetryDelay() != nil {
			return min(max(ri.GetRetryDelay().AsDuration(), 0), maxRetryDelay), true
		}
	}
	return 0, false
}

// message is the endpoint's own words for a refusal: a gRPC status's
// message, or the error.
func message(err error) string {
	var gs interface{ GRPCStatus() *status.Status }
	if errors.As(err, &gs) && gs.GRPCStatus() != nil {
		return gs.GRPCStatus().Message()
	}
	return err.Error()
}
