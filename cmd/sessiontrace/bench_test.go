package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sessiontrace/sessiontrace/consumer/kafkatest"
	"github.com/sessiontrace/sessiontrace/consumer/receiver"
)

// benchSmall keeps a bench run to a few seconds; figures are never
// asserted, only that every field is there and nothing was dropped.
var benchSmall = []string{"bench", "--events", "3000", "--players", "200", "--partitions", "3",
	"--latency-rate", "2000", "--latency-duration", "1s"}

// TestBenchEmbedded runs bench as the README shows it, with the embedded
// broker and receiver, and checks the table has every figure.
func TestBenchEmbedded(t *testing.T) {
	profile := filepath.Join(t.TempDir(), "pipeline.pprof")
	r := runCLI(t, nil, append(append([]string(nil), benchSmall...), "--cpu-profile", profile)...)
	mustSucceed(t, r, "bench")
	if st, err := os.Stat(profile); err != nil || st.Size() == 0 {
		t.Errorf("--cpu-profile wrote no profile: %v", err)
	}
	for _, want := range []string{
		"embedded kfake", "in this process", "embedded receiver",
		"bare franz-go loop", "pipeline to OTLP", "pipeline / bare",
		"wall", "events/s", "spans/s", "CPU/event", "allocs/event", "peak RSS",
		"0 dropped", "0 duplicates", "load average", "latency: record timestamp", "p50 ", "p90 ", "p99 ", "max ",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, r.stdout)
		}
	}
}

// TestBenchBroker runs bench against the harness broker and a receiver of
// the test's own, named with --otlp-endpoint, and checks the JSON report
// against what the receiver counted.
func TestBenchBroker(t *testing.T) {
	kafkatest.Each(t, func(t *testing.T, brokers []string) {
		recv, err := receiver.Start("127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(recv.Close)
		recv.KeepSpans(false)
		args := append(append([]string(nil), benchSmall...), "--json", "--seed", "7",
			"--brokers", strings.Join(brokers, ","), "--otlp-endpoint", recv.Addr(), "--otlp-insecure")
		r := runCLI(t, nil, args...)
		mustSucceed(t, r, "bench")
		var rep benchReport
		dec := json.NewDecoder(strings.NewReader(r.stdout))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&rep); err != nil {
			t.Fatalf("bench --json: %v\n%s", err, r.stdout)
		}
		if rep.BrokerInProcess || rep.OTLPInProcess {
			t.Errorf("broker or receiver reported in process: %+v", rep)
		}
		if rep.Events != 3000 || rep.Spans.Expected == 0 || rep.Spans.Dropped != 0 || rep.Spans.Duplicates != 0 ||
			rep.Spans.Received != rep.Spans.Expected {
			t.Errorf("spans: %+v for %d events", rep.Spans, rep.Events)
		}
		for name, p := range map[string]phaseReport{"bare": rep.Bare, "pipeline": rep.Pipeline} {
			if p.Seconds <= 0 || p.EventsPerSec <= 0 || p.CPUNsPerEvent <= 0 || p.PeakRSSBytes == 0 {
				t.Errorf("%s phase lacks figures: %+v", name, p)
			}
		}
		if rep.Pipeline.SpansPerSec <= 0 || rep.Ratio.CPUPerEvent <= 0 || rep.Ratio.EventsPerSec <= 0 {
			t.Errorf("pipeline figures missing: %+v, ratio %+v", rep.Pipeline, rep.Ratio)
		}
		l := rep.Latency
		if l == nil || l.Roots == 0 || l.Roots != l.ExpectedRoots || l.MaxMs < l.P50Ms || !strings.Contains(l.MeasuredAt, "acknowledged") {
			t.Errorf("latency: %+v", l)
		}
		// The receiver saw the pipeline's spans and the latency phase's.
		if got := recv.Count(); got < rep.Spans.Expected+l.Roots {
			t.Errorf("receiver counted %d spans, want at least %d + %d", got, rep.Spans.Expected, l.Roots)
		}
	})
}

// TestBenchOpenSessions checks the memory mode builds exactly the sessions
// asked for and reports bytes per session.
func TestBenchOpenSessions(t *testing.T) {
	r := runCLI(t, nil, "bench", "--open-sessions", "5000")
	mustSucceed(t, r, "bench --open-sessions")
	for _, want := range []string{"5000 concurrent open sessions", "login, no attributes", "mixed phases", "bytes per open session", "target ≤ 128", "phases: "} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, r.stdout)
		}
	}

	r = runCLI(t, nil, "bench", "--open-sessions", "3000", "--json", "--seed", "5")
	mustSucceed(t, r, "bench --open-sessions --json")
	var rep openReport
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("bench --open-sessions --json: %v\n%s", err, r.stdout)
	}
	for name, m := range map[string]openMeasure{"login, no attributes": rep.LoginBare, "login": rep.Login, "mixed": rep.Mixed} {
		total := 0
		for _, n := range m.Phases {
			total += n
		}
		if m.Sessions != 3000 || total != 3000 || m.BytesPerSession <= 0 || m.Events < m.Sessions {
			t.Errorf("%s: %+v", name, m)
		}
	}
	for _, m := range []openMeasure{rep.LoginBare, rep.Login} {
		if m.Events != 3000 || len(m.Phases) != 1 || m.Phases["login"] != 3000 {
			t.Errorf("logins: %d events, phases %v; want 3000 logins", m.Events, m.Phases)
		}
	}
	// A session reaches more than its login before the last player logs in.
	if len(rep.Mixed.Phases) < 2 {
		t.Errorf("mixed: all open sessions in one phase: %v", rep.Mixed.Phases)
	}
}

// TestBenchUsageErrors checks that bad flags exit 2 naming the flag.
func TestBenchUsageErrors(t *testing.T) {
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"no events", []string{"--events", "0"}, "--events"},
		{"too many events", []string{"--events", "1000000000"}, "--events"},
		{"no partitions", []string{"--partitions", "0"}, "--partitions"},
		{"no players", []string{"--players", "-3"}, "--players"},
		{"negative open sessions", []string{"--open-sessions", "-1"}, "--open-sessions"},
		{"zero latency rate", []string{"--latency-rate", "0"}, "--latency-rate"},
		{"negative latency duration", []string{"--latency-duration", "-1s"}, "--latency-duration"},
		{"zero timeout", []string{"--timeout", "0s"}, "--timeout"},
		{"not a number", []string{"--events", "lots"}, "--events"},
		{"open sessions with a broker", []string{"--open-sessions", "10", "--brokers", "127.0.0.1:1"}, "--brokers"},
		{"extra argument", []string{"now"}, "bench"},
		{"bad config value", []string{"--events", "10"}, "kafka.export_batch_size"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var env []string
			if c.name == "bad config value" {
				env = []string{"SESSIONTRACE_KAFKA_EXPORT_BATCH_SIZE=0"}
			}
			r := runCLI(t, env, append([]string{"bench"}, c.args...)...)
			if r.code != exitUsage {
				t.Errorf("exit %d, want %d; stderr:\n%s", r.code, exitUsage, r.stderr)
			}
			if !strings.HasPrefix(r.stderr, "sessiontrace: ") || !strings.Contains(r.stderr, c.want) {
				t.Errorf("stderr does not name %q:\n%s", c.want, r.stderr)
			}
		})
	}
}

// TestBenchInProcess runs a small bench inside the test process, so that
// the race detector sees the bench's own goroutines (the counting exporter,
// the latency recorder, the consumers) at work.
func TestBenchInProcess(t *testing.T) {
	var stdout, stderr strings.Builder
	code := run(t.Context(), append(append([]string(nil), benchSmall...), "--json"), &stdout, &stderr)
	if code != exitOK {
		t.Fatalf("exit %d; stderr:\n%s", code, stderr.String())
	}
	var rep benchReport
	if err := json.Unmarshal([]byte(stdout.String()), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Spans.Dropped != 0 || rep.Spans.Received != rep.Spans.Expected || rep.Latency == nil || rep.Latency.Roots != rep.Latency.ExpectedRoots {
		t.Errorf("spans %+v, latency %+v", rep.Spans, rep.Latency)
	}
}

// TestLatencySummary checks the nearest-rank percentiles and the count
// within the target.
func TestLatencySummary(t *testing.T) {
	l := newLatencyRecorder()
	received := time.Unix(100, 0)
	for i := 100; i >= 1; i-- { // 1ms … 100ms, recorded out of order
		l.add(received, received.Add(-time.Duration(i)*time.Millisecond).UnixNano())
	}
	s := l.summary(90 * time.Millisecond)
	want := latencySummary{Roots: 100, P50: 50 * time.Millisecond, P90: 90 * time.Millisecond, P99: 99 * time.Millisecond,
		Max: 100 * time.Millisecond, Target: 90 * time.Millisecond, WithinTarget: 90}
	if s != want {
		t.Errorf("summary = %+v, want %+v", s, want)
	}
	if empty := newLatencyRecorder().summary(time.Second); empty.Roots != 0 || empty.Max != 0 {
		t.Errorf("empty summary = %+v", empty)
	}
}

// TestBenchCollectorDown checks that spans that never reach the endpoint are
// reported as dropped and fail the run.
func TestBenchCollectorDown(t *testing.T) {
	recv, err := receiver.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(recv.Close)
	recv.Stop() // the address now refuses connections, as a collector that is down
	// The drain and the last metrics push would each wait for the endpoint
	// in vain; the timeout leaves the few records ample time to reach the
	// pipeline phase even on a loaded machine.
	r := runCLI(t, []string{"SESSIONTRACE_KAFKA_SHUTDOWN_TIMEOUT=1s", "SESSIONTRACE_METRICS_OTLP=false"},
		"bench", "--events", "2000", "--players", "100", "--timeout", "5s", "--otlp-endpoint", recv.Addr(), "--otlp-insecure")
	if r.code != exitFailure {
		t.Fatalf("exit %d, want %d; stderr:\n%s", r.code, exitFailure, r.stderr)
	}
	if !strings.Contains(r.stderr, "spans dropped") || !strings.Contains(r.stdout, " 0 received") {
		t.Errorf("no dropped spans reported:\nstdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
	}
}
