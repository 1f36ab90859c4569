package export

import (
	"context"
	"testing"
	"time"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/sessiontrace/sessiontrace/lifecycle"
)

// collector keeps the spans a tracer provider ends, standing in for the
// batch processor so that only the SDK's span building is measured.
type collector struct{ spans []sdktrace.ReadOnlySpan }

func (c *collector) OnStart(context.Context, sdktrace.ReadWriteSpan) {}
func (c *collector) OnEnd(s sdktrace.ReadOnlySpan)                   { c.spans = append(c.spans, s) }
func (c *collector) Shutdown(context.Context) error                  { return nil }
func (c *collector) ForceFlush(context.Context) error                { return nil }

// uploadClient is an otlptrace.Client that marshals the request as the gRPC
// codec does and sends nothing, so that a stage benchmark measures encoding
// and not the network.
type uploadClient struct{ buf []byte }

func (c *uploadClient) Start(context.Context) error { return nil }
func (c *uploadClient) Stop(context.Context) error  { return nil }
func (c *uploadClient) UploadTraces(_ context.Context, rs []*tracepb.ResourceSpans) error {
	var err error
	c.buf, err = proto.MarshalOptions{}.MarshalAppend(c.buf[:0], &coltracepb.ExportTraceServiceRequest{ResourceSpans: rs})
	return err
}

// BenchmarkSpanEncode measures, per span, each stage that turns a
// lifecycle.Span into the bytes of an export request, in batches of
// DefaultExportBatchSize: on the sdk path the SDK span (Emitter.Emit), then
// the exporter's conversion plus the gRPC codec's marshal; on the direct
// path the encoder (wire-format spans, or protobuf messages as its fallback
// builds them) alone and with the same marshal.
func BenchmarkSpanEncode(b *testing.B) {
	spans := benchSpans(b)
	const batch = 512
	res := resource.Default()

	b.Run("sdk_emit", func(b *testing.B) {
		c := &collector{}
		tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(c), sdktrace.WithIDGenerator(idGenerator{}),
			sdktrace.WithSampler(sdktrace.AlwaysSample()), sdktrace.WithResource(res))
		em := newEmitter(tp.Tracer(scopeName))
		ctx := context.Background()
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if err := em.Emit(ctx, &spans[i%len(spans)]); err != nil {
				b.Fatal(err)
			}
			if i++; len(c.spans) == batch {
				c.spans = c.spans[:0]
			}
		}
	})

	b.Run("sdk_convert_marshal", func(b *testing.B) {
		c := &collector{}
		tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(c), sdktrace.WithIDGenerator(idGenerator{}),
			sdktrace.WithSampler(sdktrace.AlwaysSample()), sdktrace.WithResource(res))
		em := newEmitter(tp.Tracer(scopeName))
		for i := range batch {
			if err := em.Emit(context.Background(), &spans[i%len(spans)]); err != nil {
				b.Fatal(err)
			}
		}
		exp := otlptrace.NewUnstarted(&uploadClient{})
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if i%batch == 0 {
				if err := exp.ExportSpans(context.Background(), c.spans); err != nil {
					b.Fatal(err)
				}
			}
		}
	})

	b.Run("direct_encode", func(b *testing.B) {
		enc := newSpanEncoder(res, sdktrace.NewSpanLimits())
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if i%batch == 0 {
				k := (i / batch * batch) % (len(spans) - batch)
				enc.encode(spans[k : k+batch])
			}
		}
	})

	b.Run("direct_encode_messages", func(b *testing.B) {
		enc := newSpanEncoder(res, sdktrace.NewSpanLimits())
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if i%batch == 0 {
				k := (i / batch * batch) % (len(spans) - batch)
				enc.encodeMessages(spans[k : k+batch])
			}
		}
	})

	b.Run("direct_encode_messages_marshal", func(b *testing.B) {
		enc := newSpanEncoder(res, sdktrace.NewSpanLimits())
		c := &uploadClient{}
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if i%batch == 0 {
				k := (i / batch * batch) % (len(spans) - batch)
				if err := c.UploadTraces(context.Background(), enc.encodeMessages(spans[k:k+batch])); err != nil {
					b.Fatal(err)
				}
			}
		}
	})

	b.Run("direct_encode_marshal", func(b *testing.B) {
		enc := newSpanEncoder(res, sdktrace.NewSpanLimits())
		c := &uploadClient{}
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if i%batch == 0 {
				k := (i / batch * batch) % (len(spans) - batch)
				if err := c.UploadTraces(context.Background(), enc.encode(spans[k:k+batch])); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}

// BenchmarkExport measures, per span, one partition's lane on each export
// path to a real OTLP receiver on 127.0.0.1 (in this process, so its CPU
// shares the machine): emit, batch, encode, upload, acknowledge.
func BenchmarkExport(b *testing.B) {
	spans := benchSpans(b)
	for _, path := range paths {
		b.Run(path.name, func(b *testing.B) {
			rcv := startReceiver(b)
			rcv.KeepSpans(false)
			out := newOut(b, rcv.Addr(), 100*time.Millisecond, 5*time.Second)
			l := path.lane(out, Config{QueueSize: 4096, BatchSize: 512, BatchTimeout: time.Second,
				RetryInitial: 100 * time.Millisecond, RetryMax: 5 * time.Second, Resource: resource.Default()})
			b.Cleanup(func() { _ = l.Close(context.Background()) })
			ctx := context.Background()
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if err := l.Emit(ctx, &spans[i%len(spans)]); err != nil {
					b.Fatal(err)
				}
				i++
			}
			if err := l.Flush(ctx); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "spans/s")
		})
	}
}

// benchSpans returns the spans 2000 players' sessions make, in the order a
// partition's worker emits them.
func benchSpans(tb testing.TB) []lifecycle.Span { return testSpans(tb, 2000, 2) }

func firstByteDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}
