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

	// The same records as three services write them, to three
	// co-partitioned topics in send order (no jitter): the cost of the
	// merge, its log and its commits against pipeline_direct.
	merged := mergedTopics(b, brokers, s.partitions)
	produceTopics(b, brokers, merged, multiProducer(b, s, 0, 1), s.partitions)

	for _, path := range append(exportPaths, "merged_direct") {
		b.Run("pipeline_"+path, func(b *testing.B) {
			b.ReportAllocs()
			rcv := startChildReceiver(b)
			out := exporter(b, rcv.addr)
			want := 0
			cpu := startCPU()
			for b.Loop() {
				want += len(s.spans)
				cfg := pathConfig(brokers, topic, kafkatest.Group(b), path)
				if path == "merged_direct" {
					cfg = mergedConfig(brokers, merged, cfg.Group)
					cfg.MergeWait = 0
				}
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
