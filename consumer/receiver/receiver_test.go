package receiver

import (
	"context"
	"errors"
	"reflect"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
)

// TestExportThroughSDK sends spans made by an SDK tracer provider through its
// batch processor and the real OTLP/gRPC exporter, and checks that every
// field the consumer relies on arrives intact.
func TestExportThroughSDK(t *testing.T) {
	r := startReceiver(t)
	exp := newExporter(t, r.Addr(), false)
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithSpanProcessor(rec),
		sdktrace.WithBatcher(exp),
		sdktrace.WithResource(testResource),
	)
	t.Cleanup(func() {
		if err := tp.Shutdown(context.Background()); err != nil {
			t.Errorf("tracer provider shutdown: %v", err)
		}
	})

	attrCases := []struct {
		name string
		kv   attribute.KeyValue
		want any
	}{
		{"string", attribute.String("player.id", "p-42"), "p-42"},
		{"empty string", attribute.String("lobby.id", ""), ""},
		{"bool", attribute.Bool("session.start_observed", false), false},
		{"int", attribute.Int("session.matches_played", 3), int64(3)},
		{"negative int64", attribute.Int64("game.score", -12), int64(-12)},
		{"float", attribute.Float64("session.duration_seconds", 1234.5), 1234.5},
		{"string slice", attribute.StringSlice("tags", []string{"a", "b"}), []any{"a", "b"}},
		{"int slice", attribute.Int64Slice("ranks", []int64{1, 2}), []any{int64(1), int64(2)}},
		{"bool slice", attribute.BoolSlice("flags", []bool{true}), []any{true}},
		{"float slice", attribute.Float64Slice("waits", []float64{0.5}), []any{0.5}},
	}
	kvs := make([]attribute.KeyValue, len(attrCases))
	for i, c := range attrCases {
		kvs[i] = c.kv
	}

	tracer := tp.Tracer("sessiontrace/lifecycle")
	start := time.Date(2026, 11, 25, 4, 0, 0, 123456789, time.UTC)
	ctx, root := tracer.Start(context.Background(), "session.lifecycle", trace.WithTimestamp(start), trace.WithAttributes(kvs...))
	_, child := tracer.Start(ctx, "session.phase.login", trace.WithTimestamp(start))
	child.End(trace.WithTimestamp(start))
	remote := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID:    trace.TraceID{1, 2, 3},
		SpanID:     trace.SpanID{4, 5, 6},
		TraceFlags: trace.FlagsSampled,
		Remote:     true,
	})
	_, phase := tracer.Start(trace.ContextWithRemoteSpanContext(context.Background(), remote), "session.phase.matchmaking", trace.WithTimestamp(start))
	phase.End(trace.WithTimestamp(start.Add(90 * time.Second)))
	root.End(trace.WithTimestamp(start.Add(time.Hour)))

	if err := tp.ForceFlush(deadline(t, 10*time.Second)); err != nil {
		t.Fatalf("ForceFlush: %v", err)
	}
	if err := r.WaitCount(deadline(t, 10*time.Second), 3); err != nil {
		t.Fatal(err)
	}
	if got := r.Count(); got != 3 {
		t.Fatalf("Count = %d, want 3", got)
	}

	got := map[trace.SpanID]Span{}
	for _, s := range r.Spans() {
		got[s.SpanID] = s
	}
	for _, want := range rec.Ended() {
		s, ok := got[want.SpanContext().SpanID()]
		if !ok {
			t.Fatalf("span %q (%s) not received", want.Name(), want.SpanContext().SpanID())
		}
		if s.Name != want.Name() || s.TraceID != want.SpanContext().TraceID() || s.ParentSpanID != want.Parent().SpanID() {
			t.Errorf("span %q: got name %q trace %s parent %s, want trace %s parent %s", want.Name(), s.Name,
				s.TraceID, s.ParentSpanID, want.SpanContext().TraceID(), want.Parent().SpanID())
		}
		if s.Start != want.StartTime().UnixNano() || s.End != want.EndTime().UnixNano() {
			t.Errorf("span %q: times [%d, %d], want [%d, %d]", want.Name(), s.Start, s.End,
				want.StartTime().UnixNano(), want.EndTime().UnixNano())
		}
		if s.Scope != "sessiontrace/lifecycle" {
			t.Errorf("span %q: scope %q", want.Name(), s.Scope)
		}
		wantRes := map[string]any{"service.name": "receiver-test", "service.instance": int64(7)}
		if !reflect.DeepEqual(s.Resource, wantRes) {
			t.Errorf("span %q: resource %v, want %v", want.Name(), s.Resource, wantRes)
		}
		remote, known := s.ParentRemote()
		if !known || remote != want.Parent().IsRemote() {
			t.Errorf("span %q: ParentRemote() = %v, %v; want %v, true", want.Name(), remote, known, want.Parent().IsRemote())
		}
		if s.Flags&0xff != uint32(trace.FlagsSampled) {
			t.Errorf("span %q: flags %#x, want the sampled bit", want.Name(), s.Flags)
		}
		if want.Name() == "session.lifecycle" {
			if len(s.Attrs) != len(attrCases) {
				t.Errorf("root has %d attributes, want %d: %v", len(s.Attrs), len(attrCases), s.Attrs)
			}
			for _, c := range attrCases {
				t.Run(c.name, func(t *testing.T) {
					if v := s.Attrs[string(c.kv.Key)]; !reflect.DeepEqual(v, c.want) {
						t.Errorf("attribute %s = %#v, want %#v", c.kv.Key, v, c.want)
					}
				})
			}
		}
	}
}

// TestStopRestart simulates a collector outage: exports fail while the
// receiver is stopped, and the same exporter works again once it restarts on
// the same address, with nothing received before the outage lost.
func TestStopRestart(t *testing.T) {
	r := startReceiver(t)
	addr := r.Addr()
	exp := newExporter(t, addr, true)
	spans := recordSpans(t, 4)

	if err := exp.ExportSpans(deadline(t, 10*time.Second), spans[:2]); err != nil {
		t.Fatalf("export before outage: %v", err)
	}
	r.Stop()
	r.Stop() // a second Stop is harmless

	// The exporter retries Unavailable until the context ends; the outage
	// must surface as that deadline, not as success or a hang.
	err := exp.ExportSpans(deadline(t, 300*time.Millisecond), spans[2:])
	if err == nil {
		t.Fatal("export during outage succeeded")
	}
	if got := r.Count(); got != 2 {
		t.Fatalf("Count after failed export = %d, want 2", got)
	}

	if err := r.Restart(); err != nil {
		t.Fatalf("Restart: %v", err)
	}
	if r.Addr() != addr {
		t.Fatalf("Addr changed from %s to %s", addr, r.Addr())
	}
	if err := exp.ExportSpans(deadline(t, 10*time.Second), spans[2:]); err != nil {
		t.Fatalf("export after restart: %v", err)
	}
	if got := r.Count(); got != 4 {
		t.Fatalf("Count = %d, want 4", got)
	}
	var names []string
	for _, s := range r.Spans() {
		names = append(names, s.Name)
	}
	if want := []string{"span-0", "span-1", "span-2", "span-3"}; !reflect.DeepEqual(names, want) {
		t.Fatalf("received %v, want %v", names, want)
	}
}

func TestClose(t *testing.T) {
	r := startReceiver(t)
	client := dial(t, r.Addr())
	if _, err := client.Export(deadline(t, 5*time.Second), makeRequest(0, 3)); err != nil {
		t.Fatalf("Export: %v", err)
	}
	r.Close()
	r.Close()
	if err := r.Restart(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Restart after Close = %v, want ErrClosed", err)
	}
	if got := len(r.Spans()); got != 3 {
		t.Fatalf("after Close, %d spans readable, want 3", got)
	}
}

func TestStartAddressInUse(t *testing.T) {
	r := startReceiver(t)
	if r2, err := Start(r.Addr()); err == nil {
		r2.Close()
		t.Fatalf("second Start on %s succeeded", r.Addr())
	}
}

// TestConcurrentExports runs several exporters and readers at once; run with
// -race it checks the receiver's locking, and it checks that no span is lost
// or duplicated.
func TestConcurrentExports(t *testing.T) {
	const (
		exporters = 6
		batches   = 20
		perBatch  = 50
		total     = exporters * batches * perBatch
	)
	r := startReceiver(t)
	var callbackSpans int
	r.OnExport(func(req *coltracepb.ExportTraceServiceRequest) {
		// Callbacks are serialised, so this needs no lock of its own.
		for _, rs := range req.GetResourceSpans() {
			for _, ss := range rs.GetScopeSpans() {
				callbackSpans += len(ss.GetSpans())
			}
		}
	})
	ctx := deadline(t, 30*time.Second)

	readersDone := make(chan struct{})
	var readers sync.WaitGroup
	readers.Go(func() {
		for {
			select {
			case <-readersDone:
				return
			default:
				_ = r.Spans()
				_ = r.Count()
				_ = r.Payloads()
			}
		}
	})
	t.Cleanup(func() { close(readersDone); readers.Wait() })

	var wg sync.WaitGroup
	errs := make(chan error, exporters*batches)
	for e := range exporters {
		client := dial(t, r.Addr())
		wg.Go(func() {
			for b := range batches {
				first := uint64((e*batches + b) * perBatch)
				if _, err := client.Export(ctx, makeRequest(first, perBatch)); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	// Toggle payload keeping while requests are in flight.
	r.KeepPayloads(true)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("Export: %v", err)
	}
	if err := r.WaitCount(ctx, total); err != nil {
		t.Fatal(err)
	}
	spans := r.Spans()
	if len(spans) != total || r.Count() != total {
		t.Fatalf("Spans() has %d, Count() = %d, want %d", len(spans), r.Count(), total)
	}
	seen := make(map[trace.SpanID]bool, total)
	for _, s := range spans {
		if seen[s.SpanID] {
			t.Fatalf("span %s received twice", s.SpanID)
		}
		seen[s.SpanID] = true
	}
	r.cbMu.Lock()
	defer r.cbMu.Unlock()
	if callbackSpans != total {
		t.Fatalf("callbacks saw %d spans, want %d", callbackSpans, total)
	}
}
