package main

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// tracesOnlyCollector is a real OTLP/gRPC server that serves the trace
// service only, as a traces-only collector does: a metrics export gets the
// gRPC server's Unimplemented answer. It counts both kinds of request.
type tracesOnlyCollector struct {
	coltracepb.UnimplementedTraceServiceServer
	addr          string
	spans         atomic.Int64
	metricExports atomic.Int64
}

func (c *tracesOnlyCollector) Export(_ context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	for _, rs := range req.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			c.spans.Add(int64(len(ss.GetSpans())))
		}
	}
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

func startTracesOnlyCollector(t *testing.T) *tracesOnlyCollector {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &tracesOnlyCollector{addr: lis.Addr().String()}
	// The handler for unregistered services answers what grpc-go answers
	// by default, and counts the metrics exports among them.
	srv := grpc.NewServer(grpc.UnknownServiceHandler(func(_ any, stream grpc.ServerStream) error {
		method, _ := grpc.MethodFromServerStream(stream)
		if strings.HasPrefix(method, "/opentelemetry.proto.collector.metrics.") {
			c.metricExports.Add(1)
		}
		return status.Errorf(codes.Unimplemented, "unknown service %s", method)
	}))
	coltracepb.RegisterTraceServiceServer(srv, c)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(lis)
	}()
	t.Cleanup(func() {
		srv.Stop()
		<-done
	})
	return c
}

// TestMetricsStopOnUnimplemented: against a collector without the metrics
// service, the first push says so in one line and no later push is tried.
func TestMetricsStopOnUnimplemented(t *testing.T) {
	coll := startTracesOnlyCollector(t)
	cfg := defaultConfig()
	cfg.OTLP.Endpoint, cfg.OTLP.Insecure = coll.addr, true
	cfg.Metrics.Interval = 24 * time.Hour // only the flushes below push
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	res, err := newResource(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	pm, err := newMetrics(t.Context(), cfg, res, log)
	if err != nil {
		t.Fatal(err)
	}
	counter, err := pm.provider.Meter("test").Int64Counter("test.pushes")
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		counter.Add(t.Context(), 1)
		if err := pm.provider.ForceFlush(t.Context()); err != nil {
			t.Errorf("ForceFlush: %v", err)
		}
	}
	pm.shutdown(log)
	if n := coll.metricExports.Load(); n != 1 {
		t.Errorf("%d metrics exports reached the collector, want 1 (then no more)", n)
	}
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], "does not accept metrics") || !strings.Contains(lines[0], coll.addr) {
		t.Errorf("want one line saying the endpoint does not accept metrics, got:\n%s", logs.String())
	}
}

// TestReplayOTLPTracesOnlyCollector: replay -o otlp to a traces-only
// collector exports its spans and says once, in one line, that metrics are
// not accepted.
func TestReplayOTLPTracesOnlyCollector(t *testing.T) {
	coll := startTracesOnlyCollector(t)
	r := runCLI(t, nil, "replay", "-o", "otlp", "--otlp-endpoint", coll.addr, "--otlp-insecure", sessionsFile)
	mustSucceed(t, r, "replay -o otlp")
	if n := coll.spans.Load(); n != sessionsSpans {
		t.Errorf("%d spans received, want %d", n, sessionsSpans)
	}
	var metricLines []string
	for line := range strings.SplitSeq(r.stderr, "\n") {
		if strings.Contains(strings.ToLower(line), "metric") {
			metricLines = append(metricLines, line)
		}
	}
	if len(metricLines) != 1 || !strings.Contains(metricLines[0], "does not accept metrics") {
		t.Errorf("want one line about metrics saying they are not accepted, got:\n%s", r.stderr)
	}
}
