package consumer

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"google.golang.org/grpc/codes"
)

// TestDirectPathSendsTheSDKPathsBytes replays the same records through
// OTLPSink on both export paths, each to its own real OTLP receiver, and
// compares the accepted export requests byte for byte, request by request.
// The receiver keeps each request's deterministic re-encoding, which keeps
// every field and its presence (an empty status is not an absent one), so
// equal payloads mean equal requests: both paths marshal with the same
// gRPC codec from the same message types.
func TestDirectPathSendsTheSDKPathsBytes(t *testing.T) {
	s := buildScenario(t, scenarioSpec{partitions: 3, players: 80, openAtEnd: 5, poisonEach: 30, matches: 2})
	linked := buildScenario(t, scenarioSpec{partitions: 2, players: 40, openAtEnd: 3, matches: 2, links: true})
	twoLinks := 0
	for _, sp := range linked.spans {
		if len(sp.Links) == 2 {
			twoLinks++
		}
	}
	if twoLinks < 40 {
		t.Fatalf("%d spans of the linked scenario have two links: the link cases would test little", twoLinks)
	}
	withSchema, err := resource.Merge(resource.Default(), resource.NewWithAttributes("https://opentelemetry.io/schemas/1.43.0",
		attribute.String("service.name", "sessiontrace"), attribute.Int("shard", 3), attribute.StringSlice("zones", []string{"eu-1", "eu-2"})))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		res       *resource.Resource
		batch     int
		env       map[string]string
		failFirst int // requests the receiver fails before accepting any
		links     bool
	}{
		{name: "default resource", batch: 64},
		{name: "resource with schema URL", res: withSchema, batch: 64},
		{name: "schemaless resource, odd batch", res: resource.NewSchemaless(attribute.String("service.name", "x")), batch: 37},
		{name: "one span per request", res: withSchema, batch: 1},
		{name: "retried after failures", res: withSchema, batch: 50, failFirst: 3},
		{name: "span limits from the environment", res: withSchema, batch: 64, env: map[string]string{
			"OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT":        "3",
			"OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT": "4",
		}},
		{name: "trace links", res: withSchema, batch: 64, links: true},
		{name: "trace links over the link count limit", res: withSchema, batch: 64, links: true, env: map[string]string{
			"OTEL_SPAN_LINK_COUNT_LIMIT": "1",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			s := s
			if tt.links {
				s = linked
			}
			sdk := replayPayloads(t, s, ExportSDK, tt.res, tt.batch, tt.failFirst)
			direct := replayPayloads(t, s, ExportDirect, tt.res, tt.batch, tt.failFirst)
			if len(sdk) < 2 {
				t.Fatalf("sdk path sent %d requests; the comparison needs several", len(sdk))
			}
			if len(direct) != len(sdk) {
				t.Fatalf("direct path sent %d requests, sdk path %d", len(direct), len(sdk))
			}
			for i := range sdk {
				if !bytes.Equal(direct[i], sdk[i]) {
					t.Fatalf("request %d of %d differs: direct %d bytes, sdk %d bytes; first difference at byte %d",
						i, len(sdk), len(direct[i]), len(sdk[i]), firstByteDiff(direct[i], sdk[i]))
				}
			}
		})
	}
}

// replayPayloads replays every record of s (closing the sessions left open)
// through OTLPSink on path and returns the requests the receiver accepted.
func replayPayloads(t *testing.T, s *scenario, path string, res *resource.Resource, batch, failFirst int) [][]byte {
	t.Helper()
	rcv := startReceiver(t)
	rcv.KeepSpans(false)
	rcv.KeepPayloads(true)
	if failFirst > 0 {
		rcv.FailNext(failFirst, codes.Unavailable)
	}
	out := exporter(t, rcv.Addr())
	cfg := DefaultConfig()
	cfg.ExportPath = path
	cfg.ExportBatchSize = batch
	cfg.ExportQueueSize = max(2*batch, 128)
	cfg.RetryInitial, cfg.RetryMax = time.Millisecond, 10*time.Millisecond
	opts := out.options()
	if res != nil {
		opts = append(opts, WithResource(res))
	}
	sink, err := OTLPSink(out.exp, cfg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	rp, err := NewReplayer(cfg, sink)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	for p := range s.partitions {
		for off, r := range s.records[p] {
			if err := rp.Process(ctx, Record{Topic: "lifecycle", Partition: p, Offset: int64(off), Key: r.Key, Value: r.Value, Headers: headersOf(r)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	stats, err := rp.Finish(ctx, true)
	if err != nil {
		t.Fatalf("%s path: %v", path, err)
	}
	if stats.Spans <= len(s.spans) || rcv.Count() != stats.Spans {
		t.Fatalf("%s path: replay made %d spans (reference %d without the open ones), receiver got %d", path, stats.Spans, len(s.spans), rcv.Count())
	}
	return rcv.Payloads()
}

func firstByteDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// TestNewNeedsWhatTheExportPathUses checks that New and OTLPSink refuse to
// build a pipeline whose export path lacks its dependency.
func TestNewNeedsWhatTheExportPathUses(t *testing.T) {
	out := exporter(t, "127.0.0.1:9") // never dialled: nothing is exported
	tests := []struct {
		name string
		path string
		exp  sdktrace.SpanExporter
		opts []Option
		want string // in the error; "" for success
	}{
		{"direct without a client", ExportDirect, out.exp, nil, "WithOTLPClient"},
		{"direct with a client only", ExportDirect, nil, out.options(), ""},
		{"sdk without an exporter", ExportSDK, nil, out.options(), "nil span exporter"},
		{"sdk with an exporter only", ExportSDK, out.exp, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig([]string{"127.0.0.1:9"}, "lifecycle", "group")
			cfg.ExportPath = tt.path
			check := func(what string, err error) {
				t.Helper()
				if tt.want == "" && err != nil {
					t.Errorf("%s: %v", what, err)
				}
				if tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
					t.Errorf("%s = %v, want an error about %q", what, err, tt.want)
				}
			}
			c, err := New(cfg, tt.exp, tt.opts...)
			check("New", err)
			if c != nil {
				c.cl.Close()
				c.cancel()
			}
			sink, err := OTLPSink(tt.exp, cfg, tt.opts...)
			check("OTLPSink", err)
			if sink != nil {
				if err := sink.Close(t.Context()); err != nil {
					t.Errorf("close an unused sink: %v", err)
				}
			}
		})
	}
}
