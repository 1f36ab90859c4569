package export

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/sessiontrace/sessiontrace/lifecycle"
)

// TestDirectLaneBlocksAndAborts checks the lane contract on the direct path
// against a collector that is down: spans are never acknowledged, emit
// blocks once the queue is full instead of dropping, flush gives up with its
// context, and abort unblocks the emitter without acknowledging anything.
func TestDirectLaneBlocksAndAborts(t *testing.T) {
	rcv := startReceiver(t)
	rcv.Stop()
	out := exporter(t, rcv.Addr())
	failed := make(chan struct{}, 1)
	l := newDirectLane(out.client, Config{
		QueueSize: 4, BatchSize: 2, BatchTimeout: time.Hour,
		RetryInitial: time.Millisecond, RetryMax: 5 * time.Millisecond,
		Observer: Observer{Result: func(_ int, _ Class, err error) {
			if err != nil {
				select {
				case failed <- struct{}{}:
				default:
				}
			}
		}},
	})
	t.Cleanup(func() { _ = l.Close(context.Background()) })

	const n = 10 // more than the queue and the batch being retried hold
	sp := lifecycle.Span{Name: lifecycle.SpanLifecycle, TraceID: [16]byte{1}, SpanID: [8]byte{1}, Start: 1, End: 2}
	errs := make(chan error, n)
	go func() {
		for range n {
			errs <- l.Emit(context.Background(), &sp)
		}
		close(errs)
	}()
	// The emitter must end up blocked with the queue full while exports fail.
	deadline := time.Now().Add(10 * time.Second)
	for l.q.len() < len(l.q.buf) || len(failed) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("queue holds %d of %d spans and no export failed yet", l.q.len(), len(l.q.buf))
		}
		select {
		case <-t.Context().Done():
			t.Fatal(t.Context().Err())
		case <-time.After(5 * time.Millisecond): // polling the lane, bounded by the deadline
		}
	}
	if got := l.Emitted(); got >= n {
		t.Fatalf("all %d spans emitted although the queue holds %d and nothing was accepted", got, len(l.q.buf))
	}
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if err := l.Flush(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("flush during an outage = %v, want the context's deadline", err)
	}

	l.Abort()
	var aborted int
	for err := range errs {
		if err != nil {
			if !errors.Is(err, errAborted) {
				t.Errorf("emit = %v, want errAborted", err)
			}
			aborted++
		}
	}
	if aborted == 0 {
		t.Error("no emit was blocked when the lane was aborted")
	}
	if l.Emitted() != n || l.Acked() != 0 {
		t.Errorf("emitted %d, acked %d; want %d and 0", l.Emitted(), l.Acked(), n)
	}
	if err := l.Flush(t.Context()); !errors.Is(err, errAborted) {
		t.Errorf("flush after abort = %v, want errAborted", err)
	}
	if err := l.Close(t.Context()); err != nil {
		t.Errorf("close: %v", err)
	}
}

// TestDirectLaneExportsByTimeoutAndFlush checks that a partial batch goes out
// after the batch timeout and that flush acknowledges everything emitted.
func TestDirectLaneExportsByTimeoutAndFlush(t *testing.T) {
	rcv := startReceiver(t)
	out := exporter(t, rcv.Addr())
	l := newDirectLane(out.client, Config{QueueSize: 64, BatchSize: 16, BatchTimeout: 20 * time.Millisecond,
		RetryInitial: time.Millisecond, RetryMax: 5 * time.Millisecond})
	t.Cleanup(func() { _ = l.Close(context.Background()) })
	sp := lifecycle.Span{Name: lifecycle.SpanLifecycle, TraceID: [16]byte{1}, SpanID: [8]byte{1}, Start: 1, End: 2}
	for range 3 {
		if err := l.Emit(t.Context(), &sp); err != nil {
			t.Fatal(err)
		}
	}
	// Three spans never fill a batch of 16: only the timeout sends them.
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := rcv.WaitCount(ctx, 3); err != nil {
		t.Fatalf("waiting for 3 spans: %v", err)
	}
	for range 40 {
		if err := l.Emit(t.Context(), &sp); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if l.Acked() != 43 || rcv.Count() != 43 {
		t.Fatalf("acked %d, received %d; want 43", l.Acked(), rcv.Count())
	}
}

// captureClient is an otlptrace.Client that keeps the marshalled request of
// each upload, marshalled as gRPC's proto codec does, so that both export
// paths can be compared on raw bytes in process.
type captureClient struct{ requests [][]byte }

func (c *captureClient) Start(context.Context) error { return nil }
func (c *captureClient) Stop(context.Context) error  { return nil }
func (c *captureClient) UploadTraces(_ context.Context, rs []*tracepb.ResourceSpans) error {
	b, err := proto.MarshalOptions{}.Marshal(&coltracepb.ExportTraceServiceRequest{ResourceSpans: rs})
	if err != nil {
		return err
	}
	c.requests = append(c.requests, b)
	return nil
}

// TestEncoderMatchesSDKTransform compares, on raw marshalled bytes, one
// request built by the SDK path (SDK spans through otlptrace's exporter) and
// by the encoder on both of its routes (wire-format spans, and messages),
// for scenario spans and for spans with edge-case attributes.
func TestEncoderMatchesSDKTransform(t *testing.T) {
	scenario := testSpans(t, 60, 2)[:300]
	edge := []lifecycle.Span{
		{Name: lifecycle.SpanLifecycle, TraceID: [16]byte{9}, SpanID: [8]byte{9}, Start: 0, End: 0, Attrs: []attribute.KeyValue{
			attribute.Int64("neg", -5), attribute.Int64("zero", 0), attribute.Int64("big", 1<<62), attribute.String("empty", ""),
			attribute.Bool("f", false), attribute.Bool("t", true), attribute.Float64("z", 0), attribute.Float64("pi", 3.25),
			attribute.String("unicode", "héllo wörld ✓"), attribute.String("", "an invalid key is dropped"),
		}},
		{Name: lifecycle.SpanPhaseInGame, TraceID: [16]byte{9}, SpanID: [8]byte{8}, ParentSpanID: [8]byte{9}, Start: -7, End: 5},
		{Name: lifecycle.SpanPhaseLoading, TraceID: [16]byte{9}, SpanID: [8]byte{7}, ParentSpanID: [8]byte{9}, Start: 1, End: 1 << 62,
			Attrs: []attribute.KeyValue{attribute.String("long", string(bytes.Repeat([]byte("ab"), 200)))}},
	}
	l1 := lifecycle.Link{TraceID: [16]byte{0x4b, 0xf9, 15: 0x36}, SpanID: [8]byte{0, 0xf0, 7: 0xb7}, Flags: 1}
	l2 := lifecycle.Link{TraceID: [16]byte{0x0a, 15: 0x9c}, SpanID: [8]byte{0xb7, 7: 0x31}}
	l3 := lifecycle.Link{TraceID: [16]byte{0xff, 15: 0xff}, SpanID: [8]byte{0xff, 7: 0xff}, Flags: 0xff}
	linked := append(append([]lifecycle.Span(nil), scenario[:40]...), edge...)
	for i := range linked {
		linked[i].Links = [][]lifecycle.Link{nil, {l1}, {l2, l3}, {l1, l2, l3}}[i%4]
	}
	nonScalar := []lifecycle.Span{{Name: lifecycle.SpanLifecycle, TraceID: [16]byte{3}, SpanID: [8]byte{3}, Start: 1, End: 2,
		Attrs: []attribute.KeyValue{attribute.StringSlice("list", []string{"a", "b"}), attribute.Int("n", 1),
			attribute.BoolSlice("bools", []bool{true, false}), attribute.Int64Slice("ints", []int64{-1, 2}),
			attribute.Float64Slice("floats", []float64{0.5, 2})}}}
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(attribute.String("service.name", "sessiontrace")))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		spans []lifecycle.Span
		env   map[string]string
		wire  bool // whether the wire-format route takes the batch
	}{
		{"scenario spans", scenario, nil, true},
		{"edge-case attributes", edge, nil, true},
		{"non-scalar attribute", nonScalar, nil, false},
		{"count and length limits", append(append([]lifecycle.Span(nil), scenario[:50]...), edge...), map[string]string{
			"OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT": "4", "OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT": "3"}, true},
		{"no attributes allowed", edge, map[string]string{"OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT": "0"}, true},
		{"links", linked, nil, true},
		{"links, non-scalar attribute", append(append([]lifecycle.Span(nil), linked[:8]...), nonScalar...), nil, false},
		{"link count limit", linked, map[string]string{"OTEL_SPAN_LINK_COUNT_LIMIT": "2"}, true},
		{"no links allowed", linked, map[string]string{"OTEL_SPAN_LINK_COUNT_LIMIT": "0", "OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT": "2"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			sdk := sdkRequest(t, res, tt.spans)

			enc := newSpanEncoder(res, sdktrace.NewSpanLimits())
			if _, ok := enc.appendSpans(nil, tt.spans); ok != tt.wire {
				t.Fatalf("wire-format route took the batch: %t, want %t", ok, tt.wire)
			}
			for _, route := range []struct {
				name   string
				encode func([]lifecycle.Span) []*tracepb.ResourceSpans
			}{{"encode", enc.encode}, {"messages", enc.encodeMessages}, {"encode again", enc.encode}} {
				c := &captureClient{}
				if err := c.UploadTraces(t.Context(), route.encode(tt.spans)); err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(c.requests[0], sdk) {
					t.Errorf("%s: %d bytes differ from the SDK path's %d at byte %d", route.name, len(c.requests[0]), len(sdk), firstByteDiff(c.requests[0], sdk))
				}
			}
		})
	}
}

// sdkRequest returns the request the SDK path marshals for spans.
func sdkRequest(t *testing.T, res *resource.Resource, spans []lifecycle.Span) []byte {
	t.Helper()
	c := &collector{}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(c), sdktrace.WithIDGenerator(idGenerator{}),
		sdktrace.WithSampler(sdktrace.AlwaysSample()), sdktrace.WithResource(res))
	em := newEmitter(tp.Tracer(scopeName))
	for i := range spans {
		if err := em.Emit(t.Context(), &spans[i]); err != nil {
			t.Fatal(err)
		}
	}
	capture := &captureClient{}
	if err := otlptrace.NewUnstarted(capture).ExportSpans(t.Context(), c.spans); err != nil {
		t.Fatal(err)
	}
	return capture.requests[0]
}
