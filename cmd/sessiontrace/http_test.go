package main

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
)

// failingExporter fails while fail is set, like an unreachable collector.
type failingExporter struct {
	sdktrace.SpanExporter
	fail bool
	msg  string // the error's text; "connection refused" when empty
}

func (f *failingExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	if f.fail {
		if f.msg != "" {
			return errors.New(f.msg)
		}
		return errors.New("connection refused")
	}
	return f.SpanExporter.ExportSpans(ctx, spans)
}

func TestReadyz(t *testing.T) {
	closed := make(chan struct{})
	close(closed)
	open := make(chan struct{})
	ready := func() (bool, string) { return true, "" }
	unassigned := func() (bool, string) { return false, "no partitions assigned" }
	refused := func() (bool, string) {
		return false, "kafka refuses the consumer: SASL_AUTHENTICATION_FAILED\x1b[2J\nforged"
	}
	for _, c := range []struct {
		name     string
		ready    func() (bool, string)
		stopping chan struct{}
		exports  []bool // export outcomes, in order: true = accepted
		code     int
		body     string
	}{
		{"not assigned", unassigned, open, nil, http.StatusServiceUnavailable, "not ready: no partitions assigned"},
		{"kafka refuses, escaped on one line", refused, open, []bool{true}, http.StatusServiceUnavailable, `SASL_AUTHENTICATION_FAILED\x1b[2J\nforged`},
		{"assigned, nothing exported yet", ready, open, nil, http.StatusOK, "ready"},
		{"last export accepted", ready, open, []bool{false, true}, http.StatusOK, "ready"},
		{"last export failed", ready, open, []bool{true, false}, http.StatusServiceUnavailable, "connection refused"},
		{"shutting down", ready, closed, []bool{true}, http.StatusServiceUnavailable, "shutting down"},
	} {
		t.Run(c.name, func(t *testing.T) {
			inner := &failingExporter{SpanExporter: tracetest.NewInMemoryExporter()}
			w := &watchedExporter{SpanExporter: inner}
			for _, ok := range c.exports {
				inner.fail = !ok
				_ = w.ExportSpans(t.Context(), nil)
			}
			h := &health{ready: c.ready, stopping: c.stopping, exporter: w}
			rec := httptest.NewRecorder()
			h.readyz(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
			if rec.Code != c.code || !strings.Contains(rec.Body.String(), c.body) {
				t.Errorf("got %d %q, want %d containing %q", rec.Code, rec.Body.String(), c.code, c.body)
			}
		})
	}
}

// TestReadyzEscapesTheCollectorsMessage: the collector's error text is
// printed escaped, on one line.
func TestReadyzEscapesTheCollectorsMessage(t *testing.T) {
	inner := &failingExporter{SpanExporter: tracetest.NewInMemoryExporter(), fail: true,
		msg: "quota\x1b[2J exceeded\nready\xff"}
	w := &watchedExporter{SpanExporter: inner}
	_ = w.ExportSpans(t.Context(), nil)
	h := &health{ready: func() (bool, string) { return true, "" }, stopping: make(chan struct{}), exporter: w}
	rec := httptest.NewRecorder()
	h.readyz(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	body := rec.Body.String()
	if strings.Count(body, "\n") != 1 || strings.ContainsAny(body, "\x1b\xff") || !strings.Contains(body, `quota\x1b[2J exceeded\nready\xff`) {
		t.Errorf("body %q: want the message escaped on one line", body)
	}
}

// failingClient fails its uploads while fail is set. It stands in for the
// OTLP client only in this unit test of the watch.
type failingClient struct {
	otlptrace.Client
	fail bool
}

func (f *failingClient) UploadTraces(context.Context, []*tracepb.ResourceSpans) error {
	if f.fail {
		return errors.New("connection refused")
	}
	return nil
}

// TestReadyzWatchesTheDirectPath checks that uploads of the direct export
// path, which bypass the exporter, reach the same readiness state.
func TestReadyzWatchesTheDirectPath(t *testing.T) {
	watch := &watchedExporter{SpanExporter: tracetest.NewInMemoryExporter()}
	inner := &failingClient{}
	c := &watchedClient{Client: inner, watch: watch}
	for _, step := range []struct {
		fail bool
		want bool
	}{{true, false}, {false, true}, {true, false}} {
		inner.fail = step.fail
		_ = c.UploadTraces(t.Context(), nil)
		if ok, msg := watch.answering(); ok != step.want {
			t.Fatalf("after an upload that failed=%t: answering = %t (%q), want %t", step.fail, ok, msg, step.want)
		}
	}
}
