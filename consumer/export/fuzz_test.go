package export

import (
	"bytes"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/sessiontrace/sessiontrace/lifecycle"
)

// FuzzEncoderMatchesMarshal holds the wire-format writer to protobuf-go:
// for any batch, the request encode builds must marshal to the same bytes
// as the messages encodeMessages builds for it, as gRPC's codec marshals
// them, or fail the same way.
//
//	go test ./consumer/export -run '^$' -fuzz FuzzEncoderMatchesMarshal -fuzztime 3m
func FuzzEncoderMatchesMarshal(f *testing.F) {
	f.Add("session", int64(1), int64(2), true, "player.id", "p-1", int64(-5), 3.25, true, uint8(4), int8(-1), int8(-1))
	f.Add("", int64(0), int64(-1), false, "", "", int64(0), 0.0, false, uint8(0), int8(0), int8(0))
	f.Add("h\xe9llo", int64(1<<62), int64(1<<40), true, "k\xff", "v\xc3", int64(1<<40), -0.0, true, uint8(9), int8(2), int8(3))
	f.Add("phase.loading", int64(1), int64(300), true, "unicode", "héllo wörld ✓", int64(127), 1e300, false, uint8(200), int8(100), int8(5))
	f.Add("session.phase.in_game", int64(5), int64(9), true, "server.id", "gs-1", int64(0x1ff), 2.5, true, uint8(0xc5), int8(1), int8(-3))
	res := resource.NewSchemaless(attribute.String("service.name", "fuzz"))
	f.Fuzz(func(t *testing.T, name string, start, end int64, parent bool, key, sval string, ival int64, fval float64, bval bool, n uint8, countLimit, lenLimit int8) {
		// n's top bits say how many links each span has (0 to 3), and
		// lenLimit's sign how many the link count limit keeps.
		var links []lifecycle.Link
		for i := range int(n >> 6) {
			links = append(links, lifecycle.Link{TraceID: [16]byte{byte(i + 1), byte(ival)}, SpanID: [8]byte{byte(n), byte(i)}, Flags: trace.TraceFlags(ival >> 8)})
		}
		attrs := make([]attribute.KeyValue, 0, int(n%16))
		for i := range int(n % 16) {
			k := key
			if i > 0 {
				k = key + string(rune('a'+i))
			}
			switch i % 4 {
			case 0:
				attrs = append(attrs, attribute.String(k, sval[:min(len(sval), i*3)]))
			case 1:
				attrs = append(attrs, attribute.Int64(k, ival*int64(i)))
			case 2:
				attrs = append(attrs, attribute.Float64(k, fval))
			case 3:
				attrs = append(attrs, attribute.Bool(k, bval))
			}
		}
		root := lifecycle.Span{Name: name, TraceID: [16]byte{1, byte(n)}, SpanID: [8]byte{2, byte(ival)}, Start: start, End: end, Attrs: attrs, Links: links}
		batch := []lifecycle.Span{root}
		if parent {
			child := root
			child.SpanID, child.ParentSpanID = [8]byte{3}, root.SpanID
			child.Start, child.End = end, start
			child.Attrs = attrs[len(attrs)/2:]
			child.Links = links[len(links)/2:]
			batch = append(batch, child)
		}
		limits := sdktrace.NewSpanLimits()
		limits.AttributeCountLimit, limits.AttributeValueLengthLimit = int(countLimit), int(lenLimit)
		limits.LinkCountLimit = int(lenLimit>>7) | int(countLimit&3) // -1 (none) or 0 to 3

		wire := newSpanEncoder(res, limits)
		msgs := newSpanEncoder(res, limits)
		got, gotErr := proto.Marshal(&coltracepb.ExportTraceServiceRequest{ResourceSpans: wire.encode(batch)})
		want, wantErr := proto.Marshal(&coltracepb.ExportTraceServiceRequest{ResourceSpans: msgs.encodeMessages(batch)})
		if (gotErr != nil) != (wantErr != nil) {
			t.Fatalf("encode: marshal error %v, messages: %v", gotErr, wantErr)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("encode wrote %d bytes, messages marshal to %d; first difference at byte %d\n got %x\nwant %x",
				len(got), len(want), firstByteDiff(got, want), got, want)
		}
	})
}
