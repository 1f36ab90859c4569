package consumer

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/sessiontrace/sessiontrace/consumer/kafkatest"
	"github.com/sessiontrace/sessiontrace/consumer/receiver"
	"github.com/sessiontrace/sessiontrace/lifecycle"
	"github.com/sessiontrace/sessiontrace/schema"
)

// BenchmarkEndToEnd measures, side by side on the same broker and the same
// records, a bare franz-go group consume loop (no decoding, no processing)
// and the full pipeline on each export path: group consumer, decode, state
// machine, the sdk path (SDK batch processor and exporter) or the direct
// path (OTLP built from the spans), OTLP gRPC export and commits. Each
// iteration consumes the whole topic with a fresh group. The broker is
// SESSIONTRACE_TEST_BROKERS when set, the in-process kfake cluster
// otherwise; the OTLP receiver runs in a child process (this test binary),
// as a collector would, so it is not in the measured process.
//
// Besides records/s and spans/s, each case reports cpu-µs/event: the
// process's user+system CPU time (getrusage) over the measured loop divided
// by the records consumed. With kfake the broker runs in this process and
// its CPU is included; only an external broker measures the consumer alone.
//
//	SESSIONTRACE_TEST_BROKERS=$addr go test ./consumer -run '^$' -bench EndToEnd -benchtime 3x -benchmem
func BenchmarkEndToEnd(b *testing.B) {
	backend := "kfake"
	if os.Getenv(kafkatest.BrokersEnv) != "" {
		backend = "external"
	}
	var brokers []string
	for _, be := range kafkatest.Backends() {
		if be.Name == backend {
			brokers = be.Start(b)
		}
	}
	s := buildScenario(b, scenarioSpec{partitions: 4, players: 12000, matches: 2})
	total := 0
	for _, recs := range s.records {
		total += len(recs)
	}
	topic := kafkatest.Topic(b, brokers, s.partitions)
	s.produce(b, brokers, topic)
	b.Logf("%s broker, %d records, %d spans per pass", backend, total, len(s.spans))

	b.Run("bare_franz_go", func(b *testing.B) {
		b.ReportAllocs()
		cpu := startCPU()
		for b.Loop() {
			cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumerGroup(kafkatest.Group(b)),
				kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
			if err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(b.Context(), 2*time.Minute)
			n := 0
			for n < total {
				fs := cl.PollFetches(ctx)
				if ctx.Err() != nil {
					b.Fatalf("consumed %d of %d records", n, total)
				}
				n += fs.NumRecords()
			}
			cancel()
			cl.Close()
		}
		cpu.report(b, total*b.N)
		b.ReportMetric(float64(total)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
	})

	for _, path := range exportPaths {
		b.Run("pipeline_"+path, func(b *testing.B) {
			b.ReportAllocs()
			rcv := startChildReceiver(b)
			out := exporter(b, rcv.addr)
			want := 0
			cpu := startCPU()
			for b.Loop() {
				want += len(s.spans)
				cfg := pathConfig(brokers, topic, kafkatest.Group(b), path)
				cfg.ExportBatchSize = DefaultExportBatchSize
				cfg.ExportQueueSize = DefaultExportQueueSize
				cfg.ExportBatchTimeout = 200 * time.Millisecond
				r := startConsumer(b, cfg, out)
				rcv.wait(b, want, 2*time.Minute)
				r.shutdown(b)
			}
			cpu.report(b, total*b.N)
			b.ReportMetric(float64(total)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
			b.ReportMetric(float64(len(s.spans))*float64(b.N)/b.Elapsed().Seconds(), "spans/s")
		})
	}
}

// cpuClock reads the process's CPU time (user and system, every thread).
type cpuClock struct{ start time.Duration }

func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func startCPU() cpuClock { return cpuClock{start: processCPU()} }

// report adds the CPU time spent since start per event as cpu-µs/event.
func (c cpuClock) report(b *testing.B, events int) {
	if events == 0 {
		return
	}
	b.ReportMetric(float64(processCPU()-c.start)/float64(time.Microsecond)/float64(events), "cpu-µs/event")
}

// receiverEnv switches the test binary into an OTLP receiver process for
// BenchmarkEndToEnd: it prints its address, then its span count every time
// it moves, and exits when its stdin closes.
const receiverEnv = "SESSIONTRACE_TEST_RECEIVER"

func runReceiver() int {
	r, err := receiver.Start("127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	defer r.Close()
	r.KeepSpans(false)
	fmt.Println(r.Addr())
	ctx, cancel := context.WithCancel(context.Background())
	go func() { // the parent closing our stdin (or dying) ends us
		_, _ = io.Copy(io.Discard, os.Stdin)
		cancel()
	}()
	last := 0
	for {
		if err := r.WaitCount(ctx, last+1); err != nil {
			return 0
		}
		last = r.Count()
		fmt.Println(last)
	}
}

// childReceiver is a receiver running in a child process.
type childReceiver struct {
	addr  string
	count atomic.Int64
	moved chan struct{} // receives (without blocking the reader) when count moves
}

func startChildReceiver(b *testing.B) *childReceiver {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), receiverEnv+"=1")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = stdin.Close(); _ = cmd.Wait() })
	lines := bufio.NewScanner(stdout)
	if !lines.Scan() {
		b.Fatalf("receiver process: no address: %v", lines.Err())
	}
	r := &childReceiver{addr: strings.TrimSpace(lines.Text()), moved: make(chan struct{}, 1)}
	go func() {
		for lines.Scan() {
			if n, err := strconv.ParseInt(lines.Text(), 10, 64); err == nil {
				r.count.Store(n)
				select {
				case r.moved <- struct{}{}:
				default:
				}
			}
		}
	}()
	return r
}

// wait waits until the receiver counted at least n spans.
func (r *childReceiver) wait(b *testing.B, n int, within time.Duration) {
	b.Helper()
	deadline := time.After(within)
	for r.count.Load() < int64(n) {
		select {
		case <-r.moved:
		case <-deadline:
			b.Fatalf("receiver counted %d spans, want %d", r.count.Load(), n)
		}
	}
}

// benchSpans returns the spans a scenario's records make, in the order a
// partition's worker emits them.
func benchSpans(b testing.TB) []lifecycle.Span {
	b.Helper()
	s := buildScenario(b, scenarioSpec{partitions: 1, players: 2000, matches: 2})
	dec, err := schema.NewDecoder(schema.DefaultLimits())
	if err != nil {
		b.Fatal(err)
	}
	m, err := lifecycle.New(lifecycle.DefaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	var ev schema.Event
	var out []lifecycle.Span
	for off, r := range s.records[0] {
		if dec.Decode(r.Key, r.Value, &ev) == nil {
			out, _ = m.Apply(&ev, int64(off), out)
		}
	}
	return out
}

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
	const batch = DefaultExportBatchSize
	res := resource.Default()

	b.Run("sdk_emit", func(b *testing.B) {
		c := &collector{}
		tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(c), sdktrace.WithIDGenerator(lifecycle.IDGenerator()),
			sdktrace.WithSampler(sdktrace.AlwaysSample()), sdktrace.WithResource(res))
		em := lifecycle.NewEmitter(tp.Tracer(scopeName))
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
		tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(c), sdktrace.WithIDGenerator(lifecycle.IDGenerator()),
			sdktrace.WithSampler(sdktrace.AlwaysSample()), sdktrace.WithResource(res))
		em := lifecycle.NewEmitter(tp.Tracer(scopeName))
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
	for _, path := range exportPaths {
		b.Run(path, func(b *testing.B) {
			rcv := startReceiver(b)
			rcv.KeepSpans(false)
			out := exporter(b, rcv.Addr())
			p := &pipeline{cfg: DefaultConfig(), exporter: out.exp, client: out.client}
			p.cfg.ExportPath = path
			l := p.newLane(laneConfig{queueSize: DefaultExportQueueSize, batchSize: DefaultExportBatchSize,
				batchTimeout: DefaultExportBatchTimeout, retryInitial: DefaultRetryInitial, retryMax: DefaultRetryMax,
				resource: resource.Default()})
			b.Cleanup(func() { _ = l.close(context.Background()) })
			ctx := context.Background()
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if err := l.emit(ctx, &spans[i%len(spans)]); err != nil {
					b.Fatal(err)
				}
				i++
			}
			if err := l.flush(ctx); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "spans/s")
		})
	}
}
