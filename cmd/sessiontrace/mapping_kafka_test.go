package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sessiontrace/sessiontrace/consumer/kafkatest"
	"github.com/sessiontrace/sessiontrace/consumer/receiver"
	"github.com/sessiontrace/sessiontrace/schema"
)

// TestConsumeMapped consumes the sessions of testdata/cli/sessions.jsonl
// written in other producers' shapes, with nothing but a mapping in the
// configuration file, and checks that the spans reaching the OTLP receiver
// are those of the same sessions in the v1 contract (replay of the v1
// file): the arena shape (epoch-millisecond timestamps, nested player IDs,
// no event IDs, producer reason codes) gives the same span names, parents,
// times, attributes and end types under other IDs; CloudEvents in both
// Kafka modes keep the event IDs, so their spans are identical byte for
// byte.
func TestConsumeMapped(t *testing.T) {
	replayed := runCLI(t, nil, "replay", "-o", "json", sessionsFile)
	mustSucceed(t, replayed, "replay")
	want := sortedLines(replayed.stdout)

	for _, c := range []struct {
		name, mapping, sample string
		records               func(t *testing.T, topic, path string) []*kgo.Record
		sameIDs               bool
		ignored               int
	}{
		{"arena", "arena.yaml", "arena.jsonl", arenaRecords, false, 1},
		{"cloudevents-structured", "cloudevents.yaml", "cloudevents-structured.jsonl", structuredRecords, true, 0},
		{"cloudevents-binary", "cloudevents.yaml", "cloudevents-binary.jsonl", envelopeRecords, true, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			kafkatest.Each(t, func(t *testing.T, brokers []string) {
				topic := kafkatest.Topic(t, brokers, 3)
				kafkatest.Produce(t, brokers, c.records(t, topic, repoFile("testdata", "mapping", c.sample))...)
				cfg := mappingConfig(t, brokers, topic, repoFile("testdata", "mapping", c.mapping))
				got, metrics, _ := consumeSpans(t, cfg, len(want), nil)
				if !c.sameIDs {
					got, want := shapeOf(t, got), shapeOf(t, want)
					if !slices.Equal(got, want) {
						t.Fatalf("mapped spans differ from the v1 spans: %d vs %d\n%s", len(got), len(want), firstDiff(strings.Join(want, "\n"), strings.Join(got, "\n")))
					}
				} else if !slices.Equal(got, want) {
					t.Fatalf("mapped spans differ from the v1 spans: %d vs %d\n%s", len(got), len(want), firstDiff(strings.Join(want, "\n"), strings.Join(got, "\n")))
				}
				if ignored := int(metricValue(metrics, "sessiontrace_records_ignored_total")); ignored != c.ignored {
					t.Errorf("sessiontrace_records_ignored = %d, want %d", ignored, c.ignored)
				}
			})
		})
	}
}

// mappingConfig writes a configuration file for consume whose only
// non-default content is the mapping file's, under kafka.mapping.
func mappingConfig(t *testing.T, brokers []string, topic, mappingFile string) string {
	t.Helper()
	raw, err := os.ReadFile(mappingFile)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	// The samples' events are dated months before the records are produced
	// (their Kafka timestamps are now): max_past_skew would dead-letter
	// them all as past_timestamp.
	fmt.Fprintf(&b, "kafka:\n  brokers: [%s]\n  topic: %s\n  group: %s\n  commit_interval: 200ms\n  export_batch_timeout: 100ms\n  max_past_skew: 0s\n  mapping:\n",
		strings.Join(brokers, ", "), topic, kafkatest.Group(t))
	for line := range strings.SplitSeq(strings.TrimRight(string(raw), "\n"), "\n") {
		b.WriteString("    " + line + "\n")
	}
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func sampleLines(t *testing.T, path string) [][]byte {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Split(bytes.TrimRight(raw, "\n"), []byte("\n"))
}

// arenaRecords keys each arena record by its payload.player.id.
func arenaRecords(t *testing.T, topic, path string) []*kgo.Record {
	var recs []*kgo.Record
	for _, line := range sampleLines(t, path) {
		var v struct {
			Payload struct {
				Player struct {
					ID string `json:"id"`
				} `json:"player"`
			} `json:"payload"`
		}
		if err := json.Unmarshal(line, &v); err != nil {
			t.Fatal(err)
		}
		recs = append(recs, &kgo.Record{Topic: topic, Key: []byte(v.Payload.Player.ID), Value: line})
	}
	return recs
}

// structuredRecords sends each CloudEvent in structured mode, keyed by its
// subject.
func structuredRecords(t *testing.T, topic, path string) []*kgo.Record {
	var recs []*kgo.Record
	for _, line := range sampleLines(t, path) {
		var v struct {
			Subject string `json:"subject"`
		}
		if err := json.Unmarshal(line, &v); err != nil {
			t.Fatal(err)
		}
		recs = append(recs, &kgo.Record{Topic: topic, Key: []byte(v.Subject), Value: line,
			Headers: []kgo.RecordHeader{{Key: "content-type", Value: []byte("application/cloudevents+json; charset=UTF-8")}}})
	}
	return recs
}

// envelopeRecords sends the key, headers and value of mapping check's
// envelope lines (binary-mode CloudEvents).
func envelopeRecords(t *testing.T, topic, path string) []*kgo.Record {
	var recs []*kgo.Record
	for _, line := range sampleLines(t, path) {
		rec, err := sampleRecord(line)
		if err != nil {
			t.Fatal(err)
		}
		kr := &kgo.Record{Topic: topic, Key: rec.Key, Value: rec.Value}
		for _, h := range rec.Headers {
			kr.Headers = append(kr.Headers, kgo.RecordHeader{Key: h.Key, Value: h.Value})
		}
		recs = append(recs, kr)
	}
	return recs
}

// consumeSpans runs consume with the configuration file cfg and the extra
// environment env until n spans reached a receiver, and returns them as
// sorted JSON lines with the text of /metrics and the process's log, after
// a clean SIGTERM.
func consumeSpans(t *testing.T, cfg string, n int, env []string) ([]string, string, string) {
	t.Helper()
	recv, err := receiver.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(recv.Close)
	ctx, cancel := context.WithTimeout(t.Context(), cliTimeout)
	defer cancel()
	cmd := command(ctx, env, "consume", "--config", cfg, "--otlp-endpoint", recv.Addr(), "--otlp-insecure",
		"--http-address", "127.0.0.1:0", "--log-format", "json")
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
	go func() { arrived <- recv.WaitCount(ctx, n) }()
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
	}
	slices.Sort(got)
	// Every record was processed once the last span arrived; the counters
	// are read before shutdown.
	waitStatus(ctx, t, base+"/readyz", http.StatusOK)
	metrics, code := get(t, base+"/metrics")
	if code != http.StatusOK {
		t.Errorf("GET /metrics: %d", code)
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
	return got, metrics, stderr.String()
}

// shapeOf rewrites span JSON lines without their IDs: each span names its
// trace by its root's player and start, and its parent by name and start,
// so that the same sessions under other IDs compare equal.
func shapeOf(t *testing.T, lines []string) []string {
	t.Helper()
	type span struct {
		TraceID      string `json:"traceId"`
		SpanID       string `json:"spanId"`
		ParentSpanID string `json:"parentSpanId"`
		Name         string `json:"name"`
		Start        string `json:"startTimeUnixNano"`
		End          string `json:"endTimeUnixNano"`
		Attributes   []struct {
			Key   string          `json:"key"`
			Value json.RawMessage `json:"value"`
		} `json:"attributes"`
	}
	spans := make([]span, len(lines))
	byID := map[string]*span{}
	traces := map[string]string{}
	for i, l := range lines {
		if err := json.Unmarshal([]byte(l), &spans[i]); err != nil {
			t.Fatal(err)
		}
		s := &spans[i]
		byID[s.TraceID+s.SpanID] = s
	}
	// A trace is named by its player and its earliest start (the root's,
	// when the root was exported: a session still open has exported only
	// its ended phases).
	for i := range spans {
		s := &spans[i]
		player := ""
		for _, a := range s.Attributes {
			if a.Key == "player.id" {
				player = string(a.Value)
			}
		}
		if player == "" {
			t.Fatalf("span %s %s has no player.id", s.Name, s.Start)
		}
		k, ok := traces[s.TraceID]
		_, start, _ := strings.Cut(k, "@")
		if !ok || len(s.Start) < len(start) || (len(s.Start) == len(start) && s.Start < start) {
			traces[s.TraceID] = player + "@" + s.Start
		}
	}
	out := make([]string, 0, len(spans))
	for i := range spans {
		s := &spans[i]
		parent := "-"
		if s.ParentSpanID != "" {
			parent = "unexported"
			if p := byID[s.TraceID+s.ParentSpanID]; p != nil {
				parent = p.Name + "@" + p.Start
			}
		}
		if _, err := hex.DecodeString(s.TraceID); err != nil || len(s.TraceID) != 32 {
			t.Fatalf("span %s %s: trace ID %q", s.Name, s.Start, s.TraceID)
		}
		attrs, _ := json.Marshal(s.Attributes)
		out = append(out, fmt.Sprintf("%s %s %s-%s parent=%s %s", traces[s.TraceID], s.Name, s.Start, s.End, parent, attrs))
	}
	slices.Sort(out)
	return out
}

// TestConsumePseudonymous consumes the arena sessions with
// privacy.player_id hmac-sha256, plus a record whose key is another player
// (dead-lettered), and checks that no raw player ID reaches the spans, the
// metrics or the log, that the spans are those of the v1 sessions with each
// player ID replaced by its pseudonym, and that the dead-letter copy is the
// original record.
func TestConsumePseudonymous(t *testing.T) {
	replayed := runCLI(t, nil, "replay", "-o", "json", sessionsFile)
	mustSucceed(t, replayed, "replay")
	const key = "test-pseudonym-key-0123456789abcdef"
	pk, err := schema.NewPseudonymKey([]byte(key))
	if err != nil {
		t.Fatal(err)
	}
	ps := pk.NewPseudonyms()
	players := []string{"player-000000", "player-000001", "player-000002"}
	pseudo := replayed.stdout
	for _, p := range players {
		if !strings.Contains(pseudo, p) {
			t.Fatalf("the v1 spans lack %s: the test would prove nothing", p)
		}
		pseudo = strings.ReplaceAll(pseudo, `"`+p+`"`, `"`+ps.Of(p)+`"`)
	}
	want := sortedLines(pseudo)

	kafkatest.Each(t, func(t *testing.T, brokers []string) {
		topic := kafkatest.Topic(t, brokers, 3)
		recs := arenaRecords(t, topic, repoFile("testdata", "mapping", "arena.jsonl"))
		mismatch := &kgo.Record{Topic: topic, Key: []byte("player-000001"),
			Value: []byte(`{"category":"user","action":"logout","occurredAt":1767240000000,"payload":{"player":{"id":"player-000002"}}}`)}
		recs = append(recs, mismatch)
		kafkatest.Produce(t, brokers, recs...)
		cfg := mappingConfig(t, brokers, topic, repoFile("testdata", "mapping", "arena.yaml"))
		got, metrics, logs := consumeSpans(t, cfg, len(want), []string{
			"SESSIONTRACE_PRIVACY_PLAYER_ID=hmac-sha256", "SESSIONTRACE_PRIVACY_KEY=" + key, "SESSIONTRACE_LOG_LEVEL=debug",
		})
		if g, w := shapeOf(t, got), shapeOf(t, want); !slices.Equal(g, w) {
			t.Fatalf("pseudonymised spans differ from the v1 spans under pseudonyms: %d vs %d\n%s", len(g), len(w), firstDiff(strings.Join(w, "\n"), strings.Join(g, "\n")))
		}
		if !strings.Contains(logs, "key_mismatch") || !strings.Contains(logs, ps.Of("player-000001")) {
			t.Errorf("the log does not report the key mismatch under the key's pseudonym:\n%s", logs)
		}
		for what, text := range map[string]string{"spans": strings.Join(got, "\n"), "metrics": metrics, "log": logs} {
			for _, p := range players {
				if strings.Contains(text, p) {
					t.Errorf("%s contain the raw player ID %s", what, p)
				}
			}
			if strings.Contains(text, key) {
				t.Errorf("%s contain the pseudonym key", what)
			}
		}
		dlq := readRecords(t, brokers, topic+".dlq", 2) // chat.message and the mismatch
		found := false
		for _, r := range dlq {
			if bytes.Equal(r.Value, mismatch.Value) && bytes.Equal(r.Key, mismatch.Key) {
				found = true
			}
		}
		if !found {
			t.Errorf("the dead-letter topic has no original copy of the mismatched record: %d records", len(dlq))
		}
	})
}

// readRecords reads n records of topic from the start.
func readRecords(t *testing.T, brokers []string, topic string, n int) []*kgo.Record {
	t.Helper()
	cl := kafkatest.Client(t, brokers, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	ctx, cancel := context.WithTimeout(t.Context(), cliTimeout)
	defer cancel()
	var out []*kgo.Record
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %s: %d of %d records before the deadline", topic, len(out), n)
		}
		fs.EachRecord(func(r *kgo.Record) { out = append(out, r) })
	}
	return out
}
