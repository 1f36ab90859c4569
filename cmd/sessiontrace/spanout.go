package main

import (
	"bufio"
	"cmp"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/sessiontrace/sessiontrace/lifecycle"
	"github.com/sessiontrace/sessiontrace/schema"
)

// otlpSpanKindInternal is SPAN_KIND_INTERNAL, the kind of every span the
// lifecycle produces.
const otlpSpanKindInternal = 1

// appendSpanJSON appends s as one line of OTLP JSON (the protobuf JSON
// mapping OTLP/HTTP uses): hex IDs, times as decimal strings, attributes as
// key/value objects, links with the OTLP link flags the exporters send.
// Fields with default values are left out, as the mapping does, so a root
// span has no parentSpanId and most spans no links.
func appendSpanJSON(b []byte, s *lifecycle.Span) []byte {
	b = append(b, `{"traceId":"`...)
	b = hex.AppendEncode(b, s.TraceID[:])
	b = append(b, `","spanId":"`...)
	b = hex.AppendEncode(b, s.SpanID[:])
	b = append(b, '"')
	if s.ParentSpanID.IsValid() {
		b = append(b, `,"parentSpanId":"`...)
		b = hex.AppendEncode(b, s.ParentSpanID[:])
		b = append(b, '"')
	}
	b = append(b, `,"name":`...)
	b = appendJSONString(b, s.Name)
	b = append(b, `,"kind":`...)
	b = strconv.AppendInt(b, otlpSpanKindInternal, 10)
	b = append(b, `,"startTimeUnixNano":"`...)
	b = strconv.AppendInt(b, s.Start, 10)
	b = append(b, `","endTimeUnixNano":"`...)
	b = strconv.AppendInt(b, s.End, 10)
	b = append(b, '"')
	if len(s.Attrs) > 0 {
		b = append(b, `,"attributes":[`...)
		for i, kv := range s.Attrs {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"key":`...)
			b = appendJSONString(b, string(kv.Key))
			b = append(b, `,"value":`...)
			b = appendAnyValue(b, kv.Value)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	if len(s.Links) > 0 {
		b = append(b, `,"links":[`...)
		for i, l := range s.Links {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"traceId":"`...)
			b = hex.AppendEncode(b, l.TraceID[:])
			b = append(b, `","spanId":"`...)
			b = hex.AppendEncode(b, l.SpanID[:])
			b = append(b, `","flags":`...)
			b = strconv.AppendUint(b, uint64(otlpLinkFlags(l)), 10)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	return append(b, "}\n"...)
}

// otlpLinkFlags are the OTLP flags of a span link as both export paths
// write them: the W3C trace flags, and "is remote" known and set.
func otlpLinkFlags(l lifecycle.Link) uint32 {
	return uint32(l.Flags) | uint32(tracepb.SpanFlags_SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK|tracepb.SpanFlags_SPAN_FLAGS_CONTEXT_IS_REMOTE_MASK)
}

// appendLinks appends " link=<traceparent>" for each link of s, for the
// tree: hex digits only, so nothing a producer sent reaches the terminal.
func appendLinks(b []byte, s *lifecycle.Span) []byte {
	for _, l := range s.Links {
		b = append(b, " link="...)
		b = schema.TraceLink{TraceID: l.TraceID, SpanID: l.SpanID, Flags: byte(l.Flags)}.AppendTraceparent(b)
	}
	return b
}

func appendAnyValue(b []byte, v attribute.Value) []byte {
	switch v.Type() {
	case attribute.BOOL:
		b = strconv.AppendBool(append(b, `{"boolValue":`...), v.AsBool())
		return append(b, '}')
	case attribute.INT64:
		b = append(b, `{"intValue":"`...)
		b = strconv.AppendInt(b, v.AsInt64(), 10)
		return append(b, `"}`...)
	case attribute.FLOAT64:
		f := v.AsFloat64()
		switch {
		case math.IsNaN(f):
			return append(b, `{"doubleValue":"NaN"}`...)
		case math.IsInf(f, 1):
			return append(b, `{"doubleValue":"Infinity"}`...)
		case math.IsInf(f, -1):
			return append(b, `{"doubleValue":"-Infinity"}`...)
		}
		b = append(b, `{"doubleValue":`...)
		b = strconv.AppendFloat(b, f, 'g', -1, 64)
		return append(b, '}')
	default:
		b = append(b, `{"stringValue":`...)
		b = appendJSONString(b, v.String())
		return append(b, '}')
	}
}

// appendJSONString appends s as a JSON string that is also safe to print:
// besides what JSON requires, it escapes every rune that is not printable
// (C1 controls, bidi overrides, line separators, other invisible format
// characters) as \uXXXX, and writes invalid UTF-8 bytes as \ufffd, one per
// byte, as encoding/json does.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, `\n`...)
			case c == '\r':
				b = append(b, `\r`...)
			case c == '\t':
				b = append(b, `\t`...)
			case c < 0x20 || c == 0x7f:
				b = appendUnicodeEscape(b, rune(c))
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, `\ufffd`...)
		case !strconv.IsPrint(r):
			if r1, r2 := utf16.EncodeRune(r); r1 != utf8.RuneError {
				b = appendUnicodeEscape(appendUnicodeEscape(b, r1), r2)
			} else {
				b = appendUnicodeEscape(b, r)
			}
		default:
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}

func appendUnicodeEscape(b []byte, r rune) []byte {
	const hexDigits = "0123456789abcdef"
	return append(b, '\\', 'u', hexDigits[r>>12&0xf], hexDigits[r>>8&0xf], hexDigits[r>>4&0xf], hexDigits[r&0xf])
}

// jsonSink writes every finished span as one OTLP JSON line.
type jsonSink struct {
	w   *bufio.Writer
	buf []byte
}

func newJSONSink(w io.Writer) *jsonSink { return &jsonSink{w: bufio.NewWriterSize(w, 64<<10)} }

func (s *jsonSink) Write(_ context.Context, spans []lifecycle.Span) error {
	for i := range spans {
		s.buf = appendSpanJSON(s.buf[:0], &spans[i])
		if _, err := s.w.Write(s.buf); err != nil {
			return fmt.Errorf("write span: %w", err)
		}
	}
	return nil
}

func (s *jsonSink) Close(context.Context) error {
	if err := s.w.Flush(); err != nil {
		return fmt.Errorf("write spans: %w", err)
	}
	return nil
}

// treeSink prints a readable tree per session once its root span arrives;
// phase spans finish (and arrive) before their root.
type treeSink struct {
	w       *bufio.Writer
	builder treeBuilder
}

func newTreeSink(w io.Writer) *treeSink { return &treeSink{w: bufio.NewWriter(w)} }

func (s *treeSink) Write(_ context.Context, spans []lifecycle.Span) error {
	for _, sp := range spans {
		if tree, ok := s.builder.add(sp); ok {
			renderTree(s.w, tree)
		}
	}
	return nil
}

// Close prints the phases of sessions whose root never came (still open at
// the end of the input), so no span is silently left out.
func (s *treeSink) Close(context.Context) error {
	for _, tree := range s.builder.orphans() {
		renderTree(s.w, tree)
	}
	if err := s.w.Flush(); err != nil {
		return fmt.Errorf("write trees: %w", err)
	}
	return nil
}

// treeBuilder groups spans by trace until the root arrives.
type treeBuilder struct {
	pending map[trace.TraceID][]lifecycle.Span
	order   []trace.TraceID // first-seen order, for deterministic orphans
}

// add keeps s and returns the whole trace when s is its root.
func (b *treeBuilder) add(s lifecycle.Span) ([]lifecycle.Span, bool) {
	if b.pending == nil {
		b.pending = map[trace.TraceID][]lifecycle.Span{}
	}
	if _, seen := b.pending[s.TraceID]; !seen {
		b.order = append(b.order, s.TraceID)
	}
	tree := append(b.pending[s.TraceID], s)
	if !s.IsRoot() {
		b.pending[s.TraceID] = tree
		return nil, false
	}
	delete(b.pending, s.TraceID)
	return tree, true
}

// orphans returns the traces whose root has not arrived, in first-seen
// order, and forgets them.
func (b *treeBuilder) orphans() [][]lifecycle.Span {
	var out [][]lifecycle.Span
	for _, id := range b.order {
		if t, ok := b.pending[id]; ok {
			out = append(out, t)
		}
	}
	b.pending, b.order = nil, nil
	return out
}

// renderTree prints one session: the root on one line, then its phases in
// start order with their offset from the session start, duration and
// attributes (player.id left out: it is on the root line).
func renderTree(w io.Writer, spans []lifecycle.Span) {
	var root *lifecycle.Span
	phases := make([]lifecycle.Span, 0, len(spans))
	for i := range spans {
		if spans[i].IsRoot() {
			root = &spans[i]
		} else {
			phases = append(phases, spans[i])
		}
	}
	slices.SortStableFunc(phases, func(a, b lifecycle.Span) int {
		return cmp.Or(cmp.Compare(a.Start, b.Start), cmp.Compare(a.End, b.End))
	})
	var origin int64
	if root != nil {
		origin = root.Start
		a := attrMap(root.Attrs)
		fmt.Fprintf(w, "%s %s  trace %s  %s  %ss  %s (%s) in %s, %s",
			safeText(root.Name), safeText(a["player.id"]), root.TraceID, time.Unix(0, root.Start).UTC().Format(time.RFC3339),
			safeText(a["session.duration_seconds"]), safeText(a["session.end_type"]), safeText(a["session.end_reason"]),
			safeText(a["session.end_phase"]), plural(a["session.matches_played"], "match", "matches"))
		if a["session.start_observed"] == "false" {
			fmt.Fprint(w, "  (login not observed)")
		}
		if len(root.Links) > 0 {
			fmt.Fprintf(w, " %s", appendLinks(nil, root))
		}
		fmt.Fprintln(w)
	} else if len(phases) > 0 {
		origin = phases[0].Start
		a := attrMap(phases[0].Attrs)
		fmt.Fprintf(w, "(open session) %s  trace %s  root not ended yet\n", safeText(a["player.id"]), phases[0].TraceID)
	}
	nameWidth := 0
	for _, p := range phases {
		nameWidth = max(nameWidth, len(safeText(p.Name)))
	}
	for i, p := range phases {
		branch := "├─"
		if i == len(phases)-1 {
			branch = "└─"
		}
		var attrs []string
		for _, kv := range p.Attrs {
			if kv.Key == lifecycle.KeyPlayerID {
				continue
			}
			attrs = append(attrs, safeText(string(kv.Key))+"="+safeText(kv.Value.String()))
		}
		line := fmt.Sprintf("  %s %-*s %+9.1fs %8.1fs  %s%s", branch, nameWidth, safeText(p.Name),
			float64(p.Start-origin)/1e9, float64(p.End-p.Start)/1e9, strings.Join(attrs, " "), appendLinks(nil, &p))
		fmt.Fprintln(w, strings.TrimRight(line, " "))
	}
}

func attrMap(kvs []attribute.KeyValue) map[string]string {
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		m[string(kv.Key)] = kv.Value.String()
	}
	return m
}

// spanFromOTLP converts a received OTLP span back into the lifecycle's plain
// form, so received and replayed spans print the same way.
func spanFromOTLP(sp *tracepb.Span) lifecycle.Span {
	s := lifecycle.Span{
		Name:  sp.GetName(),
		Start: int64(sp.GetStartTimeUnixNano()),
		End:   int64(sp.GetEndTimeUnixNano()),
	}
	copy(s.TraceID[:], sp.GetTraceId())
	copy(s.SpanID[:], sp.GetSpanId())
	copy(s.ParentSpanID[:], sp.GetParentSpanId())
	for _, l := range sp.GetLinks() {
		var sl lifecycle.Link
		copy(sl.TraceID[:], l.GetTraceId())
		copy(sl.SpanID[:], l.GetSpanId())
		sl.Flags = trace.TraceFlags(l.GetFlags() & 0xff)
		s.Links = append(s.Links, sl)
	}
	for _, kv := range sp.GetAttributes() {
		k := attribute.Key(kv.GetKey())
		switch v := kv.GetValue().GetValue().(type) {
		case *commonpb.AnyValue_StringValue:
			s.Attrs = append(s.Attrs, k.String(v.StringValue))
		case *commonpb.AnyValue_BoolValue:
			s.Attrs = append(s.Attrs, k.Bool(v.BoolValue))
		case *commonpb.AnyValue_IntValue:
			s.Attrs = append(s.Attrs, k.Int64(v.IntValue))
		case *commonpb.AnyValue_DoubleValue:
			s.Attrs = append(s.Attrs, k.Float64(v.DoubleValue))
		default:
			s.Attrs = append(s.Attrs, k.String(kv.GetValue().String()))
		}
	}
	return s
}
