// Package receiver is a minimal but real OTLP/gRPC trace receiver: a gRPC
// server implementing the official collector TraceService, listening on a
// local address and keeping what it receives in memory.
//
// Tests use it to assert the exact spans that reach a collector, and the demo
// and bench commands embed it as their collector, so it is an ordinary
// package: it is safe for concurrent use, decodes requests with the generated
// protobuf types and keeps each received span as the decoded message itself
// (the flattened Span views are built only when Spans is called). With
// KeepSpans(false) and nothing else asking for the request, it only counts
// spans by walking the wire format, which keeps an embedded receiver from
// dominating the CPU profile of the process it measures.
//
// A Receiver can simulate a collector outage (Stop, then Restart on the same
// address), failing exports (FailNext), any answer per request (Respond:
// a gRPC status, a partial success) and a size limit on requests
// (WithMaxRequestBytes) without the exporter noticing any difference from a
// real collector.
package receiver

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
)

// ErrClosed is returned by Restart after Close.
var ErrClosed = errors.New("receiver: closed")

// Receiver is an OTLP/gRPC trace receiver. Create it with Start; the zero
// value is not usable. All methods are safe for concurrent use.
type Receiver struct {
	addr    string
	maxRecv int // 0: gRPC's default

	// lifeMu serialises Stop, Restart and Close, and guards the fields below.
	lifeMu    sync.Mutex
	srv       *grpc.Server
	serveDone chan struct{}
	closed    bool

	// mu guards what was received and the switches that shape it.
	mu           sync.Mutex
	spans        []stored
	payloads     [][]byte
	keepSpans    bool
	keepPayloads bool
	failLeft     int
	failCode     codes.Code
	respond      func(*coltracepb.ExportTraceServiceRequest) Answer
	callbacks    []func(*coltracepb.ExportTraceServiceRequest)
	// changed is closed and replaced on every accepted request, so that
	// WaitCount callers wake exactly when the count may have moved.
	changed chan struct{}

	count atomic.Int64

	// cbMu serialises OnExport callbacks so that they need no locking of
	// their own even though requests are handled concurrently.
	cbMu sync.Mutex

	// metrics is the OTLP metrics service served beside the trace service.
	metrics *metricsStore
}

// Option configures a Receiver at Start.
type Option func(*Receiver)

// WithMaxRequestBytes sets the largest export request the receiver's gRPC
// server accepts (grpc.MaxRecvMsgSize; gRPC's default is 4 MiB). A larger
// one fails as it does on any gRPC server: ResourceExhausted, "grpc:
// received message larger than max".
func WithMaxRequestBytes(n int) Option { return func(r *Receiver) { r.maxRecv = n } }

// Start listens on addr ("127.0.0.1:0" picks a free port) and serves OTLP
// trace exports on it. The listener is open when Start returns, so an
// exporter may dial Addr immediately.
func Start(addr string, opts ...Option) (*Receiver, error) {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("receiver: listen on %s: %w", addr, err)
	}
	r := &Receiver{
		addr:      lis.Addr().String(),
		keepSpans: true,
		changed:   make(chan struct{}),
		metrics:   newMetricsStore(),
	}
	for _, o := range opts {
		o(r)
	}
	r.serveLocked(lis)
	return r, nil
}

// Addr returns the host:port the receiver listens on. It stays the same
// across Stop and Restart, so an exporter configured once keeps working.
func (r *Receiver) Addr() string { return r.addr }

// Stop simulates a collector outage: it closes the listener and every
// connection, failing in-flight exports, and returns once no export handler
// is running. What was received before is kept. Stop on a stopped receiver
// does nothing.
func (r *Receiver) Stop() {
	r.lifeMu.Lock()
	defer r.lifeMu.Unlock()
	r.stopLocked()
}

// Restart listens again on the address of Addr after Stop. It does nothing
// if the receiver is running, and returns ErrClosed after Close.
func (r *Receiver) Restart() error {
	r.lifeMu.Lock()
	defer r.lifeMu.Unlock()
	if r.closed {
		return ErrClosed
	}
	if r.srv != nil {
		return nil
	}
	// Go sets SO_REUSEADDR on listeners, so connections the previous server
	// left in TIME_WAIT do not keep the port from being bound again.
	lis, err := net.Listen("tcp", r.addr)
	if err != nil {
		return fmt.Errorf("receiver: listen again on %s: %w", r.addr, err)
	}
	r.serveLocked(lis)
	return nil
}

// Close stops the receiver for good. It is idempotent; what was received
// stays readable.
func (r *Receiver) Close() {
	r.lifeMu.Lock()
	defer r.lifeMu.Unlock()
	r.closed = true
	r.stopLocked()
}

func (r *Receiver) serveLocked(lis net.Listener) {
	opts := []grpc.ServerOption{
		// Stop must not return while a handler may still record a request,
		// or spans could appear after a simulated outage began.
		grpc.WaitForHandlers(true),
		grpc.ForceServerCodecV2(codec{}),
	}
	if r.maxRecv > 0 {
		opts = append(opts, grpc.MaxRecvMsgSize(r.maxRecv))
	}
	srv := grpc.NewServer(opts...)
	srv.RegisterService(&traceService, r)
	srv.RegisterService(&metricsService, r.metrics)
	done := make(chan struct{})
	r.srv, r.serveDone = srv, done
	go func() {
		defer close(done)
		// Serve returns nil after Stop. Any other error means the listener
		// broke; exporters then see failing exports, which is exactly what a
		// broken collector looks like, so there is nothing more to report.
		_ = srv.Serve(lis)
	}()
}

func (r *Receiver) stopLocked() {
	if r.srv == nil {
		return
	}
	r.srv.Stop()
	<-r.serveDone
	r.srv, r.serveDone = nil, nil
}
