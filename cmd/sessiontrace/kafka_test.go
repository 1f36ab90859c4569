package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sessiontrace/sessiontrace/cmd/sessiontrace/internal/recordio"
	"github.com/sessiontrace/sessiontrace/consumer/checkpoint"
	"github.com/sessiontrace/sessiontrace/consumer/kafkatest"
	"github.com/sessiontrace/sessiontrace/consumer/receiver"
)

// fileRecords reads every record of a record file as a record for topic,
// keyed and timestamped as in the file.
func fileRecords(t *testing.T, topic, path string) []*kgo.Record {
	t.Helper()
	r, err := recordio.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var recs []*kgo.Record
	for {
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, &kgo.Record{Topic: topic, Key: rec.Key, Value: rec.Value, Timestamp: rec.Timestamp})
	}
	return recs
}

// produceFile produces every record of a record file to topic, keyed as in
// the file, and returns how many.
func produceFile(t *testing.T, brokers []string, topic, path string) int {
	t.Helper()
	recs := fileRecords(t, topic, path)
	kafkatest.Produce(t, brokers, recs...)
	return len(recs)
}

// sortedLines returns the lines of s sorted, for comparing outputs whose
// partitions may interleave differently.
func sortedLines(s string) []string {
	lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	slices.Sort(lines)
	return lines
}

// TestRecordAndReplayTopic copies a topic to a file with record, then
// checks that replaying the file and replaying the topic give the same
// spans as replaying the original recording.
func TestRecordAndReplayTopic(t *testing.T) {
	want := runCLI(t, nil, "replay", "-o", "json", sessionsFile)
	mustSucceed(t, want, "replay file")
	kafkatest.Each(t, func(t *testing.T, brokers []string) {
		topic := kafkatest.Topic(t, brokers, 3)
		n := produceFile(t, brokers, topic, sessionsFile)
		out := filepath.Join(t.TempDir(), "recorded.jsonl")
		r := runCLI(t, nil, "record", "--brokers", strings.Join(brokers, ","), "--topic", topic, "--output", out)
		mustSucceed(t, r, "record")
		raw, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		if lines := bytes.Count(raw, []byte("\n")); lines != n {
			t.Fatalf("recorded %d lines, produced %d records", lines, n)
		}
		var env struct {
			Topic     string `json:"topic"`
			Partition *int32 `json:"partition"`
			Offset    *int64 `json:"offset"`
			Key       string `json:"key"`
			Payload   string `json:"payload"`
		}
		first, _, _ := bytes.Cut(raw, []byte("\n"))
		if err := json.Unmarshal(first, &env); err != nil || env.Topic != topic || env.Partition == nil || env.Offset == nil || env.Key == "" {
			t.Fatalf("first line is not a kcat -J envelope of %s: %s (%v)", topic, first, err)
		}

		fromFile := runCLI(t, nil, "replay", "-o", "json", out)
		mustSucceed(t, fromFile, "replay recorded file")
		fromTopic := runCLI(t, nil, "replay", "-o", "json", "--brokers", strings.Join(brokers, ","), "--topic", topic)
		mustSucceed(t, fromTopic, "replay --topic")
		if !slices.Equal(sortedLines(fromFile.stdout), sortedLines(fromTopic.stdout)) {
			t.Errorf("replaying the recorded file and the topic give different spans")
		}
		if !slices.Equal(sortedLines(fromFile.stdout), sortedLines(want.stdout)) {
			t.Errorf("replaying the topic gives other spans than replaying the original file")
		}

		// A range: from an offset past the end of every partition is empty.
		empty := runCLI(t, nil, "replay", "-o", "json", "--brokers", strings.Join(brokers, ","), "--topic", topic, "--from", "100000")
		mustSucceed(t, empty, "replay empty range")
		if empty.stdout != "" || !strings.Contains(empty.stderr, "replayed 0 records") {
			t.Errorf("empty range: stdout %q, stderr %q", empty.stdout, empty.stderr)
		}
	})
}

// TestSimulate checks that the simulator is repeatable and that what it
// publishes is what it writes to a file.
func TestSimulate(t *testing.T) {
	args := []string{"simulate", "--players", "3", "--sessions", "6", "--seed", "7"}
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.jsonl"), filepath.Join(dir, "b.jsonl")
	mustSucceed(t, runCLI(t, nil, append(args, "--output", a)...), "simulate a")
	mustSucceed(t, runCLI(t, nil, append(args, "--output", b)...), "simulate b")
	ra, err := os.ReadFile(a)
	if err != nil {
		t.Fatal(err)
	}
	rb, err := os.ReadFile(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(ra) == 0 || !bytes.Equal(ra, rb) {
		t.Fatalf("two runs with the same seed differ (%d and %d bytes)", len(ra), len(rb))
	}
	other := runCLI(t, nil, "simulate", "--players", "3", "--sessions", "6", "--seed", "8", "-o", "-")
	mustSucceed(t, other, "simulate seed 8")
	if other.stdout == string(ra) {
		t.Error("another seed gives the same events")
	}

	kafkatest.Each(t, func(t *testing.T, brokers []string) {
		topic := kafkatest.Topic(t, brokers, 2)
		r := runCLI(t, nil, append(args, "--brokers", strings.Join(brokers, ","), "--topic", topic)...)
		mustSucceed(t, r, "simulate to kafka")
		rec := runCLI(t, nil, "record", "--brokers", strings.Join(brokers, ","), "--topic", topic)
		mustSucceed(t, rec, "record")
		var published []string
		sc := bufio.NewScanner(strings.NewReader(rec.stdout))
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var env struct {
				Key     string `json:"key"`
				Payload string `json:"payload"`
			}
			if err := json.Unmarshal(sc.Bytes(), &env); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(env.Payload, `"player_id":"`+env.Key+`"`) {
				t.Errorf("record key %q is not the event's player: %s", env.Key, env.Payload)
			}
			published = append(published, env.Payload)
		}
		slices.Sort(published)
		if !slices.Equal(published, sortedLines(string(ra))) {
			t.Errorf("published %d events, which differ from the %d the file holds", len(published), len(sortedLines(string(ra))))
		}
	})
}

// lockedBuffer collects a process's stderr while a test reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestConsume runs consume as a user would against a real broker and a real
// OTLP receiver: spans arrive, the HTTP endpoints answer, SIGTERM drains,
// commits with the exported-through mark and exits 0.
func TestConsume(t *testing.T) {
	replayed := runCLI(t, nil, "replay", "-o", "json", sessionsFile)
	mustSucceed(t, replayed, "replay")
	wantSpans := sortedLines(replayed.stdout)

	kafkatest.Each(t, func(t *testing.T, brokers []string) {
		topic := kafkatest.Topic(t, brokers, 3)
		group := kafkatest.Group(t)
		produceFile(t, brokers, topic, sessionsFile)
		recv, err := receiver.Start("127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(recv.Close)

		ctx, cancel := context.WithTimeout(t.Context(), cliTimeout)
		defer cancel()
		cmd := command(ctx, []string{
			"SESSIONTRACE_KAFKA_COMMIT_INTERVAL=200ms",
			"SESSIONTRACE_KAFKA_EXPORT_BATCH_TIMEOUT=100ms",
			"OTEL_SERVICE_NAME=consume-test",
		}, "consume", "--brokers", strings.Join(brokers, ","), "--topic", topic, "--group", group,
			"--otlp-endpoint", recv.Addr(), "--otlp-insecure", "--http-address", "127.0.0.1:0", "--log-format", "json")
		pr, pw := io.Pipe()
		var stderr lockedBuffer
		cmd.Stderr = io.MultiWriter(pw, &stderr)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() {
			exited <- cmd.Wait()
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
		var base string
		select {
		case a := <-addr:
			base = "http://" + a
		case err := <-exited:
			t.Fatalf("consume exited early: %v\n%s", err, stderr.String())
		case <-ctx.Done():
			t.Fatalf("no http endpoint: %s", stderr.String())
		}

		arrived := make(chan error, 1)
		go func() { arrived <- recv.WaitCount(ctx, len(wantSpans)) }()
		select {
		case err := <-arrived:
			if err != nil {
				t.Fatalf("%v\nstderr:\n%s", err, stderr.String())
			}
		case err := <-exited:
			t.Fatalf("consume exited before the spans arrived: %v\nstderr:\n%s", err, stderr.String())
		}
		var got []string
		for _, sp := range recv.Spans() {
			ls := spanFromOTLP(sp.Raw)
			got = append(got, strings.TrimSuffix(string(appendSpanJSON(nil, &ls)), "\n"))
			if sp.Resource["service.name"] != "consume-test" {
				t.Errorf("resource service.name %v, want OTEL_SERVICE_NAME's", sp.Resource["service.name"])
			}
		}
		slices.Sort(got)
		if !slices.Equal(got, wantSpans) {
			t.Errorf("consume exported other spans than replay: %d vs %d\n%s", len(got), len(wantSpans), firstDiff(strings.Join(wantSpans, "\n"), strings.Join(got, "\n")))
		}

		waitStatus(ctx, t, base+"/readyz", http.StatusOK)
		for path, want := range map[string]string{
			"/healthz": "ok",
			"/metrics": "sessiontrace_spans_exported",
			// The session metrics are on /metrics too.
			"/metrics ": "sessiontrace_sessions_ended",
		} {
			path = strings.TrimSpace(path)
			body, code := get(t, base+path)
			if code != http.StatusOK || !strings.Contains(body, want) {
				t.Errorf("GET %s: %d, body lacks %q:\n%.2000s", path, code, want, body)
			}
		}

		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-exited:
			if err != nil {
				t.Fatalf("consume after SIGTERM: %v\nstderr:\n%s", err, stderr.String())
			}
		case <-ctx.Done():
			t.Fatalf("consume did not exit after SIGTERM:\n%s", stderr.String())
		}
		// The meter provider's shutdown pushed the last session metrics
		// over OTLP before the process exited.
		roots := 0
		for _, sp := range recv.Spans() {
			if !sp.ParentSpanID.IsValid() {
				roots++
			}
		}
		if ended := lastSum(recv.Metrics(), "sessiontrace.sessions.ended"); roots == 0 || ended != int64(roots) {
			t.Errorf("sessiontrace.sessions.ended pushed over OTLP = %d, want %d (root spans)", ended, roots)
		}
		commits := kafkatest.Committed(t, brokers, group, topic)
		if len(commits) == 0 {
			t.Fatal("nothing committed")
		}
		for p, c := range commits {
			if m, ok := checkpoint.Parse(c.Metadata, c.Offset); !ok || !m.Resume {
				t.Errorf("partition %d committed %d with metadata %q, not version 2 of ours", p, c.Offset, c.Metadata)
			}
		}
	})
}

func get(t *testing.T, url string) (string, int) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(body), resp.StatusCode
}

// waitStatus polls url until it answers want or ctx ends.
func waitStatus(ctx context.Context, t *testing.T, url string, want int) {
	t.Helper()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		body, code := get(t, url)
		if code == want {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("GET %s: %d %q, want %d", url, code, body, want)
		case <-tick.C:
		}
	}
}

// TestKafkaSASL runs record against an in-process broker that requires
// SASL, for each mechanism, with the password from the environment or a
// file; a wrong password fails without printing it.
func TestKafkaSASL(t *testing.T) {
	const user, pass = "sessiontrace", "correct-horse-battery"
	passFile := filepath.Join(t.TempDir(), "password")
	writeFile(t, passFile, pass+"\n")
	for _, c := range []struct {
		name      string
		mechanism string
		env       []string
		ok        bool
	}{
		{"plain from env", "PLAIN", []string{"SESSIONTRACE_KAFKA_SASL_PASSWORD=" + pass}, true},
		{"scram-sha-256 from file", "SCRAM-SHA-256", []string{"SESSIONTRACE_KAFKA_SASL_PASSWORD_FILE=" + passFile}, true},
		{"scram-sha-512 from env", "SCRAM-SHA-512", []string{"SESSIONTRACE_KAFKA_SASL_PASSWORD=" + pass}, true},
		{"scram-sha-512 wrong password", "SCRAM-SHA-512", []string{"SESSIONTRACE_KAFKA_SASL_PASSWORD=wrong-" + pass}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "t"),
				kfake.EnableSASL(), kfake.Superuser(c.mechanism, user, pass))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(cluster.Close)
			env := append([]string{
				"SESSIONTRACE_KAFKA_SASL_MECHANISM=" + c.mechanism,
				"SESSIONTRACE_KAFKA_SASL_USERNAME=" + user,
			}, c.env...)
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			defer cancel()
			cmd := command(ctx, env, "record", "--brokers", strings.Join(cluster.ListenAddrs(), ","), "--topic", "t", "--log-level", "debug")
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err = cmd.Run()
			var ee *exec.ExitError
			switch {
			case c.ok && err != nil:
				t.Fatalf("record with SASL: %v\n%s", err, stderr.String())
			case !c.ok && (!errors.As(err, &ee) || ctx.Err() != nil):
				t.Fatalf("record with a wrong password: %v, want a non-zero exit of its own\n%s", err, stderr.String())
			}
			if strings.Contains(stderr.String(), pass) {
				t.Errorf("the password appears on stderr:\n%s", stderr.String())
			}
		})
	}
}

// TestConsumeNotCoPartitioned checks that consume refuses topics whose
// partition counts differ as a configuration error (exit 2), naming the
// counts, before it consumes anything.
func TestConsumeNotCoPartitioned(t *testing.T) {
	kafkatest.Each(t, func(t *testing.T, brokers []string) {
		a, b := kafkatest.Topic(t, brokers, 3), kafkatest.Topic(t, brokers, 2)
		r := runCLI(t, nil, "consume", "--brokers", strings.Join(brokers, ","), "--topics", a+","+b,
			"--group", kafkatest.Group(t), "--otlp-endpoint", "127.0.0.1:1", "--otlp-insecure", "--http-address", "127.0.0.1:0")
		if r.code != 2 {
			t.Fatalf("exit %d, want 2; stderr:\n%s", r.code, r.stderr)
		}
		for _, want := range []string{"kafka.topics", "not co-partitioned", a + " has 3", b + " has 2"} {
			if !strings.Contains(r.stderr, want) {
				t.Errorf("stderr does not say %q:\n%s", want, r.stderr)
			}
		}
	})
}
