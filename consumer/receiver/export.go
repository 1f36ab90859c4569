package receiver

import (
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
)

// FailNext makes the next n export requests fail with the gRPC status code
// code, as a collector in trouble would. OTLP exporters retry
// codes.Unavailable (and Canceled, DeadlineExceeded, Aborted, OutOfRange,
// DataLoss); they give up at once on most others, including
// ResourceExhausted, which they retry only with a RetryInfo detail that
// FailNext does not attach. Failed requests are not recorded. FailNext
// replaces any failures still pending; n <= 0 or codes.OK clears them.
func (r *Receiver) FailNext(n int, code codes.Code) {
	if code == codes.OK {
		n = 0
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failLeft, r.failCode = max(n, 0), code
}

// Answer is how the receiver answers one export request (see Respond).
type Answer struct {
	// Code fails the request with this gRPC status code and Message when it
	// is not codes.OK; the request is not recorded.
	Code codes.Code
	// Message is the status message of a failure, or the partial success's
	// error_message.
	Message string
	// Rejected, with Code OK, answers with an OTLP partial_success that
	// rejects this many spans. A partial success with a Message and no
	// rejected span is a warning.
	Rejected int64
	// RetryAfter, with a failure Code, attaches a google.rpc.RetryInfo
	// detail asking the client to wait this long before it retries (OTLP
	// servers send it with Unavailable and ResourceExhausted).
	RetryAfter time.Duration
}

// Respond makes the receiver answer every export request with what fn
// returns for it, as a collector with limits or a policy would; nil
// restores accepting everything. An accepted request (Code OK, partial
// success or not) is recorded whole, so a test can count what was sent
// twice. fn runs on the handler's goroutine, concurrently for concurrent
// exporters; it must not modify the request. FailNext wins over it.
func (r *Receiver) Respond(fn func(*coltracepb.ExportTraceServiceRequest) Answer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.respond = fn
}

// OnExport registers fn to run for every accepted request, after its spans
// are counted and before the exporter receives the acknowledgement.
// Callbacks run one at a time, in registration order; fn must not modify the
// request and must not call OnExport. A slow fn slows every exporter down,
// which is sometimes the point.
func (r *Receiver) OnExport(fn func(*coltracepb.ExportTraceServiceRequest)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	// Copy on write: export reads the slice outside the lock.
	r.callbacks = append(r.callbacks[:len(r.callbacks):len(r.callbacks)], fn)
}

// KeepPayloads switches on or off keeping the deterministic protobuf encoding
// of every accepted request, returned by Payloads. It is off by default
// because it doubles the memory held per span and costs a marshal per
// request; requests accepted while it is off have no payload.
func (r *Receiver) KeepPayloads(keep bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.keepPayloads = keep
}

// KeepSpans switches on or off keeping received spans for Spans. It is on by
// default; benchmarks that only need Count and WaitCount switch it off so
// that memory stays flat however many spans arrive.
func (r *Receiver) KeepSpans(keep bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.keepSpans = keep
}

// Payloads returns the deterministic protobuf encoding of each request
// accepted while KeepPayloads was on, in arrival order. The returned byte
// slices must not be modified.
func (r *Receiver) Payloads() [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][]byte(nil), r.payloads...)
}

func (r *Receiver) export(data []byte) (*coltracepb.ExportTraceServiceResponse, error) {
	r.mu.Lock()
	if r.failLeft > 0 {
		r.failLeft--
		code := r.failCode
		r.mu.Unlock()
		return nil, status.Errorf(code, "receiver: injected failure %s", code)
	}
	keepSpans, keepPayloads, callbacks, respond := r.keepSpans, r.keepPayloads, r.callbacks, r.respond
	r.mu.Unlock()

	if !keepSpans && !keepPayloads && len(callbacks) == 0 && respond == nil {
		n, err := countSpans(data)
		if err != nil {
			return nil, malformed(err)
		}
		r.record(n, nil, nil)
		return &coltracepb.ExportTraceServiceResponse{}, nil
	}

	// Decode, flatten and encode outside the lock so concurrent exports only
	// serialise on the append.
	req := new(coltracepb.ExportTraceServiceRequest)
	if err := proto.Unmarshal(data, req); err != nil {
		return nil, malformed(err)
	}
	resp := &coltracepb.ExportTraceServiceResponse{}
	if respond != nil {
		a := respond(req)
		if a.Code != codes.OK {
			st := status.New(a.Code, a.Message)
			if a.RetryAfter > 0 {
				if with, err := st.WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(a.RetryAfter)}); err == nil {
					st = with
				}
			}
			return nil, st.Err()
		}
		if a.Rejected != 0 || a.Message != "" {
			resp.PartialSuccess = &coltracepb.ExportTracePartialSuccess{RejectedSpans: a.Rejected, ErrorMessage: a.Message}
		}
	}
	n := 0
	for _, rs := range req.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			n += len(ss.GetSpans())
		}
	}
	var batch []stored
	if keepSpans && n > 0 {
		batch = make([]stored, 0, n)
		for _, rs := range req.GetResourceSpans() {
			for _, ss := range rs.GetScopeSpans() {
				for _, sp := range ss.GetSpans() {
					batch = append(batch, stored{span: sp, resource: rs, scope: ss})
				}
			}
		}
	}
	var payload []byte
	if keepPayloads {
		var err error
		payload, err = proto.MarshalOptions{Deterministic: true}.Marshal(req)
		if err != nil {
			return nil, status.Errorf(codes.Internal, "receiver: encode payload: %v", err)
		}
	}
	r.record(n, batch, payload)

	if len(callbacks) > 0 {
		r.cbMu.Lock()
		for _, fn := range callbacks {
			fn(req)
		}
		r.cbMu.Unlock()
	}
	return resp, nil
}

// malformed is the error for a request that is not valid protobuf. gRPC's
// own codec, and so a Go collector, answers such a request with Internal,
// which exporters do not retry.
func malformed(err error) error {
	return status.Errorf(codes.Internal, "receiver: malformed export request: %v", err)
}

// record adds an accepted request's n spans (kept as batch) and payload, if
// any, and wakes WaitCount callers.
func (r *Receiver) record(n int, batch []stored, payload []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.spans = append(r.spans, batch...)
	if payload != nil {
		r.payloads = append(r.payloads, payload)
	}
	r.count.Add(int64(n))
	close(r.changed)
	r.changed = make(chan struct{})
}

// stored is one received span with the messages that enclose it. It holds
// only pointers into the decoded request, so keeping a span costs no copy.
type stored struct {
	span     *tracepb.Span
	resource *tracepb.ResourceSpans
	scope    *tracepb.ScopeSpans
}
