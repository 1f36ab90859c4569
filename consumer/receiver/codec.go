package receiver

import (
	"context"
	"fmt"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// The receiver registers the official TraceService by hand instead of
// through coltracepb.RegisterTraceServiceServer: the generated handler always
// decodes the whole request, while a receiver that only counts spans (the
// bench's collector) can walk the wire format for a fraction of the cost.
// When spans, payloads or callbacks are wanted, the request is decoded with
// the generated types as usual.

// traceService is coltracepb.TraceService_ServiceDesc with a handler that
// receives the request undecoded.
var traceService = grpc.ServiceDesc{
	ServiceName: coltracepb.TraceService_ServiceDesc.ServiceName,
	HandlerType: (*interface {
		export([]byte) (*coltracepb.ExportTraceServiceResponse, error)
	})(nil),
	Methods:  []grpc.MethodDesc{{MethodName: "Export", Handler: handleExport}},
	Metadata: coltracepb.TraceService_ServiceDesc.Metadata,
}

// handleExport ignores the interceptor argument because the server is built
// without interceptors.
func handleExport(srv any, _ context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
	var in rawRequest
	if err := dec(&in); err != nil {
		return nil, err
	}
	defer in.buf.Free()
	return srv.(*Receiver).export(in.buf.ReadOnlyData())
}

// rawRequest holds an export request's encoding in a pooled buffer that
// lives until the handler returns; everything kept from it is copied out by
// decoding.
type rawRequest struct{ buf mem.Buffer }

// codec is the server's "proto" codec: it hands requests over undecoded and
// marshals responses with protobuf.
type codec struct{}

func (codec) Name() string { return "proto" }

func (codec) Marshal(v any) (mem.BufferSlice, error) {
	m, ok := v.(proto.Message)
	if !ok {
		return nil, fmt.Errorf("receiver: marshal %T: not a protobuf message", v)
	}
	b, err := proto.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("receiver: marshal %T: %w", v, err)
	}
	return mem.BufferSlice{mem.SliceBuffer(b)}, nil
}

func (codec) Unmarshal(data mem.BufferSlice, v any) error {
	in, ok := v.(*rawRequest)
	if !ok {
		return fmt.Errorf("receiver: unmarshal into %T: only export requests are served", v)
	}
	in.buf = data.MaterializeToBuffer(mem.DefaultBufferPool())
	return nil
}

// Field numbers on the path from an export request to its spans, from
// opentelemetry/proto/collector/trace/v1 and trace/v1.
const (
	fieldResourceSpans protowire.Number = 1 // ExportTraceServiceRequest.resource_spans
	fieldScopeSpans    protowire.Number = 2 // ResourceSpans.scope_spans
	fieldSpans         protowire.Number = 2 // ScopeSpans.spans
)

// countSpans counts the spans in an encoded export request without decoding
// them. It checks the wire structure down to each span's envelope but not
// the spans' contents, so it accepts some requests (invalid UTF-8 in a
// name, say) that decoding would reject.
func countSpans(req []byte) (int, error) {
	n := 0
	err := eachBytesField(req, fieldResourceSpans, func(rs []byte) error {
		return eachBytesField(rs, fieldScopeSpans, func(ss []byte) error {
			return eachBytesField(ss, fieldSpans, func([]byte) error {
				n++
				return nil
			})
		})
	})
	return n, err
}

// eachBytesField calls fn with the payload of every length-delimited field
// num of the encoded message msg, and skips every other field, failing on
// malformed input.
func eachBytesField(msg []byte, num protowire.Number, fn func([]byte) error) error {
	for len(msg) > 0 {
		fnum, typ, n := protowire.ConsumeTag(msg)
		if n < 0 {
			return protowire.ParseError(n)
		}
		msg = msg[n:]
		if fnum == num && typ == protowire.BytesType {
			v, n := protowire.ConsumeBytes(msg)
			if n < 0 {
				return protowire.ParseError(n)
			}
			if err := fn(v); err != nil {
				return err
			}
			msg = msg[n:]
			continue
		}
		// A known field with an unexpected wire type is an unknown field to
		// protobuf, so it is skipped here too.
		n = protowire.ConsumeFieldValue(fnum, typ, msg)
		if n < 0 {
			return protowire.ParseError(n)
		}
		msg = msg[n:]
	}
	return nil
}
