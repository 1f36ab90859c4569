package export

import (
	"context"
	"slices"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/sessiontrace/sessiontrace/lifecycle"
)

func newProvider(t testing.TB, opts ...sdktrace.TracerProviderOption) *sdktrace.TracerProvider {
	t.Helper()
	tp := sdktrace.NewTracerProvider(opts...)
	t.Cleanup(func() {
		if err := tp.Shutdown(context.Background()); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return tp
}

func TestEmit(t *testing.T) {
	// One player's session: a root, then login, matchmaking, loading and
	// in-game phases, with the attributes each carries.
	spans := testSpans(t, 1, 1)
	rec := tracetest.NewSpanRecorder()
	tp := newProvider(t, sdktrace.WithIDGenerator(idGenerator{}), sdktrace.WithSampler(sdktrace.AlwaysSample()),
		sdktrace.WithSpanProcessor(rec))
	e := newEmitter(tp.Tracer("export-test"))
	for i := range spans {
		if err := e.Emit(t.Context(), &spans[i]); err != nil {
			t.Fatalf("Emit(%s): %v", spans[i].Name, err)
		}
	}
	got := rec.Ended()
	if len(got) != len(spans) {
		t.Fatalf("recorded %d spans, want %d", len(got), len(spans))
	}
	for i, want := range spans {
		g := got[i]
		t.Run(want.Name, func(t *testing.T) {
			if g.Name() != want.Name || g.SpanKind() != trace.SpanKindInternal {
				t.Errorf("name/kind %s/%v", g.Name(), g.SpanKind())
			}
			if g.SpanContext().TraceID() != want.TraceID || g.SpanContext().SpanID() != want.SpanID {
				t.Errorf("IDs %s/%s, want %s/%s", g.SpanContext().TraceID(), g.SpanContext().SpanID(), want.TraceID, want.SpanID)
			}
			if !g.SpanContext().IsSampled() {
				t.Error("not sampled")
			}
			if want.IsRoot() {
				if g.Parent().IsValid() {
					t.Errorf("root has parent %s", g.Parent().SpanID())
				}
			} else if g.Parent().SpanID() != want.ParentSpanID || g.Parent().TraceID() != want.TraceID || !g.Parent().IsRemote() {
				t.Errorf("parent %s remote=%t, want %s remote", g.Parent().SpanID(), g.Parent().IsRemote(), want.ParentSpanID)
			}
			if g.StartTime().UnixNano() != want.Start || g.EndTime().UnixNano() != want.End {
				t.Errorf("times %d..%d, want %d..%d", g.StartTime().UnixNano(), g.EndTime().UnixNano(), want.Start, want.End)
			}
			if !slices.Equal(g.Attributes(), want.Attrs) {
				t.Errorf("attributes\n got %v\nwant %v", g.Attributes(), want.Attrs)
			}
			if g.Status().Code != 0 || len(g.Events()) != 0 || len(g.Links()) != 0 {
				t.Errorf("unexpected status/events/links: %v %v %v", g.Status(), g.Events(), g.Links())
			}
		})
	}
}

func TestEmitMisconfigured(t *testing.T) {
	spans := testSpans(t, 1, 0)
	var root, span lifecycle.Span
	for _, s := range spans {
		if s.IsRoot() {
			root = s
		} else {
			span = s
		}
	}
	tests := []struct {
		name string
		opts []sdktrace.TracerProviderOption
	}{
		{name: "default id generator", opts: []sdktrace.TracerProviderOption{sdktrace.WithSampler(sdktrace.AlwaysSample())}},
		{name: "never sample", opts: []sdktrace.TracerProviderOption{
			sdktrace.WithIDGenerator(idGenerator{}), sdktrace.WithSampler(sdktrace.NeverSample())}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := tracetest.NewSpanRecorder()
			tp := newProvider(t, append(tt.opts, sdktrace.WithSpanProcessor(rec))...)
			e := newEmitter(tp.Tracer("x"))
			for _, s := range []*lifecycle.Span{&root, &span} {
				if err := e.Emit(t.Context(), s); err == nil {
					t.Errorf("Emit(%s) succeeded", s.Name)
				}
			}
			if n := len(rec.Ended()); n != 0 {
				t.Errorf("%d wrong spans were ended", n)
			}
		})
	}
}

func TestIDGeneratorFallback(t *testing.T) {
	var g sdktrace.IDGenerator = idGenerator{}
	tid, sid := g.NewIDs(t.Context())
	if !tid.IsValid() || !sid.IsValid() || !g.NewSpanID(t.Context(), tid).IsValid() {
		t.Errorf("fallback IDs invalid: %s %s", tid, sid)
	}
	tid2, _ := g.NewIDs(t.Context())
	if tid == tid2 {
		t.Error("fallback trace IDs repeat")
	}
}
