package receiver

import (
	"context"
	"encoding/binary"
	"fmt"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"
)

// startReceiver starts a receiver on a free loopback port and closes it when
// the test ends.
func startReceiver(tb testing.TB) *Receiver {
	tb.Helper()
	r, err := Start("127.0.0.1:0")
	if err != nil {
		tb.Fatalf("Start: %v", err)
	}
	tb.Cleanup(r.Close)
	return r
}

// fastReconnect keeps gRPC's reconnect backoff (1 s growing to 120 s by
// default) short, so a test that restarts the receiver does not wait for the
// client's next scheduled connection attempt.
var fastReconnect = grpc.WithConnectParams(grpc.ConnectParams{
	Backoff:           backoff.Config{BaseDelay: 10 * time.Millisecond, Multiplier: 1.6, MaxDelay: 100 * time.Millisecond},
	MinConnectTimeout: time.Second,
})

// newExporter returns the real OTLP/gRPC exporter aimed at addr. retry
// enables the exporter's own retries, with short intervals.
func newExporter(tb testing.TB, addr string, retry bool) *otlptrace.Exporter {
	tb.Helper()
	exp, err := otlptracegrpc.New(tb.Context(),
		otlptracegrpc.WithInsecure(),
		otlptracegrpc.WithEndpoint(addr),
		otlptracegrpc.WithDialOption(fastReconnect),
		otlptracegrpc.WithRetry(otlptracegrpc.RetryConfig{
			Enabled:         retry,
			InitialInterval: 5 * time.Millisecond,
			MaxInterval:     50 * time.Millisecond,
			MaxElapsedTime:  30 * time.Second,
		}),
	)
	if err != nil {
		tb.Fatalf("otlptracegrpc.New: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := exp.Shutdown(ctx); err != nil {
			tb.Errorf("exporter shutdown: %v", err)
		}
	})
	return exp
}

// testResource is the resource every SDK-made test span carries.
var testResource = resource.NewSchemaless(
	attribute.String("service.name", "receiver-test"),
	attribute.Int("service.instance", 7),
)

// recordSpans makes n ended spans with the SDK, each with two attributes,
// for exporting by hand with an exporter's ExportSpans.
func recordSpans(tb testing.TB, n int) []sdktrace.ReadOnlySpan {
	tb.Helper()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec), sdktrace.WithResource(testResource))
	tb.Cleanup(func() {
		if err := tp.Shutdown(context.Background()); err != nil {
			tb.Errorf("tracer provider shutdown: %v", err)
		}
	})
	tracer := tp.Tracer("receiver-test")
	for i := range n {
		_, span := tracer.Start(context.Background(), fmt.Sprintf("span-%d", i))
		span.SetAttributes(attribute.Int("i", i), attribute.String("player.id", fmt.Sprintf("p%d", i)))
		span.End()
	}
	return rec.Ended()
}

// dial returns a raw OTLP trace client for addr, for tests that need to see
// the exact gRPC status of each request.
func dial(tb testing.TB, addr string) coltracepb.TraceServiceClient {
	tb.Helper()
	conn, err := grpc.NewClient(addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		fastReconnect,
	)
	if err != nil {
		tb.Fatalf("grpc.NewClient: %v", err)
	}
	tb.Cleanup(func() { _ = conn.Close() })
	return coltracepb.NewTraceServiceClient(conn)
}

// makeRequest builds an export request of n spans shaped like sessiontrace's
// phase spans (six attributes), with span IDs first, first+1, ... so that
// requests from different callers never share IDs.
func makeRequest(first uint64, n int) *coltracepb.ExportTraceServiceRequest {
	spans := make([]*tracepb.Span, n)
	for i := range spans {
		id := first + uint64(i)
		traceID := make([]byte, 16)
		binary.BigEndian.PutUint64(traceID[8:], id/4+1)
		spanID := make([]byte, 8)
		binary.BigEndian.PutUint64(spanID, id+1)
		spans[i] = &tracepb.Span{
			TraceId:           traceID,
			SpanId:            spanID,
			Name:              "session.phase.in_game",
			Kind:              tracepb.Span_SPAN_KIND_INTERNAL,
			StartTimeUnixNano: 1_700_000_000_000_000_000 + id,
			EndTimeUnixNano:   1_700_000_060_000_000_000 + id,
			Flags:             0x301,
			Attributes: []*commonpb.KeyValue{
				strAttr("player.id", fmt.Sprintf("player-%d", id)),
				strAttr("server.id", "eu-west-3"),
				strAttr("game.map", "de_dust2"),
				intAttr("session.match_number", int64(id%5)),
				strAttr("game.result", "win"),
				intAttr("game.score", int64(id%3000)),
			},
		}
	}
	return &coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{{
		Resource:   &resourcepb.Resource{Attributes: []*commonpb.KeyValue{strAttr("service.name", "sessiontrace")}},
		ScopeSpans: []*tracepb.ScopeSpans{{Scope: &commonpb.InstrumentationScope{Name: "sessiontrace"}, Spans: spans}},
	}}}
}

func strAttr(k, v string) *commonpb.KeyValue {
	return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: v}}}
}

func intAttr(k string, v int64) *commonpb.KeyValue {
	return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: v}}}
}

// deadline returns a context that ends after d or with the test.
func deadline(tb testing.TB, d time.Duration) context.Context {
	tb.Helper()
	ctx, cancel := context.WithTimeout(tb.Context(), d)
	tb.Cleanup(cancel)
	return ctx
}
