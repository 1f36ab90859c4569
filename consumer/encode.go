package consumer

import (
	"unicode/utf8"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/sessiontrace/sessiontrace/lifecycle"
)

// scopeName is the instrumentation scope of every exported span, on both
// export paths (the SDK lane's tracer is named after it).
const scopeName = "github.com/sessiontrace/sessiontrace"

// OTLP span flags as the SDK's OTLP transform writes them: the W3C sampled
// flag, "has is_remote" always, and "is remote" when the parent is (every
// phase span's parent is the root, placed in the context as a remote
// SpanContext).
const (
	flagsRoot  = uint32(tracepb.SpanFlags_SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK) | 0x01
	flagsPhase = flagsRoot | uint32(tracepb.SpanFlags_SPAN_FLAGS_CONTEXT_IS_REMOTE_MASK)
)

// spanEncoder builds the OTLP request messages of one batch straight from
// lifecycle.Span values: the same ResourceSpans the SDK path produces (SDK
// span, then otlptrace's transform), so that the marshalled request is the
// same byte for byte, without an SDK span or a conversion per span.
//
// Every message of a batch lives in slices the encoder reuses, so encoding
// allocates nothing once the slices have grown to the largest batch. The
// messages returned by encode are valid until the next encode: the caller
// (one lane's export goroutine) must be done with the upload first.
//
// It relies on what lifecycle guarantees of a Span: attribute keys are
// unique and values are scalars (string, int64, float64, bool). Other value
// types are still encoded as the SDK would, through allocating messages.
type spanEncoder struct {
	rs     tracepb.ResourceSpans
	ss     tracepb.ScopeSpans
	out    []*tracepb.ResourceSpans
	status tracepb.Status // the SDK always writes an empty (unset) status
	limits sdktrace.SpanLimits

	spans  []tracepb.Span
	ptrs   []*tracepb.Span
	ids    []byte
	kvs    []commonpb.KeyValue
	kvPtrs []*commonpb.KeyValue
	anys   []commonpb.AnyValue
	strs   []commonpb.AnyValue_StringValue
	ints   []commonpb.AnyValue_IntValue
	dbls   []commonpb.AnyValue_DoubleValue
	bools  []commonpb.AnyValue_BoolValue
}

// newSpanEncoder returns an encoder for spans of res. A nil res means the
// SDK's default resource, as for a tracer provider built without one; a
// resource is merged over resource.Environment() exactly as
// sdktrace.WithResource does. limits are the SDK's span limits
// (sdktrace.NewSpanLimits reads the OTEL_SPAN_* variables); the attribute
// count limit and the value length limit of string values are applied as the
// SDK applies them.
func newSpanEncoder(res *resource.Resource, limits sdktrace.SpanLimits) *spanEncoder {
	if res == nil {
		res = resource.Default()
	} else if merged, err := resource.Merge(resource.Environment(), res); err == nil {
		// On a schema URL conflict the SDK keeps the environment's resource
		// and reports the error to the global handler; so does this.
		res = merged
	} else {
		res = resource.Environment()
	}
	e := &spanEncoder{limits: limits}
	e.rs.Resource = &resourcepb.Resource{Attributes: keyValues(res.Iter())}
	e.rs.SchemaUrl = res.SchemaURL()
	e.ss.Scope = &commonpb.InstrumentationScope{Name: scopeName}
	e.rs.ScopeSpans = []*tracepb.ScopeSpans{&e.ss}
	e.out = []*tracepb.ResourceSpans{&e.rs}
	return e
}

// grow returns s with length n, reallocating only when its capacity is short.
// Reallocation drops the previous contents, which is fine: a batch's
// messages are all rebuilt by encode.
func grow[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n, n+n/4)
	}
	return s[:n]
}

// encode returns the OTLP request content for batch, valid until the next
// call.
func (e *spanEncoder) encode(batch []lifecycle.Span) []*tracepb.ResourceSpans {
	if len(batch) == 0 {
		return nil
	}
	nAttrs := 0
	for i := range batch {
		nAttrs += len(batch[i].Attrs)
	}
	e.spans = grow(e.spans, len(batch))
	e.ptrs = grow(e.ptrs, len(batch))
	e.ids = grow(e.ids, 32*len(batch))
	e.kvs = grow(e.kvs, nAttrs)
	e.kvPtrs = grow(e.kvPtrs, nAttrs)
	e.anys = grow(e.anys, nAttrs)
	// The oneof wrappers are typed: reserve each for every attribute, cheap
	// beside the allocations they save.
	e.strs = grow(e.strs, nAttrs)
	e.ints = grow(e.ints, nAttrs)
	e.dbls = grow(e.dbls, nAttrs)
	e.bools = grow(e.bools, nAttrs)

	a := 0 // next free attribute slot
	for i := range batch {
		s := &batch[i]
		id := e.ids[32*i : 32*i+32 : 32*i+32]
		copy(id[:16], s.TraceID[:])
		copy(id[16:24], s.SpanID[:])
		first := a
		dropped := 0
		limit := e.limits.AttributeCountLimit
		for j := range s.Attrs {
			kv := &s.Attrs[j]
			if !kv.Valid() || limit == 0 || (limit > 0 && a-first >= limit) {
				dropped++
				continue
			}
			e.kvs[a] = commonpb.KeyValue{Key: string(kv.Key), Value: e.value(a, kv.Value)}
			e.kvPtrs[a] = &e.kvs[a]
			a++
		}
		var attrs []*commonpb.KeyValue
		if a > first {
			attrs = e.kvPtrs[first:a:a]
		}
		var parent []byte
		flags := flagsRoot
		if s.ParentSpanID.IsValid() {
			copy(id[24:], s.ParentSpanID[:])
			parent = id[24:32:32]
			flags = flagsPhase
		}
		e.spans[i] = tracepb.Span{
			TraceId:                id[:16:16],
			SpanId:                 id[16:24:24],
			ParentSpanId:           parent,
			Flags:                  flags,
			Name:                   s.Name,
			Kind:                   tracepb.Span_SPAN_KIND_INTERNAL,
			StartTimeUnixNano:      uint64(max(0, s.Start)),
			EndTimeUnixNano:        uint64(max(0, s.End)),
			Attributes:             attrs,
			DroppedAttributesCount: uint32(min(dropped, 1<<32-1)), //nolint:gosec // clamped
			Status:                 &e.status,
		}
		e.ptrs[i] = &e.spans[i]
	}
	e.ss.Spans = e.ptrs
	return e.out
}

// value encodes one attribute value into slot a of the reused messages.
func (e *spanEncoder) value(a int, v attribute.Value) *commonpb.AnyValue {
	av := &e.anys[a]
	switch v.Type() {
	case attribute.STRING:
		e.strs[a] = commonpb.AnyValue_StringValue{StringValue: truncate(e.limits.AttributeValueLengthLimit, v.AsString())}
		*av = commonpb.AnyValue{Value: &e.strs[a]}
	case attribute.INT64:
		e.ints[a] = commonpb.AnyValue_IntValue{IntValue: v.AsInt64()}
		*av = commonpb.AnyValue{Value: &e.ints[a]}
	case attribute.FLOAT64:
		e.dbls[a] = commonpb.AnyValue_DoubleValue{DoubleValue: v.AsFloat64()}
		*av = commonpb.AnyValue{Value: &e.dbls[a]}
	case attribute.BOOL:
		e.bools[a] = commonpb.AnyValue_BoolValue{BoolValue: v.AsBool()}
		*av = commonpb.AnyValue{Value: &e.bools[a]}
	default:
		// lifecycle never produces these; encode them as the SDK's
		// transform does rather than fail.
		return anyValue(v)
	}
	return av
}

// truncate shortens s to limit characters as the SDK does for a valid UTF-8
// string; a negative limit means none. Invalid UTF-8 is kept as it is (the
// SDK rebuilds it): the schema decoder only produces valid strings.
func truncate(limit int, s string) string {
	if limit < 0 || len(s) <= limit || !utf8.ValidString(s) {
		return s
	}
	n := 0
	for i := range s {
		if n == limit {
			return s[:i]
		}
		n++
	}
	return s
}

// keyValues converts resource or scope attributes, as otlptrace's transform
// does.
func keyValues(it attribute.Iterator) []*commonpb.KeyValue {
	if it.Len() == 0 {
		return nil
	}
	out := make([]*commonpb.KeyValue, 0, it.Len())
	for it.Next() {
		kv := it.Attribute()
		out = append(out, &commonpb.KeyValue{Key: string(kv.Key), Value: anyValue(kv.Value)})
	}
	return out
}

func kvSlice(kvs []attribute.KeyValue) []*commonpb.KeyValue {
	if len(kvs) == 0 {
		return nil
	}
	out := make([]*commonpb.KeyValue, 0, len(kvs))
	for _, kv := range kvs {
		out = append(out, &commonpb.KeyValue{Key: string(kv.Key), Value: anyValue(kv.Value)})
	}
	return out
}

// anyValue converts any attribute value the way otlptrace's transform does,
// allocating its messages.
func anyValue(v attribute.Value) *commonpb.AnyValue {
	av := new(commonpb.AnyValue)
	switch v.Type() {
	case attribute.BOOL:
		av.Value = &commonpb.AnyValue_BoolValue{BoolValue: v.AsBool()}
	case attribute.INT64:
		av.Value = &commonpb.AnyValue_IntValue{IntValue: v.AsInt64()}
	case attribute.FLOAT64:
		av.Value = &commonpb.AnyValue_DoubleValue{DoubleValue: v.AsFloat64()}
	case attribute.STRING:
		av.Value = &commonpb.AnyValue_StringValue{StringValue: v.AsString()}
	case attribute.BYTESLICE:
		av.Value = &commonpb.AnyValue_BytesValue{BytesValue: v.AsByteSlice()}
	case attribute.BOOLSLICE:
		vals := v.AsBoolSlice()
		out := make([]*commonpb.AnyValue, len(vals))
		for i, x := range vals {
			out[i] = &commonpb.AnyValue{Value: &commonpb.AnyValue_BoolValue{BoolValue: x}}
		}
		av.Value = &commonpb.AnyValue_ArrayValue{ArrayValue: &commonpb.ArrayValue{Values: out}}
	case attribute.INT64SLICE:
		vals := v.AsInt64Slice()
		out := make([]*commonpb.AnyValue, len(vals))
		for i, x := range vals {
			out[i] = &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: x}}
		}
		av.Value = &commonpb.AnyValue_ArrayValue{ArrayValue: &commonpb.ArrayValue{Values: out}}
	case attribute.FLOAT64SLICE:
		vals := v.AsFloat64Slice()
		out := make([]*commonpb.AnyValue, len(vals))
		for i, x := range vals {
			out[i] = &commonpb.AnyValue{Value: &commonpb.AnyValue_DoubleValue{DoubleValue: x}}
		}
		av.Value = &commonpb.AnyValue_ArrayValue{ArrayValue: &commonpb.ArrayValue{Values: out}}
	case attribute.STRINGSLICE:
		vals := v.AsStringSlice()
		out := make([]*commonpb.AnyValue, len(vals))
		for i, x := range vals {
			out[i] = &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: x}}
		}
		av.Value = &commonpb.AnyValue_ArrayValue{ArrayValue: &commonpb.ArrayValue{Values: out}}
	case attribute.SLICE:
		vals := v.AsSlice()
		out := make([]*commonpb.AnyValue, len(vals))
		for i, x := range vals {
			out[i] = anyValue(x)
		}
		av.Value = &commonpb.AnyValue_ArrayValue{ArrayValue: &commonpb.ArrayValue{Values: out}}
	case attribute.MAP:
		av.Value = &commonpb.AnyValue_KvlistValue{KvlistValue: &commonpb.KeyValueList{Values: kvSlice(v.AsMap())}}
	case attribute.EMPTY:
	default:
		av.Value = &commonpb.AnyValue_StringValue{StringValue: "INVALID"}
	}
	return av
}
