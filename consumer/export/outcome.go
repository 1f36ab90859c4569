package export

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Class is what an upload attempt's outcome means for the spans it carried.
// The package doc's table says how a lane handles each.
type Class int

// The outcome classes, from Classify.
const (
	// Accepted: the endpoint took every span.
	Accepted Class = iota
	// Retryable: the endpoint or the network is in trouble (Unavailable,
	// DeadlineExceeded, Aborted, a quota's ResourceExhausted, connection
	// errors, anything unrecognised); the same request may succeed later.
	Retryable
	// PartialSuccess: the request was accepted, and the endpoint says it
	// rejected some of its spans (PartialSuccessError). Sending it again
	// would deliver the accepted spans twice.
	PartialSuccess
	// RejectedData: the endpoint refuses this request for what it carries
	// (InvalidArgument, a message larger than a gRPC size limit); the same
	// spans will always be refused, other spans will not.
	RejectedData
	// RejectedConfig: the endpoint refuses every request as we are
	// configured (Unauthenticated, PermissionDenied, Unimplemented,
	// NotFound, an invalid header); only an operator can fix it.
	RejectedConfig
)

// String returns the class's name as it appears in logs and metrics.
func (c Class) String() string {
	switch c {
	case Accepted:
		return "accepted"
	case Retryable:
		return "retryable"
	case PartialSuccess:
		return "partial_success"
	case RejectedData:
		return "rejected_data"
	case RejectedConfig:
		return "rejected_config"
	}
	return fmt.Sprintf("class(%d)", int(c))
}

// PartialSuccessError is an accepted export whose response carried an OTLP
// partial_success: Rejected spans of the request were dropped by the
// endpoint, for the reason in Message (a count of 0 with a message is a
// warning). The interceptor that ClientOptions installs turns such a
// response into this error, so that the lane sees it whatever the client
// does with the response.
type PartialSuccessError struct {
	Rejected int64
	Message  string
}

// Error describes the partial success, with the endpoint's message.
func (e *PartialSuccessError) Error() string {
	return fmt.Sprintf("OTLP partial success: %d spans rejected: %s", e.Rejected, e.Message)
}

// Classify returns the class of an upload attempt's error, the same way for
// both export paths (the SDK path's errors wrap the client's). nil is
// Accepted.
func Classify(err error) Class {
	if err == nil {
		return Accepted
	}
	var ps *PartialSuccessError
	if errors.As(err, &ps) {
		return PartialSuccess
	}
	// otlptracegrpc's own size check (WithMaxRequestSize) is a plain error.
	if strings.Contains(err.Error(), "request message too large") {
		return RejectedData
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return Retryable
	}
	s, ok := status.FromError(err)
	if !ok {
		return Retryable // connection errors and the unknown: never drop
	}
	switch s.Code() {
	case codes.InvalidArgument:
		return RejectedData
	case codes.ResourceExhausted:
		// grpc-go reports a message over a size limit as ResourceExhausted
		// too, on the client ("trying to send message larger than max")
		// and the server ("received message larger than max",
		// "...after decompression larger than max"); a quota or rate limit
		// says something else and passes.
		if strings.Contains(s.Message(), "larger than max") {
			return RejectedData
		}
		return Retryable
	case codes.Unauthenticated, codes.PermissionDenied, codes.Unimplemented, codes.NotFound:
		return RejectedConfig
	case codes.Internal:
		// grpc-go refuses to send invalid metadata with Internal: "header
		// key %q contains illegal characters...", "...non-printable ASCII
		// characters", "there is an empty key in the header".
		if strings.Contains(s.Message(), "header key ") || strings.Contains(s.Message(), "empty key in the header") {
			return RejectedConfig
		}
	}
	return Retryable
}

// ClientOptions returns the otlptracegrpc options the client of a lane must
// be built with, after the caller's own (the endpoint, TLS, headers,
// compression and OTEL_EXPORTER_OTLP_* stay otlptracegrpc's):
//
//   - its own retry off: the lane retries, with back-pressure and
//     classification, and the client's retry would hide outcomes;
//   - an interceptor that turns a response's partial_success into a
//     PartialSuccessError, which otlptracegrpc would otherwise pass to the
//     global error handler or fold into an untyped error;
//   - gRPC's reconnect backoff bounded by the lane's (retryInitial up to
//     retryMax), so that exports resume within about retryMax of the
//     endpoint coming back rather than after gRPC's default of up to two
//     minutes.
//
// otlptracegrpc.WithDialOption keeps only its last call's options: pass
// any other dial option as dial here, not in another WithDialOption.
func ClientOptions(retryInitial, retryMax time.Duration, dial ...grpc.DialOption) []otlptracegrpc.Option {
	bo := backoff.DefaultConfig
	bo.BaseDelay = retryInitial
	bo.MaxDelay = max(retryMax, retryInitial)
	dial = append([]grpc.DialOption{
		grpc.WithChainUnaryInterceptor(partialSuccessInterceptor),
		grpc.WithConnectParams(grpc.ConnectParams{Backoff: bo, MinConnectTimeout: minConnectTimeout}),
	}, dial...)
	return []otlptracegrpc.Option{
		otlptracegrpc.WithRetry(otlptracegrpc.RetryConfig{Enabled: false}),
		otlptracegrpc.WithDialOption(dial...),
	}
}

// minConnectTimeout is how long one connection attempt may take, gRPC's
// default: a refused connection fails at once whatever it is, and a slow
// handshake (TLS over a long link) must still be able to finish.
const minConnectTimeout = 20 * time.Second

// traceExport is the full method name of the OTLP trace export.
const traceExport = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"

// partialSuccessInterceptor returns a PartialSuccessError for an accepted
// trace export whose response reports rejected spans or a warning. The
// error carries no gRPC status, so otlptracegrpc treats it as final (no
// retry of its own) and returns it to the lane.
func partialSuccessInterceptor(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	if err := invoker(ctx, method, req, reply, cc, opts...); err != nil {
		return err
	}
	if method != traceExport {
		return nil
	}
	r, ok := reply.(*coltracepb.ExportTraceServiceResponse)
	if !ok {
		return nil
	}
	if ps := r.GetPartialSuccess(); ps != nil && (ps.GetRejectedSpans() != 0 || ps.GetErrorMessage() != "") {
		return &PartialSuccessError{Rejected: ps.GetRejectedSpans(), Message: ps.GetErrorMessage()}
	}
	return nil
}
