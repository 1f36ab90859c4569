package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	metricpb "go.opentelemetry.io/proto/otlp/metrics/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/sessiontrace/sessiontrace/consumer"
	"github.com/sessiontrace/sessiontrace/consumer/receiver"
)

// sessionsFile is a short simulated recording: several complete sessions,
// three still open at its end, one duplicate event and one unknown type.
var sessionsFile = repoFile("testdata", "cli", "sessions.jsonl")

// What replaying sessionsFile must give.
const (
	sessionsRecords    = 112
	sessionsSpans      = 58
	sessionsOpen       = 3
	sessionsOpenPhases = 3 // the phases still open in those sessions, ended with them by --close-open
)

func TestReplayOutputs(t *testing.T) {
	stdin, err := os.ReadFile(sessionsFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		args   []string
		stdin  []byte
		golden string
		stderr []string
	}{
		{
			name:   "tree",
			args:   []string{"replay", sessionsFile},
			golden: "replay.tree.golden",
			stderr: []string{"replayed 112 records into 58 spans", "duplicate_event=1 unknown_type=1", "3 sessions still open", "--close-open"},
		},
		{
			name:   "json",
			args:   []string{"replay", "--output", "json", sessionsFile},
			golden: "replay.json.golden",
			stderr: []string{"replayed 112 records into 58 spans"},
		},
		{
			name:   "json from stdin",
			args:   []string{"replay", "-o", "json", "-"},
			stdin:  stdin,
			golden: "replay.json.golden",
		},
		{
			name:   "close open",
			args:   []string{"replay", "-o", "json", "--close-open", sessionsFile},
			golden: "replay.close-open.json.golden",
			stderr: []string{"3 sessions were still open at the end of the input; ended as end_of_input"},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), cliTimeout)
			defer cancel()
			cmd := command(ctx, nil, c.args...)
			var stdout, stderr bytes.Buffer
			cmd.Stdin, cmd.Stdout, cmd.Stderr = bytes.NewReader(c.stdin), &stdout, &stderr
			if err := cmd.Run(); err != nil {
				t.Fatalf("%v; stderr:\n%s", err, stderr.String())
			}
			golden(t, c.golden, stdout.Bytes())
			for _, w := range c.stderr {
				if !strings.Contains(stderr.String(), w) {
					t.Errorf("stderr does not say %q:\n%s", w, stderr.String())
				}
			}
			if strings.Contains(stderr.String(), "\r") {
				t.Errorf("progress line drawn on a pipe")
			}
		})
	}
}

// TestReplayJSONIsOTLP checks every JSON line against the OTLP protobuf
// JSON mapping with the official generated types.
func TestReplayJSONIsOTLP(t *testing.T) {
	r := runCLI(t, nil, "replay", "-o", "json", "--close-open", sessionsFile)
	mustSucceed(t, r, "replay")
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	if want := sessionsSpans + sessionsOpen + sessionsOpenPhases; len(lines) != want {
		t.Fatalf("%d lines, want %d spans", len(lines), want)
	}
	roots, endOfInput := 0, 0
	for i, line := range lines {
		var sp tracepb.Span
		if err := (protojson.UnmarshalOptions{DiscardUnknown: false}).Unmarshal([]byte(line), &sp); err != nil {
			t.Fatalf("line %d is not an OTLP JSON span: %v\n%s", i+1, err, line)
		}
		// OTLP JSON writes IDs in hex where the generic protobuf mapping
		// would use base64, so protojson cannot check them: look directly.
		var ids struct{ TraceID, SpanID, ParentSpanID string }
		if err := json.Unmarshal([]byte(line), &ids); err != nil {
			t.Fatal(err)
		}
		if !isHex(ids.TraceID, 16) || !isHex(ids.SpanID, 8) || (ids.ParentSpanID != "" && !isHex(ids.ParentSpanID, 8)) {
			t.Errorf("line %d: IDs are not lower-case hex of the right length: %+v", i+1, ids)
		}
		if sp.EndTimeUnixNano < sp.StartTimeUnixNano || sp.StartTimeUnixNano == 0 || sp.Name == "" {
			t.Errorf("line %d: implausible span %s", i+1, line)
		}
		if sp.Kind != tracepb.Span_SPAN_KIND_INTERNAL {
			t.Errorf("line %d: kind %v", i+1, sp.Kind)
		}
		if ids.ParentSpanID == "" {
			roots++
			for _, kv := range sp.Attributes {
				if kv.Key == "session.end_reason" && kv.Value.GetStringValue() == "end_of_input" {
					endOfInput++
				}
			}
		}
	}
	if endOfInput != sessionsOpen {
		t.Errorf("%d roots ended as end_of_input, want %d", endOfInput, sessionsOpen)
	}
	if roots < sessionsOpen+1 {
		t.Errorf("only %d root spans", roots)
	}
}

func isHex(s string, n int) bool {
	b, err := hex.DecodeString(s)
	return err == nil && len(b) == n && s == strings.ToLower(s)
}

// TestReplayOTLPDeterministic replays the same file twice to a real OTLP
// receiver, once per export path: the export requests must be
// byte-identical, IDs and timestamps included.
func TestReplayOTLPDeterministic(t *testing.T) {
	// Once per export path: the two must send the same requests, byte for
	// byte, as well as each being deterministic.
	var runs [][][]byte
	for _, path := range []string{consumer.ExportSDK, consumer.ExportDirect} {
		recv, err := receiver.Start("127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(recv.Close)
		recv.KeepPayloads(true)
		r := runCLI(t, []string{"SESSIONTRACE_KAFKA_EXPORT_PATH=" + path}, "replay", "-o", "otlp", "--otlp-endpoint", recv.Addr(), "--otlp-insecure", sessionsFile)
		mustSucceed(t, r, "replay -o otlp")
		// replay returns only after every span was accepted, so the count
		// is final here; WaitCount only guards against a miscount.
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		err = recv.WaitCount(ctx, sessionsSpans)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if got := recv.Count(); got != sessionsSpans {
			t.Fatalf("receiver got %d spans, want %d", got, sessionsSpans)
		}
		if sn := recv.Spans()[0].Resource["service.name"]; sn != defaultServiceName {
			t.Errorf("resource service.name %v, want the default %q", sn, defaultServiceName)
		}
		runs = append(runs, recv.Payloads())
	}
	if len(runs[0]) == 0 || len(runs[0]) != len(runs[1]) {
		t.Fatalf("%d and %d export requests", len(runs[0]), len(runs[1]))
	}
	for i := range runs[0] {
		if !bytes.Equal(runs[0][i], runs[1][i]) {
			t.Errorf("export request %d differs between the sdk and the direct export path", i)
		}
	}
}

// TestReplayOTLPEndpointDown checks that an unreachable endpoint fails the
// replay within the drain bound instead of hanging or claiming success.
func TestReplayOTLPEndpointDown(t *testing.T) {
	recv, err := receiver.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := recv.Addr()
	recv.Close() // nothing listens there any more
	r := runCLI(t, []string{"SESSIONTRACE_KAFKA_SHUTDOWN_TIMEOUT=3s", "SESSIONTRACE_OTLP_TIMEOUT=1s"},
		"replay", "-o", "otlp", "--otlp-endpoint", addr, "--otlp-insecure", sessionsFile)
	if r.code == 0 {
		t.Fatalf("replay to a dead endpoint exited 0; stderr:\n%s", r.stderr)
	}
	if !strings.Contains(r.stderr, "export") {
		t.Errorf("stderr does not say the export failed:\n%s", r.stderr)
	}
}

// TestReplayProgress forces the progress line onto a pipe: it must end at
// 100% of the file with a records/s figure, on stderr only.
func TestReplayProgress(t *testing.T) {
	r := runCLI(t, nil, "replay", "-o", "json", "--progress", "always", sessionsFile)
	mustSucceed(t, r, "replay --progress always")
	if !strings.Contains(r.stderr, "\r\033[K112 records") || !strings.Contains(r.stderr, "records/s") || !strings.Contains(r.stderr, "100.0%") {
		t.Errorf("no final progress line on stderr: %q", r.stderr)
	}
	if strings.Contains(r.stdout, "records/s") {
		t.Error("progress written to stdout")
	}
}

// TestReplayOTLPStandardEnv checks that the standard OTEL_* variables
// configure the exporter and the resource when no otlp.* key is set.
func TestReplayOTLPStandardEnv(t *testing.T) {
	recv, err := receiver.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(recv.Close)
	r := runCLI(t, []string{
		"OTEL_EXPORTER_OTLP_ENDPOINT=http://" + recv.Addr(),
		"OTEL_EXPORTER_OTLP_INSECURE=true",
		"OTEL_SERVICE_NAME=replay-env",
		"OTEL_RESOURCE_ATTRIBUTES=deployment.environment.name=test",
	}, "replay", "-o", "otlp", sessionsFile)
	mustSucceed(t, r, "replay with OTEL_* only")
	spans := recv.Spans()
	if len(spans) != sessionsSpans {
		t.Fatalf("receiver got %d spans, want %d", len(spans), sessionsSpans)
	}
	res := spans[0].Resource
	if res["service.name"] != "replay-env" || res["deployment.environment.name"] != "test" {
		t.Errorf("resource %v does not carry OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES", res)
	}
}

// TestReplayOTLPSessionMetrics checks that replay -o otlp pushes the session
// metrics of the replayed sessions to the same endpoint, one ended session
// per root span, and that metrics.otlp=false keeps them home.
func TestReplayOTLPSessionMetrics(t *testing.T) {
	tests := []struct {
		name        string
		env         []string
		wantMetrics bool
	}{
		{name: "default", wantMetrics: true},
		{name: "metrics.otlp off", env: []string{"SESSIONTRACE_METRICS_OTLP=false"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			recv, err := receiver.Start("127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(recv.Close)
			r := runCLI(t, tt.env, "replay", "-o", "otlp", "--otlp-endpoint", recv.Addr(), "--otlp-insecure", sessionsFile)
			mustSucceed(t, r, "replay -o otlp")
			roots := 0
			for _, s := range recv.Spans() {
				if !s.ParentSpanID.IsValid() {
					roots++
				}
			}
			// The last push happens at shutdown, before replay exits, so
			// what arrived is final.
			ended := lastSum(recv.Metrics(), "sessiontrace.sessions.ended")
			if !tt.wantMetrics {
				if len(recv.Metrics()) != 0 {
					t.Errorf("metrics pushed with metrics.otlp=false")
				}
				return
			}
			if roots == 0 || ended != int64(roots) {
				t.Errorf("sessiontrace.sessions.ended = %d, want %d (root spans received)", ended, roots)
			}
		})
	}
}

// lastSum adds up the data points of the counter name in the last export
// that carries it: the exporter is cumulative, so that one holds the total.
func lastSum(rms []*metricpb.ResourceMetrics, name string) int64 {
	var total int64
	for _, rm := range rms {
		for _, sm := range rm.GetScopeMetrics() {
			for _, m := range sm.GetMetrics() {
				if m.GetName() != name {
					continue
				}
				total = 0
				for _, dp := range m.GetSum().GetDataPoints() {
					total += dp.GetAsInt()
				}
			}
		}
	}
	return total
}
