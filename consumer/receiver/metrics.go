package receiver

import (
	"context"
	"fmt"
	"sync"

	colmetricpb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	metricpb "go.opentelemetry.io/proto/otlp/metrics/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
)

// metricsService is colmetricpb.MetricsService_ServiceDesc with a handler
// that goes through the server's codec: the server forces a codec that hands
// every request over undecoded (see codec.go), so the generated handler,
// which expects a decoded message, cannot be used as is.
var metricsService = grpc.ServiceDesc{
	ServiceName: colmetricpb.MetricsService_ServiceDesc.ServiceName,
	HandlerType: (*colmetricpb.MetricsServiceServer)(nil),
	Methods:     []grpc.MethodDesc{{MethodName: "Export", Handler: handleMetricsExport}},
	Metadata:    colmetricpb.MetricsService_ServiceDesc.Metadata,
}

// handleMetricsExport ignores the interceptor argument because the server is
// built without interceptors.
func handleMetricsExport(srv any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
	var in rawRequest
	if err := dec(&in); err != nil {
		return nil, err
	}
	defer in.buf.Free()
	req := new(colmetricpb.ExportMetricsServiceRequest)
	if err := proto.Unmarshal(in.buf.ReadOnlyData(), req); err != nil {
		return nil, malformed(err)
	}
	return srv.(colmetricpb.MetricsServiceServer).Export(ctx, req)
}

// metricsStore is the receiver's OTLP metrics service: it keeps every
// received ResourceMetrics. It shares the trace service's gRPC server, so
// Stop, Restart and Close apply to both, but not FailNext, which only fails
// trace exports.
type metricsStore struct {
	colmetricpb.UnimplementedMetricsServiceServer

	mu       sync.Mutex
	resource []*metricpb.ResourceMetrics
	// changed is closed and replaced on every accepted request, so that
	// WaitMetrics callers wake exactly when what was received may have
	// changed.
	changed chan struct{}
}

func newMetricsStore() *metricsStore {
	return &metricsStore{changed: make(chan struct{})}
}

// Export implements colmetricpb.MetricsServiceServer.
func (m *metricsStore) Export(_ context.Context, req *colmetricpb.ExportMetricsServiceRequest) (*colmetricpb.ExportMetricsServiceResponse, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.resource = append(m.resource, req.GetResourceMetrics()...)
	close(m.changed)
	m.changed = make(chan struct{})
	return &colmetricpb.ExportMetricsServiceResponse{}, nil
}

// Metrics returns every ResourceMetrics received so far, in arrival order.
// The messages are shared with the receiver and must not be modified.
func (r *Receiver) Metrics() []*metricpb.ResourceMetrics {
	r.metrics.mu.Lock()
	defer r.metrics.mu.Unlock()
	return append([]*metricpb.ResourceMetrics(nil), r.metrics.resource...)
}

// WaitMetrics blocks until done, called with everything received so far,
// returns true, or ctx ends. done is called once on entry and again after
// every accepted metrics export, never concurrently; it must not modify its
// argument. A cumulative exporter sends its whole state every time, so done
// usually looks at the last data point of each metric.
func (r *Receiver) WaitMetrics(ctx context.Context, done func([]*metricpb.ResourceMetrics) bool) error {
	m := r.metrics
	for {
		// Take the channel with the snapshot: an export accepted after it
		// closes this very channel, so no wake-up is missed.
		m.mu.Lock()
		changed, got := m.changed, append([]*metricpb.ResourceMetrics(nil), m.resource...)
		m.mu.Unlock()
		if done(got) {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("receiver: wait for metrics, %d resource metrics received: %w", len(got), ctx.Err())
		}
	}
}
