package export

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/trace"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/sessiontrace/sessiontrace/consumer/receiver"
	"github.com/sessiontrace/sessiontrace/lifecycle"
)

func TestClassify(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want Class
	}{
		{"nil", nil, Accepted},
		{"unavailable", status.Error(codes.Unavailable, "connection refused"), Retryable},
		{"deadline", status.Error(codes.DeadlineExceeded, "context deadline exceeded"), Retryable},
		{"aborted", status.Error(codes.Aborted, "try again"), Retryable},
		{"canceled", status.Error(codes.Canceled, "context canceled"), Retryable},
		{"quota", status.Error(codes.ResourceExhausted, "rate limit: 1000 spans/s exceeded"), Retryable},
		{"context error", fmt.Errorf("upload: %w", context.DeadlineExceeded), Retryable},
		{"unknown error", errors.New("dial tcp 127.0.0.1:4317: connect: connection refused"), Retryable},
		{"internal", status.Error(codes.Internal, "oops"), Retryable},
		{"partial success", &PartialSuccessError{Rejected: 2, Message: "too big"}, PartialSuccess},
		{"partial success wrapped", fmt.Errorf("traces export: %w", &PartialSuccessError{Rejected: 1}), PartialSuccess},
		{"invalid argument", status.Error(codes.InvalidArgument, "span name empty"), RejectedData},
		{"invalid argument wrapped", fmt.Errorf("traces export: %w", status.Error(codes.InvalidArgument, "bad")), RejectedData},
		{"too large, server side", status.Error(codes.ResourceExhausted, "grpc: received message larger than max (5000000 vs. 4194304)"), RejectedData},
		{"too large, client side", status.Error(codes.ResourceExhausted, "trying to send message larger than max (5000000 vs. 4194304)"), RejectedData},
		{"too large, decompressed", status.Error(codes.ResourceExhausted, "grpc: received message after decompression larger than max 4194304"), RejectedData},
		{"too large, otlptracegrpc's own limit", errors.New("request message too large: exceeded 1000 bytes"), RejectedData},
		{"unauthenticated", status.Error(codes.Unauthenticated, "bad token"), RejectedConfig},
		{"permission denied", status.Error(codes.PermissionDenied, "tenant"), RejectedConfig},
		{"unimplemented", status.Error(codes.Unimplemented, "unknown service"), RejectedConfig},
		{"not found", status.Error(codes.NotFound, "no such path"), RejectedConfig},
		{"invalid header", status.Error(codes.Internal, `header key "bad key" contains illegal characters not in [0-9a-z-_.]`), RejectedConfig},
		{"empty header key", status.Error(codes.Internal, "there is an empty key in the header"), RejectedConfig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Classify(tt.err); got != tt.want {
				t.Errorf("Classify(%v) = %s, want %s", tt.err, got, tt.want)
			}
		})
	}
}

// outcomeLog collects what a lane tells its Observer.
type outcomeLog struct {
	mu       sync.Mutex
	classes  map[Class]int
	partial  []int64
	rejected map[int64]trace.SpanID
	msgs     []string
	// acked is the lane's Acked when each span was reported rejected: it
	// must not have passed it yet.
	ackedAt map[int64]int64
	lane    atomic.Pointer[Lane]
	results chan Class
}

func newOutcomeLog() *outcomeLog {
	return &outcomeLog{classes: map[Class]int{}, rejected: map[int64]trace.SpanID{}, ackedAt: map[int64]int64{}, results: make(chan Class, 1024)}
}

func (o *outcomeLog) observer() Observer {
	return Observer{
		Result: func(_ int, c Class, _ error) {
			o.mu.Lock()
			o.classes[c]++
			o.mu.Unlock()
			select {
			case o.results <- c:
			default:
			}
		},
		Partial: func(n int64, msg string) {
			o.mu.Lock()
			defer o.mu.Unlock()
			o.partial = append(o.partial, n)
			o.msgs = append(o.msgs, msg)
		},
		Rejected: func(seq int64, s *lifecycle.Span, msg string) {
			o.mu.Lock()
			defer o.mu.Unlock()
			o.rejected[seq] = s.SpanID
			o.msgs = append(o.msgs, msg)
			if l := o.lane.Load(); l != nil {
				o.ackedAt[seq] = (*l).Acked()
			}
		},
	}
}

// waitClass waits until the lane reported n attempts of class c.
func (o *outcomeLog) waitClass(t *testing.T, c Class, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	for seen := 0; seen < n; {
		select {
		case got := <-o.results:
			if got == c {
				seen++
			}
		case <-ctx.Done():
			t.Fatalf("waiting for %d attempts of class %s: %v", n, c, ctx.Err())
		}
	}
}

// laneRun is one lane against a receiver, with spans to emit.
type laneRun struct {
	rcv   *receiver.Receiver
	lane  Lane
	log   *outcomeLog
	spans []lifecycle.Span
}

func startLane(t *testing.T, newLane func(*otlpOut, Config) Lane, rcv *receiver.Receiver, spans []lifecycle.Span, clientOpts ...otlptracegrpc.Option) *laneRun {
	t.Helper()
	out := newOut(t, rcv.Addr(), time.Millisecond, 20*time.Millisecond, clientOpts...)
	log := newOutcomeLog()
	l := newLane(out, Config{QueueSize: 1024, BatchSize: 64, BatchTimeout: time.Hour,
		RetryInitial: time.Millisecond, RetryMax: 10 * time.Millisecond, Observer: log.observer()})
	log.lane.Store(&l)
	t.Cleanup(func() { _ = l.Close(context.Background()) })
	return &laneRun{rcv: rcv, lane: l, log: log, spans: spans}
}

func (r *laneRun) emitAll(t *testing.T) {
	t.Helper()
	for i := range r.spans {
		if err := r.lane.Emit(t.Context(), &r.spans[i]); err != nil {
			t.Fatal(err)
		}
	}
}

func (r *laneRun) flush(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := r.lane.Flush(ctx); err != nil {
		t.Fatalf("flush: %v (acked %d of %d; classes %v)", err, r.lane.Acked(), r.lane.Emitted(), r.log.classes)
	}
	if r.lane.Acked() != r.lane.Emitted() {
		t.Fatalf("acked %d of %d", r.lane.Acked(), r.lane.Emitted())
	}
}

// checkReceived checks that every span but those in skip arrived exactly
// once, and no span of skip did.
func (r *laneRun) checkReceived(t *testing.T, skip map[trace.SpanID]bool) {
	t.Helper()
	got := map[trace.SpanID]int{}
	for _, s := range r.rcv.Spans() {
		got[s.SpanID]++
	}
	for _, s := range r.spans {
		want := 1
		if skip[s.SpanID] {
			want = 0
		}
		if got[s.SpanID] != want {
			t.Errorf("span %s (%s) received %d times, want %d", s.SpanID, s.Name, got[s.SpanID], want)
		}
	}
}

// hasSpan reports whether req holds a span with one of ids.
func hasSpan(req *coltracepb.ExportTraceServiceRequest, ids map[trace.SpanID]bool) bool {
	for _, rs := range req.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			for _, sp := range ss.GetSpans() {
				if ids[trace.SpanID(sp.GetSpanId())] {
					return true
				}
			}
		}
	}
	return false
}

// TestPartialSuccessIsAcknowledgedOnce answers every request with a partial
// success: each request must be acknowledged at once, never resent, and the
// rejected counts reported.
func TestPartialSuccessIsAcknowledgedOnce(t *testing.T) {
	spans := testSpans(t, 40, 1)
	for _, path := range paths {
		t.Run(path.name, func(t *testing.T) {
			rcv := startReceiver(t)
			var requests atomic.Int64
			rcv.Respond(func(*coltracepb.ExportTraceServiceRequest) receiver.Answer {
				requests.Add(1)
				return receiver.Answer{Rejected: 1, Message: "span exceeds 1 KiB"}
			})
			r := startLane(t, path.lane, rcv, spans)
			r.emitAll(t)
			r.flush(t)
			r.checkReceived(t, nil)
			wantRequests := (len(spans) + 63) / 64
			if n := requests.Load(); n != int64(wantRequests) {
				t.Errorf("%d requests for %d spans in batches of 64, want %d", n, len(spans), wantRequests)
			}
			r.log.mu.Lock()
			defer r.log.mu.Unlock()
			if len(r.log.partial) != wantRequests || r.log.classes[PartialSuccess] != wantRequests || len(r.log.classes) != 1 {
				t.Errorf("partial successes reported %v, classes %v; want %d of them only", r.log.partial, r.log.classes, wantRequests)
			}
			for _, m := range r.log.msgs {
				if m != "span exceeds 1 KiB" {
					t.Errorf("message %q, want the server's", m)
				}
			}
		})
	}
}

// TestRefusedSpansAreIsolated has the receiver refuse, for good, every
// request holding one of a few poisoned spans, as InvalidArgument or
// because the request is over the server's size limit: every other span
// must arrive exactly once, each poisoned one is reported to Rejected with
// its emission index before the acknowledged count passes it, and
// everything is acknowledged.
func TestRefusedSpansAreIsolated(t *testing.T) {
	base := testSpans(t, 60, 1)
	tests := []struct {
		name string
		// poison returns the spans to emit, with the poisoned ones at the
		// indexes given.
		poison   []int
		huge     bool // the poisoned spans are too large for the receiver, instead of refused by name
		wantCode string
	}{
		{name: "invalid argument, one span", poison: []int{77}, wantCode: "no span may be named"},
		{name: "invalid argument, first and last, and two in one batch", poison: []int{0, 130, 131, len(base) - 1}, wantCode: "no span may be named"},
		{name: "request too large", poison: []int{5, 200}, huge: true, wantCode: "larger than max"},
	}
	for _, tt := range tests {
		for _, path := range paths {
			t.Run(tt.name+"/"+path.name, func(t *testing.T) {
				spans := append([]lifecycle.Span(nil), base...)
				poisoned := map[trace.SpanID]bool{}
				for _, i := range tt.poison {
					s := spans[i]
					if tt.huge {
						s.Attrs = append(append([]attribute.KeyValue(nil), s.Attrs...), attribute.String("blob", strings.Repeat("x", 64<<10)))
					} else {
						s.Name = "poison"
					}
					spans[i] = s
					poisoned[s.SpanID] = true
				}
				var opts []receiver.Option
				if tt.huge {
					opts = append(opts, receiver.WithMaxRequestBytes(48<<10))
				}
				rcv, err := receiver.Start("127.0.0.1:0", opts...)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(rcv.Close)
				if !tt.huge {
					rcv.Respond(func(req *coltracepb.ExportTraceServiceRequest) receiver.Answer {
						if hasSpan(req, poisoned) {
							return receiver.Answer{Code: codes.InvalidArgument, Message: `no span may be named "poison"`}
						}
						return receiver.Answer{}
					})
				}
				r := startLane(t, path.lane, rcv, spans)
				r.emitAll(t)
				r.flush(t)
				r.checkReceived(t, poisoned)
				r.log.mu.Lock()
				defer r.log.mu.Unlock()
				if len(r.log.rejected) != len(tt.poison) {
					t.Errorf("%d spans reported rejected, want %d: %v", len(r.log.rejected), len(tt.poison), r.log.rejected)
				}
				for _, i := range tt.poison {
					seq := int64(i)
					if id, ok := r.log.rejected[seq]; !ok || id != spans[i].SpanID {
						t.Errorf("rejected at seq %d: %s (reported %t), want span %s", seq, id, ok, spans[i].SpanID)
					}
					if a := r.log.ackedAt[seq]; a > seq {
						t.Errorf("span %d reported rejected when %d spans were acknowledged already", seq, a)
					}
				}
				for _, m := range r.log.msgs {
					if !strings.Contains(m, tt.wantCode) {
						t.Errorf("rejection message %q, want the server's (%q)", m, tt.wantCode)
					}
				}
				if r.log.classes[RejectedData] == 0 {
					t.Errorf("no attempt classed %s: %v", RejectedData, r.log.classes)
				}
			})
		}
	}
}

// TestConfigurationRefusalsAreRetried has the receiver refuse every request
// as a misconfigured client would see it: nothing may be acknowledged or
// dropped while it refuses, the attempts are reported as RejectedConfig,
// and once it relents everything arrives exactly once.
func TestConfigurationRefusalsAreRetried(t *testing.T) {
	spans := testSpans(t, 20, 1)
	for _, code := range []codes.Code{codes.Unauthenticated, codes.PermissionDenied, codes.Unimplemented} {
		for _, path := range paths {
			t.Run(code.String()+"/"+path.name, func(t *testing.T) {
				rcv := startReceiver(t)
				var relent atomic.Bool
				rcv.Respond(func(*coltracepb.ExportTraceServiceRequest) receiver.Answer {
					if relent.Load() {
						return receiver.Answer{}
					}
					return receiver.Answer{Code: code, Message: "refused as configured"}
				})
				r := startLane(t, path.lane, rcv, spans)
				r.emitAll(t)
				go func() { _ = r.lane.Flush(t.Context()) }() // the SDK path exports on flush
				r.log.waitClass(t, RejectedConfig, 5)
				if a := r.lane.Acked(); a != 0 {
					t.Fatalf("%d spans acknowledged while the endpoint refuses them", a)
				}
				relent.Store(true)
				r.flush(t)
				r.checkReceived(t, nil)
			})
		}
	}
}

// TestInvalidHeaderIsAConfigurationRefusal sends with a header gRPC refuses
// to send: every attempt fails before it leaves the client, must be classed
// RejectedConfig, and nothing is acknowledged.
func TestInvalidHeaderIsAConfigurationRefusal(t *testing.T) {
	spans := testSpans(t, 2, 0)
	for _, path := range paths {
		t.Run(path.name, func(t *testing.T) {
			rcv := startReceiver(t)
			r := startLane(t, path.lane, rcv, spans, otlptracegrpc.WithHeaders(map[string]string{"bad key": "x"}))
			r.emitAll(t)
			go func() { _ = r.lane.Flush(t.Context()) }()
			r.log.waitClass(t, RejectedConfig, 3)
			if a, n := r.lane.Acked(), rcv.Count(); a != 0 || n != 0 {
				t.Fatalf("acked %d, received %d; want nothing", a, n)
			}
		})
	}
}

// TestRetryInfoDelayIsHonoured has the receiver shed load: it answers the
// first request of each run with a retryable status carrying a RetryInfo
// delay far above the lane's RetryMax (10 ms). The retry must come no sooner
// than the delay asked for, on both export paths (the SDK path's errors wrap
// the status), and every span still arrives once.
func TestRetryInfoDelayIsHonoured(t *testing.T) {
	const asked = 300 * time.Millisecond
	spans := testSpans(t, 10, 1)
	for _, code := range []codes.Code{codes.Unavailable, codes.ResourceExhausted} {
		for _, path := range paths {
			t.Run(code.String()+"/"+path.name, func(t *testing.T) {
				rcv := startReceiver(t)
				var mu sync.Mutex
				var arrivals []time.Time
				rcv.Respond(func(*coltracepb.ExportTraceServiceRequest) receiver.Answer {
					mu.Lock()
					defer mu.Unlock()
					arrivals = append(arrivals, time.Now())
					if len(arrivals) == 1 {
						return receiver.Answer{Code: code, Message: "shedding load", RetryAfter: asked}
					}
					return receiver.Answer{}
				})
				r := startLane(t, path.lane, rcv, spans)
				r.emitAll(t)
				r.flush(t)
				r.checkReceived(t, nil)
				mu.Lock()
				defer mu.Unlock()
				if len(arrivals) < 2 {
					t.Fatalf("%d requests, want the refused one and its retry", len(arrivals))
				}
				if gap := arrivals[1].Sub(arrivals[0]); gap < asked {
					t.Errorf("retried %v after a RetryInfo asking for %v", gap, asked)
				}
			})
		}
	}
}

func TestRetryDelay(t *testing.T) {
	withDelay := func(code codes.Code, d time.Duration) error {
		st, err := status.New(code, "busy").WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(d)})
		if err != nil {
			t.Fatal(err)
		}
		return st.Err()
	}
	tests := []struct {
		name string
		err  error
		want time.Duration
		ok   bool
	}{
		{"plain error", errors.New("connection refused"), 0, false},
		{"status without details", status.Error(codes.Unavailable, "busy"), 0, false},
		{"unavailable, 2s", withDelay(codes.Unavailable, 2*time.Second), 2 * time.Second, true},
		{"wrapped, as the SDK path returns it", fmt.Errorf("traces export: %w", withDelay(codes.ResourceExhausted, time.Second)), time.Second, true},
		{"negative", withDelay(codes.Unavailable, -time.Second), 0, true},
		{"absurd, capped", withDelay(codes.Unavailable, 100*time.Hour), maxRetryDelay, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := retryDelay(tt.err)
			if got != tt.want || ok != tt.ok {
				t.Errorf("retryDelay = %v, %v; want %v, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}
