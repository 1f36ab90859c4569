package receiver

import (
	"context"
	"fmt"

	"go.opentelemetry.io/otel/trace"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
)

// Span is a received span flattened with its resource and instrumentation
// scope.
//
// Attribute values keep their OTLP types: string, bool, int64, float64,
// []byte, []any for arrays and map[string]any for key-value lists.
type Span struct {
	TraceID      trace.TraceID
	SpanID       trace.SpanID
	ParentSpanID trace.SpanID
	Name         string
	// Start and End are Unix times in nanoseconds.
	Start, End int64
	Attrs      map[string]any
	// Flags are the OTLP span flags: the W3C trace flags in bits 0-7, and in
	// bits 8 and 9 whether the parent's remoteness is known and whether the
	// parent is remote.
	Flags uint32
	// Links are the span's links, in order.
	Links    []Link
	Resource map[string]any
	// Scope is the name of the instrumentation scope that produced the span.
	Scope string
	// Raw is the span as decoded; it is shared, not a copy, and must not be
	// modified.
	Raw *tracepb.Span
}

// Link is a received span link.
type Link struct {
	TraceID trace.TraceID
	SpanID  trace.SpanID
	// TraceState is the link's W3C tracestate, as sent.
	TraceState string
	// Flags are the OTLP link flags: the W3C trace flags in bits 0-7, and
	// in bits 8 and 9 whether the linked span's remoteness is known and
	// whether it is remote.
	Flags uint32
	Attrs map[string]any
}

// ParentRemote reports whether the exporter said the span's parent is in
// another process (OTLP flag bits 8 and 9); known is false when it did not
// say.
func (s Span) ParentRemote() (remote, known bool) {
	known = s.Flags&uint32(tracepb.SpanFlags_SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK) != 0
	remote = s.Flags&uint32(tracepb.SpanFlags_SPAN_FLAGS_CONTEXT_IS_REMOTE_MASK) != 0
	return remote, known
}

// Spans returns the spans received so far, in arrival order (spans of one
// request in request order), while KeepSpans was on. Each call builds fresh
// views, so callers may modify the maps.
func (r *Receiver) Spans() []Span {
	r.mu.Lock()
	received := r.spans[:len(r.spans):len(r.spans)]
	r.mu.Unlock()

	out := make([]Span, len(received))
	for i, st := range received {
		sp := st.span
		s := Span{
			Name:     sp.GetName(),
			Start:    int64(sp.GetStartTimeUnixNano()),
			End:      int64(sp.GetEndTimeUnixNano()),
			Attrs:    attrMap(sp.GetAttributes()),
			Flags:    sp.GetFlags(),
			Resource: attrMap(st.resource.GetResource().GetAttributes()),
			Scope:    st.scope.GetScope().GetName(),
			Raw:      sp,
		}
		copy(s.TraceID[:], sp.GetTraceId())
		copy(s.SpanID[:], sp.GetSpanId())
		copy(s.ParentSpanID[:], sp.GetParentSpanId())
		for _, l := range sp.GetLinks() {
			rl := Link{TraceState: l.GetTraceState(), Flags: l.GetFlags(), Attrs: attrMap(l.GetAttributes())}
			copy(rl.TraceID[:], l.GetTraceId())
			copy(rl.SpanID[:], l.GetSpanId())
			s.Links = append(s.Links, rl)
		}
		out[i] = s
	}
	return out
}

// Count returns the number of spans accepted so far, whether or not they are
// kept. It is a single atomic load.
func (r *Receiver) Count() int { return int(r.count.Load()) }

// WaitCount blocks until at least n spans have been accepted or ctx is done,
// in which case it returns an error wrapping ctx.Err(). It wakes on every
// accepted request rather than polling.
func (r *Receiver) WaitCount(ctx context.Context, n int) error {
	for {
		// Take the channel before reading the count: a request accepted in
		// between closes this very channel, so no wake-up is missed.
		r.mu.Lock()
		changed := r.changed
		r.mu.Unlock()
		if r.Count() >= n {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("receiver: wait for %d spans, received %d: %w", n, r.Count(), ctx.Err())
		}
	}
}

func attrMap(kvs []*commonpb.KeyValue) map[string]any {
	m := make(map[string]any, len(kvs))
	for _, kv := range kvs {
		m[kv.GetKey()] = value(kv.GetValue())
	}
	return m
}

func value(v *commonpb.AnyValue) any {
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return x.StringValue
	case *commonpb.AnyValue_BoolValue:
		return x.BoolValue
	case *commonpb.AnyValue_IntValue:
		return x.IntValue
	case *commonpb.AnyValue_DoubleValue:
		return x.DoubleValue
	case *commonpb.AnyValue_BytesValue:
		return x.BytesValue
	case *commonpb.AnyValue_ArrayValue:
		vals := x.ArrayValue.GetValues()
		out := make([]any, len(vals))
		for i, e := range vals {
			out[i] = value(e)
		}
		return out
	case *commonpb.AnyValue_KvlistValue:
		return attrMap(x.KvlistValue.GetValues())
	default:
		return nil
	}
}
