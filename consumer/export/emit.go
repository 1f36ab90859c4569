package export

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/sessiontrace/sessiontrace/lifecycle"
)

// wantedKey is the context key under which Emit passes the Span whose IDs the
// ID generator must hand out.
type wantedKey struct{}

// idGenerator is the sdktrace.IDGenerator the SDK lane's tracer provider is
// built with: it hands the SDK the IDs the lifecycle Machine derived, read
// from the context, so that the SDK span carries the Span's precomputed IDs.
// Without them it falls back to random IDs, so that a tracer whose provider
// lacks it produces spans Emit can detect as wrong instead of crashing. It
// is stateless and safe for concurrent use.
type idGenerator struct{}

// NewIDs returns the wanted trace and span IDs of a root span.
func (idGenerator) NewIDs(ctx context.Context) (trace.TraceID, trace.SpanID) {
	if s, ok := ctx.Value(wantedKey{}).(*lifecycle.Span); ok {
		return s.TraceID, s.SpanID
	}
	var t trace.TraceID
	for !t.IsValid() {
		binary.NativeEndian.PutUint64(t[:8], rand.Uint64())
		binary.NativeEndian.PutUint64(t[8:], rand.Uint64())
	}
	return t, randomSpanID()
}

// NewSpanID returns the wanted span ID of a span with a parent.
func (idGenerator) NewSpanID(ctx context.Context, _ trace.TraceID) trace.SpanID {
	if s, ok := ctx.Value(wantedKey{}).(*lifecycle.Span); ok {
		return s.SpanID
	}
	return randomSpanID()
}

func randomSpanID() trace.SpanID {
	var s trace.SpanID
	for !s.IsValid() {
		binary.NativeEndian.PutUint64(s[:], rand.Uint64())
	}
	return s
}

// emitter turns lifecycle Spans into SDK spans, so that the SDK's
// processors and exporters send them. It is safe for concurrent use if its
// tracer is.
type emitter struct {
	tracer trace.Tracer
}

// newEmitter returns an emitter that emits with t, which must come from a
// TracerProvider built with idGenerator and a sampler that samples
// everything (sdktrace.AlwaysSample; ParentBased(AlwaysSample) also works
// since phase spans get a sampled parent).
func newEmitter(t trace.Tracer) *emitter { return &emitter{tracer: t} }

// Emit starts and ends one SDK span carrying s's IDs, parent (as a remote,
// sampled parent SpanContext, so the exported span has the "parent is remote"
// flag), name, timestamps, attributes and links (to remote span contexts,
// with the links' trace flags); the kind is internal. The SDK span
// is ended only when the SDK produced s's IDs; otherwise (the provider was not
// built with idGenerator, or the span was not sampled) nothing is ended and an
// error is returned.
func (e *emitter) Emit(ctx context.Context, s *lifecycle.Span) error {
	ctx = context.WithValue(ctx, wantedKey{}, s)
	opts := [5]trace.SpanStartOption{
		trace.WithTimestamp(time.Unix(0, s.Start)),
		trace.WithAttributes(s.Attrs...),
		trace.WithSpanKind(trace.SpanKindInternal),
		nil, // links
		trace.WithNewRoot(),
	}
	n := len(opts)
	if len(s.Links) > 0 {
		links := make([]trace.Link, len(s.Links))
		for i, l := range s.Links {
			links[i] = trace.Link{SpanContext: trace.NewSpanContext(trace.SpanContextConfig{
				TraceID: l.TraceID, SpanID: l.SpanID, TraceFlags: l.Flags, Remote: true,
			})}
		}
		opts[3] = trace.WithLinks(links...)
	} else {
		opts[3], opts[4] = opts[4], nil
		n--
	}
	if s.ParentSpanID.IsValid() {
		ctx = trace.ContextWithRemoteSpanContext(ctx, trace.NewSpanContext(trace.SpanContextConfig{
			TraceID:    s.TraceID,
			SpanID:     s.ParentSpanID,
			TraceFlags: trace.FlagsSampled,
			Remote:     true,
		}))
		n--
	}
	_, span := e.tracer.Start(ctx, s.Name, opts[:n]...)
	sc := span.SpanContext()
	if sc.TraceID() != s.TraceID || sc.SpanID() != s.SpanID || !span.IsRecording() {
		return fmt.Errorf("emit %s %s/%s: tracer produced %s/%s (recording=%t): "+
			"is its provider built with the lane's ID generator and AlwaysSample?",
			s.Name, s.TraceID, s.SpanID, sc.TraceID(), sc.SpanID(), span.IsRecording())
	}
	span.End(trace.WithTimestamp(time.Unix(0, s.End)))
	return nil
}
