package consumer

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	"github.com/sessiontrace/sessiontrace/lifecycle"
)

// TestDirectPathSendsTheSDKPathsBytes replays the same records through
// OTLPSink on both export paths, each to its own real OTLP receiver, and
// compares the accepted export requests byte for byte, request by request.
// The receiver keeps each request's deterministic re-encoding, which keeps
// every field and its presence (an empty status is not an absent one), so
// equal payloads mean equal requests: both paths marshal with the same
// gRPC codec from the same message types.
func TestDirectPathSendsTheSDKPathsBytes(t *testing.T) {
	s := buildScenario(t, scenarioSpec{partitions: 3, players: 80, openAtEnd: 5, poisonEach: 30, matches: 2})
	withSchema, err := resource.Merge(resource.Default(), resource.NewWithAttributes("https://opentelemetry.io/schemas/1.43.0",
		attribute.String("service.name", "sessiontrace"), attribute.Int("shard", 3), attribute.StringSlice("zones", []string{"eu-1", "eu-2"})))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		res       *resource.Resource
		batch     int
		env       map[string]string
		failFirst int // requests the receiver fails before accepting any
	}{
		{name: "default resource", batch: 64},
		{name: "resource with schema URL", res: withSchema, batch: 64},
		{name: "schemaless resource, odd batch", res: resource.NewSchemaless(attribute.String("service.name", "x")), batch: 37},
		{name: "one span per request", res: withSchema, batch: 1},
		{name: "retried after failures", res: withSchema, batch: 50, failFirst: 3},
		{name: "span limits from the environment", res: withSchema, batch: 64, env: map[string]string{
			"OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT":        "3",
			"OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT": "4",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			sdk := replayPayloads(t, s, ExportSDK, tt.res, tt.batch, tt.failFirst)
			direct := replayPayloads(t, s, ExportDirect, tt.res, tt.batch, tt.failFirst)
			if len(sdk) < 2 {
				t.Fatalf("sdk path sent %d requests; the comparison needs several", len(sdk))
			}
			if len(direct) != len(sdk) {
				t.Fatalf("direct path sent %d requests, sdk path %d", len(direct), len(sdk))
			}
			for i := range sdk {
				if !bytes.Equal(direct[i], sdk[i]) {
					t.Fatalf("request %d of %d differs: direct %d bytes, sdk %d bytes; first difference at byte %d",
						i, len(sdk), len(direct[i]), len(sdk[i]), firstByteDiff(direct[i], sdk[i]))
				}
			}
		})
	}
}

// replayPayloads replays every record of s (closing the sessions left open)
// through OTLPSink on path and returns the requests the receiver accepted.
func replayPayloads(t *testing.T, s *scenario, path string, res *resource.Resource, batch, failFirst int) [][]byte {
	t.Helper()
	rcv := startReceiver(t)
	rcv.KeepSpans(false)
	rcv.KeepPayloads(true)
	if failFirst > 0 {
		rcv.FailNext(failFirst, codes.Unavailable)
	}
	out := exporter(t, rcv.Addr())
	cfg := DefaultConfig()
	cfg.ExportPath = path
	cfg.ExportBatchSize = batch
	cfg.ExportQueueSize = max(2*batch, 128)
	cfg.RetryInitial, cfg.RetryMax = time.Millisecond, 10*time.Millisecond
	opts := out.options()
	if res != nil {
		opts = append(opts, WithResource(res))
	}
	sink, err := OTLPSink(out.exp, cfg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	rp, err := NewReplayer(cfg, sink)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	for p := range s.partitions {
		for off, r := range s.records[p] {
			if err := rp.Process(ctx, Record{Topic: "lifecycle", Partition: p, Offset: int64(off), Key: r.Key, Value: r.Value}); err != nil {
				t.Fatal(err)
			}
		}
	}
	stats, err := rp.Finish(ctx, true)
	if err != nil {
		t.Fatalf("%s path: %v", path, err)
	}
	if stats.Spans <= len(s.spans) || rcv.Count() != stats.Spans {
		t.Fatalf("%s path: replay made %d spans (reference %d without the open ones), receiver got %d", path, stats.Spans, len(s.spans), rcv.Count())
	}
	return rcv.Payloads()
}

func firstByteDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// TestDirectLaneBlocksAndAborts checks the lane contract on the direct path
// against a collector that is down: spans are never acknowledged, emit
// blocks once the queue is full instead of dropping, flush gives up with its
// context, and abort unblocks the emitter without acknowledging anything.
func TestDirectLaneBlocksAndAborts(t *testing.T) {
	rcv := startReceiver(t)
	rcv.Stop()
	out := exporter(t, rcv.Addr())
	failed := make(chan struct{}, 1)
	l := newDirectLane(out.client, laneConfig{
		queueSize: 4, batchSize: 2, batchTimeout: time.Hour,
		retryInitial: time.Millisecond, retryMax: 5 * time.Millisecond,
		onResult: func(_ int, err error) {
			if err != nil {
				select {
				case failed <- struct{}{}:
				default:
				}
			}
		},
	})
	t.Cleanup(func() { _ = l.close(context.Background()) })

	const n = 10 // more than the queue and the batch being retried hold
	sp := lifecycle.Span{Name: lifecycle.SpanLifecycle, TraceID: [16]byte{1}, SpanID: [8]byte{1}, Start: 1, End: 2}
	errs := make(chan error, n)
	go func() {
		for range n {
			errs <- l.emit(context.Background(), &sp)
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
	if got := l.emitted(); got >= n {
		t.Fatalf("all %d spans emitted although the queue holds %d and nothing was accepted", got, len(l.q.buf))
	}
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if err := l.flush(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("flush during an outage = %v, want the context's deadline", err)
	}

	l.abort()
	var aborted int
	for err := range errs {
		if err != nil {
			if !errors.Is(err, errLaneAborted) {
				t.Errorf("emit = %v, want errLaneAborted", err)
			}
			aborted++
		}
	}
	if aborted == 0 {
		t.Error("no emit was blocked when the lane was aborted")
	}
	if l.emitted() != n || l.acked() != 0 {
		t.Errorf("emitted %d, acked %d; want %d and 0", l.emitted(), l.acked(), n)
	}
	if err := l.flush(t.Context()); !errors.Is(err, errLaneAborted) {
		t.Errorf("flush after abort = %v, want errLaneAborted", err)
	}
	if err := l.close(t.Context()); err != nil {
		t.Errorf("close: %v", err)
	}
}

// TestDirectLaneExportsByTimeoutAndFlush checks that a partial batch goes out
// after the batch timeout and that flush acknowledges everything emitted.
func TestDirectLaneExportsByTimeoutAndFlush(t *testing.T) {
	rcv := startReceiver(t)
	out := exporter(t, rcv.Addr())
	l := newDirectLane(out.client, laneConfig{queueSize: 64, batchSize: 16, batchTimeout: 20 * time.Millisecond,
		retryInitial: time.Millisecond, retryMax: 5 * time.Millisecond})
	t.Cleanup(func() { _ = l.close(context.Background()) })
	sp := lifecycle.Span{Name: lifecycle.SpanLifecycle, TraceID: [16]byte{1}, SpanID: [8]byte{1}, Start: 1, End: 2}
	for range 3 {
		if err := l.emit(t.Context(), &sp); err != nil {
			t.Fatal(err)
		}
	}
	// Three spans never fill a batch of 16: only the timeout sends them.
	waitSpans(t, rcv, 3, 10*time.Second)
	for range 40 {
		if err := l.emit(t.Context(), &sp); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if l.acked() != 43 || rcv.Count() != 43 {
		t.Fatalf("acked %d, received %d; want 43", l.acked(), rcv.Count())
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
	scenario := benchSpans(t)[:300]
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
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(c), sdktrace.WithIDGenerator(lifecycle.IDGenerator()),
		sdktrace.WithSampler(sdktrace.AlwaysSample()), sdktrace.WithResource(res))
	em := lifecycle.NewEmitter(tp.Tracer(scopeName))
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

// TestNewNeedsWhatTheExportPathUses checks that New and OTLPSink refuse to
// build a pipeline whose export path lacks its dependency.
func TestNewNeedsWhatTheExportPathUses(t *testing.T) {
	out := exporter(t, "127.0.0.1:9") // never dialled: nothing is exported
	tests := []struct {
		name string
		path string
		exp  sdktrace.SpanExporter
		opts []Option
		want string // in the error; "" for success
	}{
		{"direct without a client", ExportDirect, out.exp, nil, "WithOTLPClient"},
		{"direct with a client only", ExportDirect, nil, out.options(), ""},
		{"sdk without an exporter", ExportSDK, nil, out.options(), "nil span exporter"},
		{"sdk with an exporter only", ExportSDK, out.exp, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig([]string{"127.0.0.1:9"}, "lifecycle", "group")
			cfg.ExportPath = tt.path
			check := func(what string, err error) {
				t.Helper()
				if tt.want == "" && err != nil {
					t.Errorf("%s: %v", what, err)
				}
				if tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
					t.Errorf("%s = %v, want an error about %q", what, err, tt.want)
				}
			}
			c, err := New(cfg, tt.exp, tt.opts...)
			check("New", err)
			if c != nil {
				c.cl.Close()
				c.cancel()
			}
			sink, err := OTLPSink(tt.exp, cfg, tt.opts...)
			check("OTLPSink", err)
			if sink != nil {
				if err := sink.Close(t.Context()); err != nil {
					t.Errorf("close an unused sink: %v", err)
				}
			}
		})
	}
}
