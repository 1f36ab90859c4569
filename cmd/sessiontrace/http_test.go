package main

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// failingExporter fails while fail is set, like an unreachable collector.
type failingExporter struct {
	sdktrace.SpanExporter
	fail bool
}

func (f *failingExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	if f.fail {
		return errors.New("connection refused")
	}
	return f.SpanExporter.ExportSpans(ctx, spans)
}

func TestReadyz(t *testing.T) {
	closed := make(chan struct{})
	close(closed)
	open := make(chan struct{})
	for _, c := range []struct {
		name     string
		ready    chan struct{}
		stopping chan struct{}
		exports  []bool // export outcomes, in order: true = accepted
		code     int
		body     string
	}{
		{"not assigned yet", open, open, nil, http.StatusServiceUnavailable, "no partitions assigned"},
		{"assigned, nothing exported yet", closed, open, nil, http.StatusOK, "ready"},
		{"last export accepted", closed, open, []bool{false, true}, http.StatusOK, "ready"},
		{"last export failed", closed, open, []bool{true, false}, http.StatusServiceUnavailable, "connection refused"},
		{"shutting down", closed, closed, []bool{true}, http.StatusServiceUnavailable, "shutting down"},
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
