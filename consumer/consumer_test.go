package consumer

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sessiontrace/sessiontrace/consumer/kafkatest"
)

// childEnv switches the test binary into a consumer process for the crash
// test: the parent kills it with SIGKILL, which no in-process test can do.
const childEnv = "SESSIONTRACE_TEST_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		os.Exit(runChild())
	}
	if os.Getenv(receiverEnv) == "1" {
		os.Exit(runReceiver())
	}
	kafkatest.Main(m)
}

func runChild() int {
	brokers := strings.Split(os.Getenv("CHILD_BROKERS"), ",")
	out, err := newOTLP(context.Background(), os.Getenv("CHILD_OTLP"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	cfg := pathConfig(brokers, os.Getenv("CHILD_TOPIC"), os.Getenv("CHILD_GROUP"), os.Getenv("CHILD_EXPORT_PATH"))
	cfg.InstanceID = os.Getenv("CHILD_INSTANCE_ID")
	if ts := os.Getenv("CHILD_TOPICS"); ts != "" {
		cfg = mergedConfig(brokers, strings.Split(ts, ","), cfg.Group)
		cfg.ExportPath = os.Getenv("CHILD_EXPORT_PATH")
	}
	if d, err := time.ParseDuration(os.Getenv("CHILD_SNAPSHOT_INTERVAL")); err == nil {
		cfg.SnapshotInterval = d
	}
	session := 6 * time.Second
	if d, err := time.ParseDuration(os.Getenv("CHILD_SESSION_TIMEOUT")); err == nil {
		session = d
	}
	opts := append(out.options(), WithKafkaOptions(kgo.SessionTimeout(session), kgo.HeartbeatInterval(500*time.Millisecond)))
	opts = append(opts, childHoldOptions()...)
	if os.Getenv("SESSIONTRACE_TEST_LOG") != "" {
		opts = append(opts, WithLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	}
	c, err := New(cfg, out.exp, opts...)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	// Runs until the parent kills it; the deadline only stops an orphan.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := c.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

func TestTracesEverySessionAndDeadLettersPoison(t *testing.T) {
	eachPath(t, func(t *testing.T, brokers []string, path string) {
		s := buildScenario(t, scenarioSpec{partitions: 3, players: 60, openAtEnd: 5, poisonEach: 25, matches: 2})
		topic := kafkatest.Topic(t, brokers, s.partitions)
		group := kafkatest.Group(t)
		rcv := startReceiver(t)
		s.produce(t, brokers, topic)
		watch := watchContract(t, brokers, group, topic, s, rcv)

		r := startConsumer(t, pathConfig(brokers, topic, group, path), exporter(t, rcv.Addr()))
		waitSpans(t, rcv, len(s.spans), 60*time.Second)
		waitCommitted(t, brokers, group, topic, s.endOffsets(t), 30*time.Second)
		r.shutdown(t)
		watch.finish(t)

		if dups := s.check(t, rcv.Spans()); dups != 0 {
			t.Errorf("%d duplicate spans in a run without failures", dups)
		}
		dead := consumeAll(t, brokers, topic+".dlq", s.poison)
		for _, d := range dead {
			if header(d, HeaderReason) == "" || header(d, HeaderSourceTopic) != topic || header(d, HeaderSourceOffset) == "" {
				t.Errorf("dead-letter record without its reason or source: %v", d.Headers)
			}
		}
	})
}

func TestCollectorOutageLosesNothing(t *testing.T) {
	eachPath(t, func(t *testing.T, brokers []string, path string) {
		s := buildScenario(t, scenarioSpec{partitions: 2, players: 40, openAtEnd: 2, matches: 2})
		topic := kafkatest.Topic(t, brokers, s.partitions)
		group := kafkatest.Group(t)
		rcv := startReceiver(t)
		rcv.Stop() // the collector is down before the first span
		s.produce(t, brokers, topic)
		watch := watchContract(t, brokers, group, topic, s, rcv)

		r := startConsumer(t, pathConfig(brokers, topic, group, path), exporter(t, rcv.Addr()))
		select {
		case <-r.c.Ready():
		case <-time.After(30 * time.Second):
			t.Fatal("consumer never got partitions")
		}
		// While the collector is down nothing may be committed past the first
		// record of each partition: every session starts there and no span
		// was acknowledged.
		waitForExportFailures(t, r.c)
		for p, off := range committedOffsets(t, brokers, group, topic) {
			if off > 0 {
				t.Errorf("partition %d committed to %d while the collector was down", p, off)
			}
		}
		if err := rcv.Restart(); err != nil {
			t.Fatal(err)
		}
		waitSpans(t, rcv, len(s.spans), 60*time.Second)
		waitCommitted(t, brokers, group, topic, s.endOffsets(t), 30*time.Second)
		r.shutdown(t)
		watch.finish(t)
		if dups := s.check(t, rcv.Spans()); dups != 0 {
			t.Errorf("%d duplicate spans after an outage without a restart", dups)
		}
	})
}

// waitForExportFailures waits until the consumer has seen its exports fail,
// so the outage is known to have been hit, not merely scheduled.
func waitForExportFailures(t *testing.T, c *Consumer) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if c.failedExports.Load() > 0 {
			return
		}
		select {
		case <-t.Context().Done():
			t.Fatal(t.Context().Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatal("no export failed while the collector was down")
}

func TestKilledConsumerResumesWithoutLoss(t *testing.T) {
	t.Parallel() // minutes of waiting on brokers and children: run beside the other long ones
	eachPath(t, func(t *testing.T, brokers []string, path string) {
		s := buildScenario(t, scenarioSpec{partitions: 3, players: 90, openAtEnd: 6, matches: 3})
		topic := kafkatest.Topic(t, brokers, s.partitions)
		group := kafkatest.Group(t)
		rcv := startReceiver(t)
		watch := watchContract(t, brokers, group, topic, s, rcv)

		first, second := s.split(0.5)
		first.produce(t, brokers, topic)
		child := startChild(t, brokers, topic, group, path, rcv.Addr())
		waitSpans(t, rcv, len(first.spans), 60*time.Second)
		waitCommitted(t, brokers, group, topic, first.endOffsets(t), 30*time.Second)

		before := rcv.Count()
		second.produce(t, brokers, topic)
		waitSpans(t, rcv, before+1, 60*time.Second) // mid-stream: it is exporting the second half
		if err := child.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		_ = child.Wait()
		atKill := committedWithMarks(t, brokers, group, topic)

		r := startConsumer(t, pathConfig(brokers, topic, group, path), exporter(t, rcv.Addr()))
		waitSpans(t, rcv, len(s.spans), 90*time.Second)
		waitCommitted(t, brokers, group, topic, s.endOffsets(t), 30*time.Second)
		r.shutdown(t)
		watch.finish(t)

		dups := s.check(t, rcv.Spans())
		t.Logf("%d spans expected, %d received, %d duplicates after kill -9", len(s.spans), rcv.Count(), dups)
		// Duplicates must come only from records after the last commit's mark.
		counts := map[string]int{}
		for _, sp := range rcv.Spans() {
			counts[sp.SpanID.String()]++
		}
		for id, sp := range s.spans {
			if counts[id.String()] > 1 && s.closedBy[id] < atKill[s.partOf[id]] {
				t.Errorf("span %s %q re-emitted although its record (offset %d) is below the committed mark %d", id, sp.Name, s.closedBy[id], atKill[s.partOf[id]])
			}
		}
	})
}

func TestPartitionsMovingBetweenConsumers(t *testing.T) {
	t.Parallel() // minutes of waiting on brokers and children: run beside the other long ones
	eachPath(t, func(t *testing.T, brokers []string, path string) {
		s := buildScenario(t, scenarioSpec{partitions: 6, players: 120, openAtEnd: 6, poisonEach: 40, matches: 2})
		topic := kafkatest.Topic(t, brokers, s.partitions)
		group := kafkatest.Group(t)
		rcv := startReceiver(t)
		watch := watchContract(t, brokers, group, topic, s, rcv)
		exp := exporter(t, rcv.Addr())
		cfg := pathConfig(brokers, topic, group, path)

		a, rest := s.split(0.34)
		b, c := rest.split(0.5)
		a.produce(t, brokers, topic)
		ca := startConsumer(t, cfg, exp)
		cb := startConsumer(t, cfg, exp)
		b.produce(t, brokers, topic)
		cc := startConsumer(t, cfg, exp)
		<-cc.c.Ready()
		ca.shutdown(t) // its partitions move to the others while records flow
		c.produce(t, brokers, topic)
		waitSpans(t, rcv, len(s.spans), 90*time.Second)
		waitCommitted(t, brokers, group, topic, s.endOffsets(t), 60*time.Second)
		cb.shutdown(t)
		cc.shutdown(t)
		watch.finish(t)
		dups := s.check(t, rcv.Spans())
		// Every move here is a graceful revoke, which commits the mark after
		// draining: the next owner must not re-emit a single span.
		if dups != 0 {
			t.Errorf("%d duplicate spans across graceful rebalances", dups)
		}
		consumeAll(t, brokers, topic+".dlq", s.poison)
	})
}

func startChild(t *testing.T, brokers []string, topic, group, path, otlp string, env ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=1",
		"CHILD_BROKERS="+strings.Join(brokers, ","), "CHILD_TOPIC="+topic, "CHILD_GROUP="+group, "CHILD_EXPORT_PATH="+path, "CHILD_OTLP="+otlp)
	cmd.Env = append(cmd.Env, env...)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd
}

// committedWithMarks returns each partition's committed exported-through mark.
func committedWithMarks(t *testing.T, brokers []string, group, topic string) map[int32]int64 {
	t.Helper()
	out := map[int32]int64{}
	for p, c := range kafkatest.Committed(t, brokers, group, topic) {
		if h, ok := parseMetadata(c.Metadata, c.Offset); ok {
			out[p] = h
		}
	}
	return out
}

// consumeAll reads topic (all partitions, from the start) until it has seen
// dead-letter copies of n distinct source records, and fails t if fewer
// arrive in time. Copies of one record may repeat: a record reprocessed after
// a rebalance is dead-lettered again (at least once), never skipped.
func consumeAll(t *testing.T, brokers []string, topic string, n int) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	var out []*kgo.Record
	distinct := map[string]bool{}
	for len(distinct) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d distinct dead-letter records from %s, want %d", len(distinct), topic, n)
		}
		for _, r := range fs.Records() {
			out = append(out, r)
			distinct[header(r, HeaderSourcePartition)+"/"+header(r, HeaderSourceOffset)] = true
		}
	}
	if len(distinct) != n {
		t.Errorf("%d distinct records in %s, want %d", len(distinct), topic, n)
	}
	return out
}

func header(r *kgo.Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// TestBrokerRestartLosesNothing restarts the real broker (same port, same
// data) while the consumer runs. Only the external backend started by
// .ci/kafka can be restarted, and only when SESSIONTRACE_TEST_BROKER_RESTART
// is set: a restart would break other packages' tests sharing the broker, so
// .ci/run runs this one alone after the suite.
func TestBrokerRestartLosesNothing(t *testing.T) {
	eachPath(t, func(t *testing.T, brokers []string, path string) {
		if !strings.Contains(t.Name(), "/external/") || os.Getenv("SESSIONTRACE_KAFKA_STATE") == "" || os.Getenv("SESSIONTRACE_TEST_BROKER_RESTART") == "" {
			t.Skip("needs the external broker started by .ci/kafka, SESSIONTRACE_KAFKA_STATE and SESSIONTRACE_TEST_BROKER_RESTART=1 (.ci/run's last step)")
		}
		s := buildScenario(t, scenarioSpec{partitions: 2, players: 40, openAtEnd: 3, matches: 2})
		topic := kafkatest.Topic(t, brokers, s.partitions)
		group := kafkatest.Group(t)
		rcv := startReceiver(t)
		watch := watchContract(t, brokers, group, topic, s, rcv)
		first, second := s.split(0.5)
		first.produce(t, brokers, topic)
		r := startConsumer(t, pathConfig(brokers, topic, group, path), exporter(t, rcv.Addr()))
		waitSpans(t, rcv, len(first.spans), 60*time.Second)
		// Restart only once the first half is committed, so what a restart
		// costs is measured against a known mark.
		waitMarks(t, brokers, group, topic, first)
		atRestart := committedWithMarks(t, brokers, group, topic)

		restart := exec.CommandContext(t.Context(), "../.ci/kafka", "restart")
		restart.Stderr = os.Stderr
		out, err := restart.Output()
		if err != nil {
			t.Fatalf(".ci/kafka restart: %v", err)
		}
		if got := strings.TrimSpace(string(out)); got != brokers[0] {
			t.Fatalf("broker came back on %q, want %q", got, brokers[0])
		}
		second.produce(t, brokers, topic)
		waitSpans(t, rcv, len(s.spans), 90*time.Second)
		waitCommitted(t, brokers, group, topic, s.endOffsets(t), 60*time.Second)
		r.shutdown(t)
		watch.finish(t)
		dups := s.check(t, rcv.Spans())
		t.Logf("%d spans expected, %d received, %d identical duplicates across a broker restart", len(s.spans), rcv.Count(), dups)
		counts := map[string]int{}
		for _, sp := range rcv.Spans() {
			counts[sp.SpanID.String()]++
		}
		for id, sp := range s.spans {
			if counts[id.String()] > 1 && s.closedBy[id] < atRestart[s.partOf[id]] {
				t.Errorf("span %s %q re-emitted although its record (offset %d) is below the mark %d committed before the restart", id, sp.Name, s.closedBy[id], atRestart[s.partOf[id]])
			}
		}
	})
}

// waitMarks waits until every partition's committed mark covers all of part's
// records.
func waitMarks(t *testing.T, brokers []string, group, topic string, part *scenario) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		marks := committedWithMarks(t, brokers, group, topic)
		done := true
		for p, recs := range part.records {
			if marks[p] < int64(len(recs)) {
				done = false
			}
		}
		if done {
			return
		}
		select {
		case <-t.Context().Done():
			t.Fatal(t.Context().Err())
		case <-time.After(50 * time.Millisecond): // polling the broker, bounded by the deadline
		}
	}
	t.Fatal("committed marks never covered the records produced so far")
}

// TestFarFutureTimestampsAreDeadLettered produces 30 logins dated
// 2262-04-01 with sane record timestamps among 60 normal sessions: without
// the skew bound they advance stream time by two centuries, end every other
// session early, turn later events into fragment sessions and pin the
// commit. With it they go to the dead-letter topic as future_timestamp, the
// normal sessions' spans are exactly the reference's, and the commit
// reaches the end of every partition.
func TestFarFutureTimestampsAreDeadLettered(t *testing.T) {
	kafkatest.Each(t, func(t *testing.T, brokers []string) {
		s := buildScenario(t, scenarioSpec{partitions: 3, players: 60, matches: 2, farFuture: 30})
		if s.future != 30 {
			t.Fatalf("scenario placed %d far-future logins, want 30", s.future)
		}
		topic := kafkatest.Topic(t, brokers, s.partitions)
		group := kafkatest.Group(t)
		rcv := startReceiver(t)
		s.produce(t, brokers, topic)
		r := startConsumer(t, pathConfig(brokers, topic, group, ExportDirect), exporter(t, rcv.Addr()))
		waitSpans(t, rcv, len(s.spans), 60*time.Second)
		end := map[int32]int64{}
		for p, recs := range s.records {
			end[p] = int64(len(recs))
		}
		waitCommitted(t, brokers, group, topic, end, 30*time.Second)
		r.shutdown(t)

		if s.roots != 60 {
			t.Errorf("reference run has %d roots, want the 60 normal sessions", s.roots)
		}
		if dups := s.check(t, rcv.Spans()); dups != 0 {
			t.Errorf("%d duplicate spans in a run without failures", dups)
		}
		for _, d := range consumeAll(t, brokers, topic+".dlq", s.future) {
			if got := header(d, HeaderReason); got != ReasonFutureTimestamp {
				t.Errorf("dead letter at offset %s has reason %q, want %q", header(d, HeaderSourceOffset), got, ReasonFutureTimestamp)
			}
		}
	})
}

// TestSkewedClocksAcrossARebalance consumes the records of two game servers
// whose clocks disagree by two hours, in the order the events happened (so
// ts is out of order across players), with a second member joining in the
// middle: the partitions it takes over are revoked from the first member
// gracefully and rebuilt from the committed offset. Stream time below that
// offset was driven by the server ahead; a new owner that rebuilt stream
// time from the committed offset alone would expire sessions at other
// records than the uninterrupted run (losing a root and emitting an
// "unknown session" one instead). It must deliver exactly the spans of one
// uninterrupted replay, none twice.
func TestSkewedClocksAcrossARebalance(t *testing.T) {
	kafkatest.Each(t, func(t *testing.T, brokers []string) {
		s := buildScenario(t, scenarioSpec{partitions: 4, players: 120, openAtEnd: 4, matches: 2, clockSkew: 2 * time.Hour, stagger: 20 * time.Second})
		topic := kafkatest.Topic(t, brokers, s.partitions)
		group := kafkatest.Group(t)
		rcv := startReceiver(t)
		watch := watchContract(t, brokers, group, topic, s, rcv)
		exp := exporter(t, rcv.Addr())
		cfg := pathConfig(brokers, topic, group, ExportDirect)

		first, second := s.split(0.5)
		first.produce(t, brokers, topic)
		a := startConsumer(t, cfg, exp)
		waitSpans(t, rcv, len(first.spans), 60*time.Second)
		waitCommitted(t, brokers, group, topic, first.endOffsets(t), 30*time.Second)
		b := startConsumer(t, cfg, exp)
		eventually(t, 30*time.Second, "the second member takes partitions over", func() bool { return len(assignedPartitions(b.c)) > 0 })
		second.produce(t, brokers, topic)
		waitSpans(t, rcv, len(s.spans), 90*time.Second)
		waitCommitted(t, brokers, group, topic, s.endOffsets(t), 60*time.Second)
		a.shutdown(t)
		b.shutdown(t)
		watch.finish(t)
		if dups := s.check(t, rcv.Spans()); dups != 0 {
			t.Errorf("%d duplicate spans across a graceful rebalance", dups)
		}
	})
}
