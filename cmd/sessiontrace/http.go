package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/sessiontrace/sessiontrace/consumer/export"
)

// watchedExporter remembers how the last export went, for /readyz. The
// consumer's export lanes call it; it adds two atomic stores per batch.
type watchedExporter struct {
	sdktrace.SpanExporter
	lastOK   atomic.Int64 // Unix nanoseconds of the last accepted export
	lastFail atomic.Int64 // Unix nanoseconds of the last failed export
	lastErr  atomic.Pointer[string]
}

// ExportSpans exports through the wrapped exporter and records the result.
func (w *watchedExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	err := w.SpanExporter.ExportSpans(ctx, spans)
	w.observe(err)
	return err
}

// observe records the outcome of one export.
func (w *watchedExporter) observe(err error) {
	now := time.Now().UnixNano()
	// A partial success is an accepted request: the endpoint answers.
	if err != nil && export.Classify(err) != export.PartialSuccess {
		msg := err.Error()
		w.lastErr.Store(&msg)
		w.lastFail.Store(now)
	} else {
		w.lastOK.Store(now)
	}
}

// watchedClient is the direct export path's view of the same watch: its
// uploads bypass the exporter, so they are recorded here, into the
// exporter's state, and /readyz reads one outcome whichever path runs.
type watchedClient struct {
	otlptrace.Client
	watch *watchedExporter
}

// UploadTraces uploads through the wrapped client and records the result.
func (c *watchedClient) UploadTraces(ctx context.Context, rs []*tracepb.ResourceSpans) error {
	err := c.Client.UploadTraces(ctx, rs)
	c.watch.observe(err)
	return err
}

// answering reports whether the endpoint accepted the most recent export.
// Before the first export it is presumed to answer: the consumer has
// nothing to send yet, and an unreachable endpoint shows on the first batch.
func (w *watchedExporter) answering() (bool, string) {
	fail := w.lastFail.Load()
	if fail == 0 || w.lastOK.Load() > fail {
		return true, ""
	}
	msg := ""
	if p := w.lastErr.Load(); p != nil {
		msg = *p
	}
	return false, msg
}

// health answers /healthz and /readyz.
type health struct {
	ready    func() (bool, string) // the consumer's Readiness
	stopping <-chan struct{}       // closed when shutdown began
	exporter *watchedExporter
}

func (h *health) live(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintln(w, "ok")
}

func (h *health) readyz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	select {
	case <-h.stopping:
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintln(w, "shutting down")
		return
	default:
	}
	if ok, why := h.ready(); !ok {
		w.WriteHeader(http.StatusServiceUnavailable)
		// The reason quotes brokers' and collectors' errors: escaped, it
		// stays one line.
		fmt.Fprintf(w, "not ready: %s\n", lineText(why))
		return
	}
	if ok, msg := h.exporter.answering(); !ok {
		w.WriteHeader(http.StatusServiceUnavailable)
		// The message is the collector's: escaped, it stays one line.
		fmt.Fprintf(w, "not ready: the OTLP endpoint rejected the last export: %s\n", lineText(msg))
		return
	}
	fmt.Fprintln(w, "ready")
}

// httpServer is the health and metrics endpoint; a nil *httpServer is a
// disabled one.
type httpServer struct {
	srv  *http.Server
	done chan struct{}
}

// startHTTP listens on addr before returning, so a port already in use fails
// the start, and serves in a goroutine that shutdown waits for.
func startHTTP(addr string, h *health, reg *prometheus.Registry, log *slog.Logger) (*httpServer, error) {
	if addr == "" {
		return nil, nil
	}
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("http.address: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", h.live)
	mux.HandleFunc("GET /readyz", h.readyz)
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	s := &httpServer{
		srv:  &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second},
		done: make(chan struct{}),
	}
	log.Info("http endpoint listening", "address", lis.Addr().String())
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("http endpoint stopped", "error", err)
		}
	}()
	return s, nil
}

func (s *httpServer) shutdown(log *slog.Logger) {
	if s == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil {
		log.Warn("http endpoint shutdown", "error", err)
	}
	<-s.done
}
