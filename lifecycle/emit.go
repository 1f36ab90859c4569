package lifecycle

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// wantedKey is the context key under which Emit passes the Span whose IDs the
// ID generator must hand out.
type wantedKey struct{}

// idGenerator hands the SDK the IDs the Machine derived, read from the
// context; without them it falls back to random IDs, so that a tracer whose
// provider lacks it produces spans Emit can detect as wrong instead of
// crashing.
type idGenerator struct{}

// IDGenerator returns the sdktrace.IDGenerator that a TracerProvider must be
// built with (sdktrace.WithIDGenerator) for Emitter to produce the Span's
// precomputed IDs. It is stateless and safe for concurrent use.
func IDGenerator() sdktrace.IDGenerator { return idGenerator{} }

// NewIDs returns the wanted trace and span IDs of a root span.
func (idGenerator) NewIDs(ctx context.Context) (trace.TraceID, trace.SpanID) {
	if s, ok := ctx.Value(wantedKey{}).(*Span); ok {
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
	if s, ok := ctx.Value(wantedKey{}).(*Span); ok {
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

// Emitter turns Spans into SDK spans, so that the SDK's processors and
// exporters send them. It is safe for concurrent use if its tracer is.
type Emitter struct {
	tracer trace.Tracer
}

// NewEmitter returns an Emitter that emits with t, which must come from a
// TracerProvider built with IDGenerator() and a sampler that samples
// everything (sdktrace.AlwaysSample; ParentBased(AlwaysSample) also works
// since phase spans get a sampled parent).
func NewEmitter(t trace.Tracer) *Emitter { return &Emitter{tracer: t} }

// Emit starts and ends one SDK span carrying s's IDs, parent (as a remote,
// sampled parent SpanContext, so the exported span has the "parent is remote"
// flag), name, timestamps and attributes; the kind is internal. The SDK span
// is ended only when the SDK produced s's IDs; otherwise (the provider was not
// built with IDGenerator, or the span was not sampled) nothing is ended and an
// error is returned.
func (e *Emitter) Emit(ctx context.Context, s *Span) error {
	ctx = context.WithValue(ctx, wantedKey{}, s)
	opts := [4]trace.SpanStartOption{
		trace.WithTimestamp(time.Unix(0, s.Start)),
		trace.WithAttributes(s.Attrs...),
		trace.WithSpanKind(trace.SpanKindInternal),
		trace.WithNewRoot(),
	}
	n := len(opts)
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
		return fmt.Errorf("lifecycle: emit %s %s/%s: tracer produced %s/%s (recording=%t): "+
			"is its provider built with lifecycle.IDGenerator() and AlwaysSample?",
			s.Name, s.TraceID, s.SpanID, sc.TraceID(), sc.SpanID(), span.IsRecording())
	}
	span.End(trace.WithTimestamp(time.Unix(0, s.End)))
	return nil
}
