package export

import (
	"math"
	"unicode/utf8"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/encoding/protowire"

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
	// flagsLink is or-ed into a link's W3C trace flags: a link is to a
	// remote span context (the traceparent's), known to be remote.
	flagsLink = uint32(tracepb.SpanFlags_SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK | tracepb.SpanFlags_SPAN_FLAGS_CONTEXT_IS_REMOTE_MASK)
)

// linkFlags are the OTLP flags of a span link, as the SDK's transform
// writes them.
func linkFlags(l *lifecycle.Link) uint32 { return uint32(l.Flags) | flagsLink }

// keptLinks returns the links of s the SDK keeps and how many dropped links
// it reports: with a link count limit n >= 0 it keeps the last n (its queue
// evicts the oldest), a negative limit keeps all. A span that keeps none
// reports none dropped either (the SDK copies the count with the links).
func keptLinks(s *lifecycle.Span, limit int) ([]lifecycle.Link, int) {
	links := s.Links
	if limit >= 0 && len(links) > limit {
		if limit == 0 {
			return nil, 0
		}
		return links[len(links)-limit:], len(links) - limit
	}
	return links, 0
}

// spanEncoder builds the OTLP request of one batch straight from
// lifecycle.Span values: the same ResourceSpans the SDK path produces (SDK
// span, then otlptrace's transform), so that the marshalled request is the
// same byte for byte, without an SDK span or a conversion per span.
//
// By default the spans are written in protobuf wire format by hand, in the
// order and encoding protobuf-go's marshaller uses, and handed over as the
// ScopeSpans message's unknown fields: protobuf marshals those verbatim after
// the known fields (here only the scope, field 1), which puts them exactly
// where the repeated spans field (2) would be. This spares the gRPC codec
// sizing and marshalling some twenty messages per span, the largest cost
// left on the export side. A batch the wire writer does not handle (an
// attribute value that is not a scalar, a string that is not valid UTF-8,
// which protobuf-go refuses to marshal) is built as messages instead
// (encodeMessages), so it fails or succeeds exactly as on the SDK path.
//
// Every buffer and message of a batch lives in slices the encoder reuses, so
// encoding allocates nothing once they have grown to the largest batch. What
// encode returns is valid until the next encode: the caller (one lane's
// export goroutine) must be done with the upload first.
//
// It relies on what lifecycle guarantees of a Span: attribute keys are
// unique (the SDK would deduplicate them) and values are scalars.
type spanEncoder struct {
	rs     tracepb.ResourceSpans
	ss     tracepb.ScopeSpans
	out    []*tracepb.ResourceSpans
	status tracepb.Status // the SDK always writes an empty (unset) status
	limits sdktrace.SpanLimits
	raw    []byte     // the wire-format spans of the last batch
	kept   []keptAttr // scratch: the attributes a span keeps

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
	links  []tracepb.Span_Link
	lptrs  []*tracepb.Span_Link
	lids   []byte
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
	} else {
		// The environment's resource has no schema URL, so Merge cannot
		// conflict; if it ever did, it would still return the merged
		// attributes, which is what the SDK uses as well.
		res, _ = resource.Merge(resource.Environment(), res)
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
	raw, ok := e.appendSpans(e.raw[:0], batch)
	e.raw = raw
	if !ok {
		return e.encodeMessages(batch)
	}
	e.ss.Spans = nil
	e.ss.ProtoReflect().SetUnknown(raw)
	return e.out
}

// encodeMessages returns the OTLP request content for batch as protobuf
// messages, valid until the next call.
func (e *spanEncoder) encodeMessages(batch []lifecycle.Span) []*tracepb.ResourceSpans {
	if len(batch) == 0 {
		return nil
	}
	e.ss.ProtoReflect().SetUnknown(nil)
	nAttrs, nLinks := 0, 0
	for i := range batch {
		nAttrs += len(batch[i].Attrs)
		nLinks += len(batch[i].Links)
	}
	e.links = grow(e.links, nLinks)
	e.lptrs = grow(e.lptrs, nLinks)
	e.lids = grow(e.lids, 24*nLinks)
	nl := 0 // next free link slot
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
		var links []*tracepb.Span_Link
		kept, droppedLinks := keptLinks(s, e.limits.LinkCountLimit)
		if len(kept) > 0 {
			first := nl
			for j := range kept {
				l := &kept[j]
				id := e.lids[24*nl : 24*nl+24 : 24*nl+24]
				copy(id[:16], l.TraceID[:])
				copy(id[16:], l.SpanID[:])
				e.links[nl] = tracepb.Span_Link{TraceId: id[:16:16], SpanId: id[16:24:24], Flags: linkFlags(l)}
				e.lptrs[nl] = &e.links[nl]
				nl++
			}
			links = e.lptrs[first:nl:nl]
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
			Links:                  links,
			DroppedLinksCount:      uint32(min(droppedLinks, 1<<32-1)), //nolint:gosec // clamped
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

// Field numbers of the messages written, as in the OTLP protos.
const (
	fieldScopeSpansSpan protowire.Number = 2

	fieldSpanTraceID  protowire.Number = 1
	fieldSpanSpanID   protowire.Number = 2
	fieldSpanParentID protowire.Number = 4
	fieldSpanName     protowire.Number = 5
	fieldSpanKind     protowire.Number = 6
	fieldSpanStart    protowire.Number = 7
	fieldSpanEnd      protowire.Number = 8
	fieldSpanAttr     protowire.Number = 9
	fieldSpanDropped  protowire.Number = 10
	fieldSpanLink     protowire.Number = 13
	fieldSpanDropLink protowire.Number = 14
	fieldSpanStatus   protowire.Number = 15
	fieldSpanFlags    protowire.Number = 16

	fieldLinkTraceID protowire.Number = 1
	fieldLinkSpanID  protowire.Number = 2
	fieldLinkFlags   protowire.Number = 6

	fieldKVKey   protowire.Number = 1
	fieldKVValue protowire.Number = 2

	fieldAnyString protowire.Number = 1
	fieldAnyBool   protowire.Number = 2
	fieldAnyInt    protowire.Number = 3
	fieldAnyDouble protowire.Number = 4
)

// Wire-format tags of the fields written. Every field number but
// Span.flags's is below 16, so those tags are one byte.
var (
	tagScopeSpansSpan = tag1(fieldScopeSpansSpan, protowire.BytesType)
	tagSpanTraceID    = tag1(fieldSpanTraceID, protowire.BytesType)
	tagSpanSpanID     = tag1(fieldSpanSpanID, protowire.BytesType)
	tagSpanParentID   = tag1(fieldSpanParentID, protowire.BytesType)
	tagSpanName       = tag1(fieldSpanName, protowire.BytesType)
	tagSpanKind       = tag1(fieldSpanKind, protowire.VarintType)
	tagSpanStart      = tag1(fieldSpanStart, protowire.Fixed64Type)
	tagSpanEnd        = tag1(fieldSpanEnd, protowire.Fixed64Type)
	tagSpanAttr       = tag1(fieldSpanAttr, protowire.BytesType)
	tagSpanDropped    = tag1(fieldSpanDropped, protowire.VarintType)
	tagSpanLink       = tag1(fieldSpanLink, protowire.BytesType)
	tagSpanDropLink   = tag1(fieldSpanDropLink, protowire.VarintType)
	tagLinkTraceID    = tag1(fieldLinkTraceID, protowire.BytesType)
	tagLinkSpanID     = tag1(fieldLinkSpanID, protowire.BytesType)
	tagLinkFlags      = tag1(fieldLinkFlags, protowire.Fixed32Type)
	tagSpanStatus     = tag1(fieldSpanStatus, protowire.BytesType)
	tagSpanFlags      = protowire.AppendTag(nil, fieldSpanFlags, protowire.Fixed32Type)

	tagKVKey   = tag1(fieldKVKey, protowire.BytesType)
	tagKVValue = tag1(fieldKVValue, protowire.BytesType)

	tagAnyString = tag1(fieldAnyString, protowire.BytesType)
	tagAnyBool   = tag1(fieldAnyBool, protowire.VarintType)
	tagAnyInt    = tag1(fieldAnyInt, protowire.VarintType)
	tagAnyDouble = tag1(fieldAnyDouble, protowire.Fixed64Type)

	// spanFixedSize is what every span holds whatever its content: the
	// trace and span IDs, the kind, the empty status and the flags.
	spanFixedSize = protowire.SizeTag(fieldSpanTraceID) + protowire.SizeBytes(16) +
		protowire.SizeTag(fieldSpanSpanID) + protowire.SizeBytes(8) +
		protowire.SizeTag(fieldSpanKind) + protowire.SizeVarint(uint64(tracepb.Span_SPAN_KIND_INTERNAL)) +
		protowire.SizeTag(fieldSpanStatus) + protowire.SizeBytes(0) +
		protowire.SizeTag(fieldSpanFlags) + protowire.SizeFixed32()
	parentSize = protowire.SizeTag(fieldSpanParentID) + protowire.SizeBytes(8)
	// linkSize is a Span.Link message: trace and span IDs and the flags,
	// which always have the remote bits set (no trace_state, no
	// attributes).
	linkSize = protowire.SizeTag(fieldLinkTraceID) + protowire.SizeBytes(16) +
		protowire.SizeTag(fieldLinkSpanID) + protowire.SizeBytes(8) +
		protowire.SizeTag(fieldLinkFlags) + protowire.SizeFixed32()
	timeSize = protowire.SizeTag(fieldSpanStart) + protowire.SizeFixed64()
)

// tag1 is the one-byte tag of a field numbered below 16.
func tag1(n protowire.Number, t protowire.Type) byte { return byte(protowire.EncodeTag(n, t)) }

// appendSpans appends batch as repeated ScopeSpans.spans fields in the wire
// format protobuf-go writes for the messages encodeMessages builds: fields
// in number order, proto3 zero values left out, oneof members always
// written. false means a span needs the message path.
func (e *spanEncoder) appendSpans(b []byte, batch []lifecycle.Span) ([]byte, bool) {
	strLimit := e.limits.AttributeValueLengthLimit
	for i := range batch {
		s := &batch[i]
		if !utf8.ValidString(s.Name) {
			return b, false
		}
		// Sizes first: every message is length-prefixed.
		kept, dropped, ok := e.keptAttrs(s)
		if !ok {
			return b, false
		}
		size := spanFixedSize
		if s.ParentSpanID.IsValid() {
			size += parentSize
		}
		if s.Name != "" {
			size += protowire.SizeTag(fieldSpanName) + protowire.SizeBytes(len(s.Name))
		}
		if s.Start > 0 {
			size += timeSize
		}
		if s.End > 0 {
			size += timeSize
		}
		for _, k := range kept {
			size += protowire.SizeTag(fieldSpanAttr) + protowire.SizeBytes(k.size)
		}
		if dropped > 0 {
			size += protowire.SizeTag(fieldSpanDropped) + protowire.SizeVarint(uint64(dropped))
		}
		links, droppedLinks := keptLinks(s, e.limits.LinkCountLimit)
		size += len(links) * (protowire.SizeTag(fieldSpanLink) + protowire.SizeBytes(linkSize))
		if droppedLinks > 0 {
			size += protowire.SizeTag(fieldSpanDropLink) + protowire.SizeVarint(uint64(droppedLinks))
		}

		b = append(b, tagScopeSpansSpan)
		b = appendVarint(b, uint64(size))
		b = append(b, tagSpanTraceID)
		b = appendBytes(b, s.TraceID[:])
		b = append(b, tagSpanSpanID)
		b = appendBytes(b, s.SpanID[:])
		flags := flagsRoot
		if s.ParentSpanID.IsValid() {
			b = append(b, tagSpanParentID)
			b = appendBytes(b, s.ParentSpanID[:])
			flags = flagsPhase
		}
		if s.Name != "" {
			b = append(b, tagSpanName)
			b = appendString(b, s.Name)
		}
		b = append(b, tagSpanKind)
		b = appendVarint(b, uint64(tracepb.Span_SPAN_KIND_INTERNAL))
		if s.Start > 0 {
			b = append(b, tagSpanStart)
			b = protowire.AppendFixed64(b, uint64(s.Start))
		}
		if s.End > 0 {
			b = append(b, tagSpanEnd)
			b = protowire.AppendFixed64(b, uint64(s.End))
		}
		for _, k := range kept {
			kv := &s.Attrs[k.index]
			b = append(b, tagSpanAttr)
			b = appendVarint(b, uint64(k.size))
			b = append(b, tagKVKey)
			b = appendString(b, string(kv.Key))
			b = append(b, tagKVValue)
			switch kv.Value.Type() {
			case attribute.STRING:
				v := truncate(strLimit, kv.Value.AsString())
				b = appendVarint(b, uint64(protowire.SizeTag(fieldAnyString)+protowire.SizeBytes(len(v))))
				b = append(b, tagAnyString)
				b = appendString(b, v)
			case attribute.BOOL:
				b = appendVarint(b, uint64(protowire.SizeTag(fieldAnyBool)+1))
				b = append(b, tagAnyBool)
				b = appendVarint(b, protowire.EncodeBool(kv.Value.AsBool()))
			case attribute.INT64:
				v := uint64(kv.Value.AsInt64()) //nolint:gosec // protobuf's int64 encoding
				b = appendVarint(b, uint64(protowire.SizeTag(fieldAnyInt)+protowire.SizeVarint(v)))
				b = append(b, tagAnyInt)
				b = appendVarint(b, v)
			case attribute.FLOAT64:
				b = appendVarint(b, uint64(protowire.SizeTag(fieldAnyDouble)+protowire.SizeFixed64()))
				b = append(b, tagAnyDouble)
				b = protowire.AppendFixed64(b, math.Float64bits(kv.Value.AsFloat64()))
			}
		}
		if dropped > 0 {
			b = append(b, tagSpanDropped)
			b = appendVarint(b, uint64(dropped))
		}
		for j := range links {
			l := &links[j]
			b = append(b, tagSpanLink, byte(linkSize), tagLinkTraceID) // linkSize < 128: a one-byte length
			b = appendBytes(b, l.TraceID[:])
			b = append(b, tagLinkSpanID)
			b = appendBytes(b, l.SpanID[:])
			b = append(b, tagLinkFlags)
			b = protowire.AppendFixed32(b, linkFlags(l))
		}
		if droppedLinks > 0 {
			b = append(b, tagSpanDropLink)
			b = appendVarint(b, uint64(droppedLinks))
		}
		b = append(b, tagSpanStatus)
		b = appendVarint(b, 0)
		b = append(b, tagSpanFlags...)
		b = protowire.AppendFixed32(b, flags)
	}
	return b, true
}

// keptAttr is an attribute of a span that the SDK keeps, with the encoded
// size of its KeyValue message.
type keptAttr struct{ index, size int }

// keptAttrs returns the attributes of s the SDK keeps (valid ones, up to the
// count limit) and how many it drops, and false when the wire writer cannot
// write one of them. The result lives in a reused slice.
func (e *spanEncoder) keptAttrs(s *lifecycle.Span) (kept []keptAttr, dropped int, ok bool) {
	kept = e.kept[:0]
	limit := e.limits.AttributeCountLimit
	for j := range s.Attrs {
		if !s.Attrs[j].Valid() || limit == 0 || (limit > 0 && len(kept) >= limit) {
			dropped++
			continue
		}
		n, ok := kvSize(&s.Attrs[j], e.limits.AttributeValueLengthLimit)
		if !ok {
			return nil, 0, false
		}
		kept = append(kept, keptAttr{index: j, size: n})
	}
	e.kept = kept
	return kept, min(dropped, 1<<32-1), true
}

// kvSize returns the encoded size of one KeyValue message, and false when
// the wire writer cannot write it.
func kvSize(kv *attribute.KeyValue, strLimit int) (int, bool) {
	if !utf8.ValidString(string(kv.Key)) {
		return 0, false
	}
	var any int
	switch kv.Value.Type() {
	case attribute.STRING:
		v := truncate(strLimit, kv.Value.AsString())
		if !utf8.ValidString(v) {
			return 0, false
		}
		any = protowire.SizeTag(fieldAnyString) + protowire.SizeBytes(len(v))
	case attribute.BOOL:
		any = protowire.SizeTag(fieldAnyBool) + 1
	case attribute.INT64:
		any = protowire.SizeTag(fieldAnyInt) + protowire.SizeVarint(uint64(kv.Value.AsInt64())) //nolint:gosec // protobuf's int64 encoding
	case attribute.FLOAT64:
		any = protowire.SizeTag(fieldAnyDouble) + protowire.SizeFixed64()
	default:
		return 0, false
	}
	return protowire.SizeTag(fieldKVKey) + protowire.SizeBytes(len(kv.Key)) + protowire.SizeTag(fieldKVValue) + protowire.SizeBytes(any), true
}

// appendVarint is protowire.AppendVarint with the one-byte case inlined:
// most lengths and values written are below 128, and protowire's function
// is too large for the compiler to inline.
func appendVarint(b []byte, v uint64) []byte {
	if v < 0x80 {
		return append(b, byte(v))
	}
	return protowire.AppendVarint(b, v)
}

// appendBytes is protowire.AppendBytes over appendVarint.
func appendBytes(b, v []byte) []byte { return append(appendVarint(b, uint64(len(v))), v...) }

// appendString is protowire.AppendString over appendVarint.
func appendString(b []byte, v string) []byte { return append(appendVarint(b, uint64(len(v))), v...) }

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
		av.Value = arrayOf(v.AsBoolSlice(), func(x bool) *commonpb.AnyValue {
			return &commonpb.AnyValue{Value: &commonpb.AnyValue_BoolValue{BoolValue: x}}
		})
	case attribute.INT64SLICE:
		av.Value = arrayOf(v.AsInt64Slice(), func(x int64) *commonpb.AnyValue {
			return &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: x}}
		})
	case attribute.FLOAT64SLICE:
		av.Value = arrayOf(v.AsFloat64Slice(), func(x float64) *commonpb.AnyValue {
			return &commonpb.AnyValue{Value: &commonpb.AnyValue_DoubleValue{DoubleValue: x}}
		})
	case attribute.STRINGSLICE:
		av.Value = arrayOf(v.AsStringSlice(), func(x string) *commonpb.AnyValue {
			return &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: x}}
		})
	case attribute.SLICE:
		av.Value = arrayOf(v.AsSlice(), anyValue)
	case attribute.MAP:
		av.Value = &commonpb.AnyValue_KvlistValue{KvlistValue: &commonpb.KeyValueList{Values: kvSlice(v.AsMap())}}
	case attribute.EMPTY:
	default:
		av.Value = &commonpb.AnyValue_StringValue{StringValue: "INVALID"}
	}
	return av
}

// arrayOf converts a slice attribute's values with wrap, as the SDK's
// transform does.
func arrayOf[T any](vals []T, wrap func(T) *commonpb.AnyValue) *commonpb.AnyValue_ArrayValue {
	out := make([]*commonpb.AnyValue, len(vals))
	for i, x := range vals {
		out[i] = wrap(x)
	}
	return &commonpb.AnyValue_ArrayValue{ArrayValue: &commonpb.ArrayValue{Values: out}}
}
