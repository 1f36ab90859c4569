package receiver

import (
	"testing"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

func mustMarshal(tb testing.TB, m proto.Message) []byte {
	tb.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func TestCountSpans(t *testing.T) {
	twoResources := makeRequest(0, 3)
	twoResources.ResourceSpans = append(twoResources.ResourceSpans, makeRequest(10, 2).ResourceSpans...)
	twoResources.ResourceSpans[1].ScopeSpans = append(twoResources.ResourceSpans[1].ScopeSpans,
		&tracepb.ScopeSpans{Spans: []*tracepb.Span{{Name: "x"}, {}}}, &tracepb.ScopeSpans{})
	full := mustMarshal(t, makeRequest(0, 4))
	// An unknown field (number 99, varint) before the request's content, as
	// a newer exporter might send.
	unknown := protowire.AppendVarint(protowire.AppendTag(nil, 99, protowire.VarintType), 7)

	cases := []struct {
		name    string
		req     []byte
		want    int
		wantErr bool
	}{
		{"empty request", nil, 0, false},
		{"one resource", full, 4, false},
		{"resources and scopes, empty spans counted", mustMarshal(t, twoResources), 7, false},
		{"empty resource", mustMarshal(t, &coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{{}}}), 0, false},
		{"unknown field", append(unknown, full...), 4, false},
		{"truncated", full[:len(full)-3], 0, true},
		{"bad tag", []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, 0, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := countSpans(tc.req)
			if (err != nil) != tc.wantErr {
				t.Fatalf("countSpans error = %v, want error %v", err, tc.wantErr)
			}
			if err == nil && got != tc.want {
				t.Fatalf("countSpans = %d, want %d", got, tc.want)
			}
		})
	}
}

// FuzzCountSpans checks that the wire walk agrees with full decoding on every
// request that decodes.
func FuzzCountSpans(f *testing.F) {
	f.Add(mustMarshal(f, makeRequest(0, 3)))
	f.Add(mustMarshal(f, &coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{{ScopeSpans: []*tracepb.ScopeSpans{{}}}}}))
	f.Add([]byte{0x0a, 0x02, 0x12, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		var req coltracepb.ExportTraceServiceRequest
		if proto.Unmarshal(b, &req) != nil {
			return
		}
		want := 0
		for _, rs := range req.GetResourceSpans() {
			for _, ss := range rs.GetScopeSpans() {
				want += len(ss.GetSpans())
			}
		}
		got, err := countSpans(b)
		if err != nil || got != want {
			t.Fatalf("countSpans = %d, %v; decoding found %d spans", got, err, want)
		}
	})
}

// TestMalformedRequest checks both receive paths reject what is not
// protobuf, the way a Go collector does, without recording anything.
func TestMalformedRequest(t *testing.T) {
	for _, keep := range []bool{true, false} {
		name := map[bool]string{true: "decoding", false: "counting"}[keep]
		t.Run(name, func(t *testing.T) {
			r := startReceiver(t)
			r.KeepSpans(keep)
			_, err := r.export([]byte{0x0a, 0x05, 0x12})
			if got := status.Code(err); got != codes.Internal {
				t.Fatalf("export of malformed request: code %v (%v), want Internal", got, err)
			}
			if r.Count() != 0 || len(r.Spans()) != 0 {
				t.Fatalf("malformed request recorded: Count %d, Spans %d", r.Count(), len(r.Spans()))
			}
		})
	}
}
