package receiver

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

func TestFailNext(t *testing.T) {
	cases := []struct {
		name  string
		n     int
		code  codes.Code
		wantN int // requests that fail
	}{
		{"unavailable twice", 2, codes.Unavailable, 2},
		{"resource exhausted once", 1, codes.ResourceExhausted, 1},
		{"invalid argument", 1, codes.InvalidArgument, 1},
		{"zero clears", 0, codes.Unavailable, 0},
		{"ok clears", 3, codes.OK, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := startReceiver(t)
			client := dial(t, r.Addr())
			ctx := deadline(t, 10*time.Second)
			r.FailNext(tc.n, tc.code)
			for i := range tc.wantN {
				_, err := client.Export(ctx, makeRequest(uint64(i), 2))
				if got := status.Code(err); got != tc.code {
					t.Fatalf("request %d: code %v (%v), want %v", i, got, err, tc.code)
				}
			}
			if _, err := client.Export(ctx, makeRequest(100, 2)); err != nil {
				t.Fatalf("request after injected failures: %v", err)
			}
			if got := r.Count(); got != 2 {
				t.Fatalf("Count = %d, want 2: failed requests must not be recorded", got)
			}
		})
	}
}

func TestFailNextReplacesPending(t *testing.T) {
	r := startReceiver(t)
	client := dial(t, r.Addr())
	ctx := deadline(t, 10*time.Second)
	r.FailNext(5, codes.Unavailable)
	r.FailNext(1, codes.Internal)
	if _, err := client.Export(ctx, makeRequest(0, 1)); status.Code(err) != codes.Internal {
		t.Fatalf("first request: %v, want Internal", err)
	}
	if _, err := client.Export(ctx, makeRequest(1, 1)); err != nil {
		t.Fatalf("second request: %v", err)
	}
}

// TestFailNextExporter checks the two paths the consumer meets through the
// real exporter: a retryable failure it recovers from by itself, and a
// permanent one it returns.
func TestFailNextExporter(t *testing.T) {
	cases := []struct {
		name      string
		n         int
		code      codes.Code
		wantErr   bool
		wantCount int
	}{
		{"retryable recovers", 3, codes.Unavailable, false, 2},
		{"permanent fails", 1, codes.InvalidArgument, true, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := startReceiver(t)
			exp := newExporter(t, r.Addr(), true)
			r.FailNext(tc.n, tc.code)
			err := exp.ExportSpans(deadline(t, 10*time.Second), recordSpans(t, 2))
			if (err != nil) != tc.wantErr {
				t.Fatalf("ExportSpans error = %v, want error %v", err, tc.wantErr)
			}
			if got := r.Count(); got != tc.wantCount {
				t.Fatalf("Count = %d, want %d", got, tc.wantCount)
			}
		})
	}
}

func TestPayloads(t *testing.T) {
	r := startReceiver(t)
	client := dial(t, r.Addr())
	ctx := deadline(t, 10*time.Second)

	if _, err := client.Export(ctx, makeRequest(0, 3)); err != nil {
		t.Fatal(err)
	}
	if got := len(r.Payloads()); got != 0 {
		t.Fatalf("payloads kept while off by default: %d", got)
	}
	r.KeepPayloads(true)
	reqs := []*coltracepb.ExportTraceServiceRequest{makeRequest(10, 3), makeRequest(20, 1)}
	for _, req := range reqs {
		if _, err := client.Export(ctx, req); err != nil {
			t.Fatal(err)
		}
	}
	r.KeepPayloads(false)
	if _, err := client.Export(ctx, makeRequest(30, 1)); err != nil {
		t.Fatal(err)
	}

	payloads := r.Payloads()
	if len(payloads) != len(reqs) {
		t.Fatalf("%d payloads, want %d", len(payloads), len(reqs))
	}
	for i, req := range reqs {
		want, err := proto.MarshalOptions{Deterministic: true}.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(payloads[i], want) {
			t.Errorf("payload %d differs from the deterministic encoding of the request sent", i)
		}
	}
}

func TestKeepSpansOff(t *testing.T) {
	r := startReceiver(t)
	r.KeepSpans(false)
	client := dial(t, r.Addr())
	if _, err := client.Export(deadline(t, 10*time.Second), makeRequest(0, 5)); err != nil {
		t.Fatal(err)
	}
	if r.Count() != 5 || len(r.Spans()) != 0 {
		t.Fatalf("Count = %d, len(Spans) = %d; want 5, 0", r.Count(), len(r.Spans()))
	}
}

func TestOnExportRunsBeforeAck(t *testing.T) {
	r := startReceiver(t)
	client := dial(t, r.Addr())
	var order []string
	r.OnExport(func(req *coltracepb.ExportTraceServiceRequest) { order = append(order, "first") })
	r.OnExport(func(req *coltracepb.ExportTraceServiceRequest) {
		order = append(order, req.GetResourceSpans()[0].GetScopeSpans()[0].GetSpans()[0].GetName())
	})
	if _, err := client.Export(deadline(t, 10*time.Second), makeRequest(0, 1)); err != nil {
		t.Fatal(err)
	}
	// The acknowledgement has arrived, so both callbacks must have run.
	r.cbMu.Lock()
	defer r.cbMu.Unlock()
	if len(order) != 2 || order[0] != "first" || order[1] != "session.phase.in_game" {
		t.Fatalf("callbacks ran as %v", order)
	}
}

func TestWaitCount(t *testing.T) {
	cases := []struct {
		name    string
		send    int
		wait    int
		timeout time.Duration
		wantErr error
	}{
		{"already there", 4, 4, 10 * time.Second, nil},
		{"zero", 0, 0, 10 * time.Second, nil},
		{"arrives later", 4, 4, 10 * time.Second, nil},
		{"never arrives", 2, 3, 50 * time.Millisecond, context.DeadlineExceeded},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := startReceiver(t)
			client := dial(t, r.Addr())
			ctx := deadline(t, 10*time.Second)
			send := func() {
				for i := range tc.send {
					if _, err := client.Export(ctx, makeRequest(uint64(i), 1)); err != nil {
						t.Errorf("Export: %v", err)
					}
				}
			}
			done := make(chan struct{})
			if tc.name == "arrives later" {
				go func() { defer close(done); send() }()
			} else {
				send()
				close(done)
			}
			err := r.WaitCount(deadline(t, tc.timeout), tc.wait)
			<-done
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
				t.Fatalf("WaitCount = %v, want %v", err, tc.wantErr)
			}
		})
	}
}

// TestRespond checks each answer Respond can give, as a raw gRPC client
// sees it, and that accepted requests are recorded whole, refused ones not.
func TestRespond(t *testing.T) {
	cases := []struct {
		name        string
		answer      Answer
		wantCode    codes.Code
		wantPartial *coltracepb.ExportTracePartialSuccess
		wantCount   int
	}{
		{"accept", Answer{}, codes.OK, nil, 3},
		{"partial success", Answer{Rejected: 2, Message: "too big"}, codes.OK, &coltracepb.ExportTracePartialSuccess{RejectedSpans: 2, ErrorMessage: "too big"}, 3},
		{"warning", Answer{Message: "slow down"}, codes.OK, &coltracepb.ExportTracePartialSuccess{ErrorMessage: "slow down"}, 3},
		{"invalid argument", Answer{Code: codes.InvalidArgument, Message: "bad span"}, codes.InvalidArgument, nil, 0},
		{"unauthenticated", Answer{Code: codes.Unauthenticated, Message: "who are you"}, codes.Unauthenticated, nil, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := startReceiver(t)
			client := dial(t, r.Addr())
			var seen int
			r.Respond(func(req *coltracepb.ExportTraceServiceRequest) Answer {
				seen = len(req.GetResourceSpans()[0].GetScopeSpans()[0].GetSpans())
				return tc.answer
			})
			resp, err := client.Export(deadline(t, 10*time.Second), makeRequest(0, 3))
			if got := status.Code(err); got != tc.wantCode {
				t.Fatalf("code %v (%v), want %v", got, err, tc.wantCode)
			}
			if seen != 3 {
				t.Errorf("Respond saw %d spans, want 3", seen)
			}
			if err == nil && !proto.Equal(resp.GetPartialSuccess(), tc.wantPartial) {
				t.Errorf("partial success %v, want %v", resp.GetPartialSuccess(), tc.wantPartial)
			}
			if got := r.Count(); got != tc.wantCount {
				t.Errorf("Count = %d, want %d", got, tc.wantCount)
			}
			r.Respond(nil)
			if _, err := client.Export(deadline(t, 10*time.Second), makeRequest(10, 1)); err != nil {
				t.Errorf("after Respond(nil): %v", err)
			}
		})
	}
}

// TestMaxRequestBytes checks that a request over the limit fails as gRPC
// fails it, and a smaller one passes.
func TestMaxRequestBytes(t *testing.T) {
	r, err := Start("127.0.0.1:0", WithMaxRequestBytes(1024))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	client := dial(t, r.Addr())
	_, err = client.Export(deadline(t, 10*time.Second), makeRequest(0, 100))
	if s, _ := status.FromError(err); s.Code() != codes.ResourceExhausted || !strings.Contains(s.Message(), "larger than max") {
		t.Fatalf("large request: %v, want ResourceExhausted larger than max", err)
	}
	if _, err := client.Export(deadline(t, 10*time.Second), makeRequest(0, 1)); err != nil {
		t.Fatalf("small request: %v", err)
	}
}
