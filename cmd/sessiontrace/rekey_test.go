package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/sessiontrace/sessiontrace/consumer/kafkatest"
	"github.com/sessiontrace/sessiontrace/consumer/receiver"
)

// serving is a sessiontrace process with its HTTP endpoint up.
type serving struct {
	cmd    *exec.Cmd
	base   string
	stderr *lockedBuffer
	exited chan error
}

// startServing starts sessiontrace with args (which must ask for a JSON log
// and an HTTP address) and returns once its HTTP endpoint listens.
func startServing(ctx context.Context, t *testing.T, env []string, args ...string) *serving {
	t.Helper()
	cmd := command(ctx, env, args...)
	pr, pw := io.Pipe()
	s := &serving{cmd: cmd, stderr: &lockedBuffer{}, exited: make(chan error, 1)}
	cmd.Stderr = io.MultiWriter(pw, s.stderr)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		s.exited <- cmd.Wait()
		pw.Close()
	}()
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			var line struct {
				Msg     string `json:"msg"`
				Address string `json:"address"`
			}
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "http endpoint listening" {
				addr <- line.Address
			}
		}
	}()
	select {
	case a := <-addr:
		s.base = "http://" + a
	case err := <-s.exited:
		t.Fatalf("%s exited early: %v\n%s", args[0], err, s.stderr.String())
	case <-ctx.Done():
		t.Fatalf("%s: no http endpoint: %s", args[0], s.stderr.String())
	}
	return s
}

// stop sends SIGTERM and fails t unless the process exits 0.
func (s *serving) stop(ctx context.Context, t *testing.T) {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-s.exited:
		if err != nil {
			t.Fatalf("after SIGTERM: %v\nstderr:\n%s", err, s.stderr.String())
		}
	case <-ctx.Done():
		t.Fatalf("no exit after SIGTERM:\n%s", s.stderr.String())
	}
}

// TestRekeyThenConsume publishes the sessions of sessionsFile unkeyed, runs
// rekey to a topic keyed by player and consume over that topic: consume
// exports exactly the spans a replay of the file gives, which are the spans
// of the same records produced keyed by player. The source has one
// partition, so rekey sees each player's events in order (ordering across
// partitions is the reorder window's, not rekey's).
func TestRekeyThenConsume(t *testing.T) {
	replayed := runCLI(t, nil, "replay", "-o", "json", sessionsFile)
	mustSucceed(t, replayed, "replay")
	wantSpans := sortedLines(replayed.stdout)

	kafkatest.Each(t, func(t *testing.T, brokers []string) {
		src := kafkatest.Topic(t, brokers, 1)
		out := kafkatest.Topic(t, brokers, 3)
		produceUnkeyed(t, brokers, src, sessionsFile)
		recv, err := receiver.Start("127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(recv.Close)
		ctx, cancel := context.WithTimeout(t.Context(), cliTimeout)
		defer cancel()
		b := strings.Join(brokers, ",")

		rgroup := kafkatest.Group(t)
		rk := startServing(ctx, t, []string{
			"SESSIONTRACE_REKEY_GROUP=" + rgroup,
			"SESSIONTRACE_REKEY_TRANSACTIONAL_ID_PREFIX=" + rgroup,
			"SESSIONTRACE_METRICS_OTLP=false",
		}, "rekey", "--brokers", b, "--source-topics", src, "--output-topic", out, "--instance", "one",
			"--http-address", "127.0.0.1:0", "--log-format", "json")
		waitStatus(ctx, t, rk.base+"/readyz", http.StatusOK)

		cs := startServing(ctx, t, []string{
			"SESSIONTRACE_KAFKA_COMMIT_INTERVAL=200ms",
			"SESSIONTRACE_KAFKA_EXPORT_BATCH_TIMEOUT=100ms",
			"SESSIONTRACE_METRICS_OTLP=false",
		}, "consume", "--brokers", b, "--topic", out, "--group", kafkatest.Group(t),
			"--otlp-endpoint", recv.Addr(), "--otlp-insecure", "--http-address", "127.0.0.1:0", "--log-format", "json")

		arrived := make(chan error, 1)
		go func() { arrived <- recv.WaitCount(ctx, len(wantSpans)) }()
		select {
		case err := <-arrived:
			if err != nil {
				t.Fatalf("%v\nrekey:\n%s\nconsume:\n%s", err, rk.stderr.String(), cs.stderr.String())
			}
		case err := <-rk.exited:
			t.Fatalf("rekey exited: %v\n%s", err, rk.stderr.String())
		case err := <-cs.exited:
			t.Fatalf("consume exited: %v\n%s", err, cs.stderr.String())
		}
		var got []string
		for _, sp := range recv.Spans() {
			ls := spanFromOTLP(sp.Raw)
			got = append(got, strings.TrimSuffix(string(appendSpanJSON(nil, &ls)), "\n"))
		}
		slices.Sort(got)
		if !slices.Equal(got, wantSpans) {
			t.Errorf("consume over the rekeyed topic exported other spans than replay: %d vs %d\n%s",
				len(got), len(wantSpans), firstDiff(strings.Join(wantSpans, "\n"), strings.Join(got, "\n")))
		}
		body, code := get(t, rk.base+"/metrics")
		// The file's one record of an unknown type has no player rekey can
		// trust: it is dead-lettered, as consume would dead-letter it.
		copied, dead := metricValue(body, "sessiontrace_rekey_records_out_total"), metricValue(body, "sessiontrace_rekey_records_dead_lettered_total")
		if copied != sessionsRecords-1 || dead != 1 || !strings.Contains(body, `reason="unknown_type"`) {
			t.Errorf("rekey records out %v and dead-lettered %v, want %d and 1 (unknown_type)", copied, dead, sessionsRecords-1)
		}
		for _, want := range []string{"sessiontrace_rekey_records_out", "sessiontrace_rekey_transactions", "sessiontrace_rekey_records_in"} {
			if code != http.StatusOK || !strings.Contains(body, want) {
				t.Errorf("rekey GET /metrics: %d, body lacks %q", code, want)
			}
		}
		if body, code := get(t, rk.base+"/healthz"); code != http.StatusOK || strings.TrimSpace(body) != "ok" {
			t.Errorf("rekey GET /healthz: %d %q", code, body)
		}
		cs.stop(ctx, t)
		rk.stop(ctx, t)
	})
}

// produceUnkeyed produces every record of a record file to topic without a
// key.
func produceUnkeyed(t *testing.T, brokers []string, topic, path string) {
	t.Helper()
	recs := fileRecords(t, topic, path)
	for _, r := range recs {
		r.Key = nil
	}
	kafkatest.Produce(t, brokers, recs...)
}

// TestRekeyConfigErrors checks that rekey refuses a configuration it
// cannot run with, with the usage status and the key named.
func TestRekeyConfigErrors(t *testing.T) {
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"no brokers", []string{"rekey", "--source-topics", "a", "--output-topic", "b"}, "kafka.brokers"},
		{"no topics", []string{"rekey", "--brokers", "127.0.0.1:1", "--output-topic", "b"}, "rekey.topics"},
		{"no output", []string{"rekey", "--brokers", "127.0.0.1:1", "--source-topics", "a"}, "rekey.output_topic"},
		{"reads its output", []string{"rekey", "--brokers", "127.0.0.1:1", "--source-topics", "a,b", "--output-topic", "b"}, "its own output"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := runCLI(t, nil, c.args...)
			if r.code != exitUsage || !strings.Contains(r.stderr, c.want) {
				t.Errorf("exit %d, stderr %q; want %d naming %q", r.code, r.stderr, exitUsage, c.want)
			}
		})
	}
}

// metricValue is the sum of the samples of name in a Prometheus text
// exposition.
func metricValue(body, name string) float64 {
	sum := 0.0
	for _, line := range strings.Split(body, "\n") {
		rest, ok := strings.CutPrefix(line, name)
		if !ok || (rest != "" && rest[0] != '{' && rest[0] != ' ') {
			continue
		}
		fields := strings.Fields(rest[strings.LastIndex(rest, "}")+1:])
		if len(fields) == 0 {
			continue
		}
		if v, err := strconv.ParseFloat(fields[0], 64); err == nil {
			sum += v
		}
	}
	return sum
}
