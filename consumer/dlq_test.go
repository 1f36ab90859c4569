package consumer

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sessiontrace/sessiontrace/consumer/kafkatest"
	"github.com/sessiontrace/sessiontrace/schema"
)

// topicWithConfigs creates topic with configs (kafkatest.Topic takes none)
// and deletes it in t.Cleanup.
func topicWithConfigs(t *testing.T, brokers []string, name string, partitions int32, configs map[string]*string) {
	t.Helper()
	adm := kadm.NewClient(kafkatest.Client(t, brokers))
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	resp, err := adm.CreateTopic(ctx, partitions, 1, configs, name)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatalf("create topic %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = adm.DeleteTopic(ctx, name)
	})
	for ctx.Err() == nil {
		if topics, err := adm.ListTopics(ctx, name); err == nil && topics.Has(name) && topics[name].Err == nil {
			return
		}
	}
	t.Fatalf("topic %s never appeared: %v", name, ctx.Err())
}

func ptr(s string) *string { return &s }

// producePoison writes the scenario's one partition to topic with the poison
// values placed evenly between its records, and returns the poison records
// by offset.
func producePoison(t *testing.T, brokers []string, topic string, s *scenario, values [][]byte) map[int64][]byte {
	t.Helper()
	recs := s.records[0]
	poison := map[int64][]byte{}
	var out []*kgo.Record
	every := max(len(recs)/(len(values)+1), 1)
	next := 0
	for i, r := range recs {
		c := *r
		c.Topic = topic
		out = append(out, &c)
		if next < len(values) && (i+1)%every == 0 {
			poison[int64(len(out))] = values[next]
			out = append(out, &kgo.Record{Topic: topic, Partition: 0, Key: r.Key, Value: values[next]})
			next++
		}
	}
	cl := kafkatest.Client(t, brokers, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerBatchMaxBytes(16<<20))
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, out...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	return poison
}

// TestDeadLetterCopiesAreNeverLost covers the ways a dead-letter write used
// to be counted as done although Kafka refused it: a poison record larger
// than the producer's batch limit (the source topic accepted it), and a
// dead-letter topic whose max.message.bytes is smaller than the records.
// Every poison record must reach the dead-letter topic (cut to fit, with its
// original size and hash), and the commit must reach the end only then.
func TestDeadLetterCopiesAreNeverLost(t *testing.T) {
	for _, c := range []struct {
		name     string
		size     int    // of each poison value
		dlqLimit string // the dead-letter topic's max.message.bytes, "" = created by the consumer
	}{
		{"record over the producer batch limit", 3 << 20, ""},
		{"dead-letter topic with a small message limit", 20 << 10, "4096"},
	} {
		t.Run(c.name, func(t *testing.T) {
			kafkatest.Each(t, func(t *testing.T, brokers []string) {
				s := buildScenario(t, scenarioSpec{partitions: 1, players: 12, matches: 1})
				topic := kafkatest.Group(t) // a unique name
				topicWithConfigs(t, brokers, topic, 1, map[string]*string{"max.message.bytes": ptr(strconv.Itoa(8 << 20))})
				if c.dlqLimit != "" {
					topicWithConfigs(t, brokers, topic+".dlq", 1, map[string]*string{"max.message.bytes": ptr(c.dlqLimit)})
				}
				values := make([][]byte, 4)
				for i := range values {
					// Invalid JSON all the way, unlike the records' prefix.
					values[i] = bytes.Repeat([]byte{byte('a' + i)}, c.size)
				}
				poison := producePoison(t, brokers, topic, s, values)
				rcv := startReceiver(t)
				group := kafkatest.Group(t)
				cfg := testConfig(brokers, topic, group)
				cfg.Limits.MaxRecordBytes = 16 << 20 // the 20 KiB values are malformed JSON, not too large
				r := startConsumer(t, cfg, exporter(t, rcv.Addr()))
				waitSpans(t, rcv, len(s.spans), 60*time.Second)
				dead := consumeAll(t, brokers, topic+".dlq", len(poison))
				waitCommitted(t, brokers, group, topic, map[int32]int64{0: int64(len(s.records[0]) + len(poison))}, 30*time.Second)
				r.shutdown(t)
				for _, d := range dead {
					off, _ := strconv.ParseInt(header(d, HeaderSourceOffset), 10, 64)
					orig, ok := poison[off]
					if !ok {
						t.Errorf("dead-letter copy of offset %d, which is no poison record", off)
						continue
					}
					sum := sha256.Sum256(orig)
					if header(d, HeaderTruncated) != "value" || header(d, HeaderOriginalSize) != strconv.Itoa(len(orig)) ||
						header(d, HeaderOriginalSHA256) != hex.EncodeToString(sum[:]) {
						t.Errorf("offset %d: truncation headers %q %q %q, want value, %d and the value's SHA-256", off,
							header(d, HeaderTruncated), header(d, HeaderOriginalSize), header(d, HeaderOriginalSHA256), len(orig))
					}
					if len(d.Value) == 0 || len(d.Value) >= len(orig) || !bytes.HasPrefix(orig, d.Value) {
						t.Errorf("offset %d: copy holds %d bytes, want a non-empty prefix of the %d-byte value", off, len(d.Value), len(orig))
					}
				}
			})
		})
	}
}

// TestDeadLetterTopicDeletedMidRunIsCreatedAgain deletes the dead-letter
// topic while the consumer runs: the poison records after it must land in a
// topic created again (with the source's partition count), not be lost.
func TestDeadLetterTopicDeletedMidRunIsCreatedAgain(t *testing.T) {
	t.Parallel() // minutes of waiting on brokers and children: run beside the other long ones
	kafkatest.Each(t, func(t *testing.T, brokers []string) {
		s := buildScenario(t, scenarioSpec{partitions: 2, players: 40, matches: 1, poisonEach: 10})
		first, rest := s.split(0.5)
		topic := kafkatest.Topic(t, brokers, s.partitions)
		group := kafkatest.Group(t)
		rcv := startReceiver(t)
		first.produce(t, brokers, topic)
		firstPoison := countPoison(t, first)
		r := startConsumer(t, testConfig(brokers, topic, group), exporter(t, rcv.Addr()))
		consumeAll(t, brokers, topic+".dlq", firstPoison)
		waitCommitted(t, brokers, group, topic, first.endOffsets(t), 30*time.Second)

		adm := kadm.NewClient(kafkatest.Client(t, brokers))
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		if resp, err := adm.DeleteTopic(ctx, topic+".dlq"); err != nil || resp.Err != nil {
			t.Fatalf("delete dead-letter topic: %v %v", err, resp.Err)
		}
		for ctx.Err() == nil { // until the deletion is visible
			if topics, err := adm.ListTopics(ctx, topic+".dlq"); err == nil && !topics.Has(topic+".dlq") {
				break
			}
		}
		rest.produce(t, brokers, topic) // offsets continue after first's
		waitSpans(t, rcv, len(s.spans), 60*time.Second)
		dead := consumeAll(t, brokers, topic+".dlq", s.poison-firstPoison)
		waitCommitted(t, brokers, group, topic, s.endOffsets(t), 30*time.Second)
		r.shutdown(t)
		for _, d := range dead {
			p, _ := strconv.Atoi(header(d, HeaderSourcePartition))
			off, _ := strconv.ParseInt(header(d, HeaderSourceOffset), 10, 64)
			if off < int64(len(first.records[int32(p)])) {
				t.Errorf("the recreated topic holds a copy of %d/%d, from before the deletion", p, off)
			}
		}
		topics, err := adm.ListTopics(ctx, topic+".dlq")
		if err != nil {
			t.Fatal(err)
		}
		if got := len(topics[topic+".dlq"].Partitions); got != int(s.partitions) {
			t.Errorf("dead-letter topic created again with %d partitions, want the source's %d", got, s.partitions)
		}
	})
}

func countPoison(t *testing.T, s *scenario) int {
	t.Helper()
	n := 0
	for _, recs := range s.records {
		for _, r := range recs {
			if isPoison(t, r) {
				n++
			}
		}
	}
	return n
}

// isPoison reports whether the consumer's decoder rejects r.
func isPoison(t *testing.T, r *kgo.Record) bool {
	t.Helper()
	dec, err := schema.NewDecoder(schema.DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	var ev schema.Event
	return dec.Decode(r.Key, r.Value, &ev) != nil
}

// TestDeadLetterTopicIsOnlyCreatedWhenMissing runs against a cluster that
// denies creating topics, as locked-down clusters do, where the dead-letter
// topic exists already: the consumer must start (a metadata request says the
// topic is there) and never ask to create it.
func TestDeadLetterTopicIsOnlyCreatedWhenMissing(t *testing.T) {
	cluster, brokers := controlledCluster(t)
	s := buildScenario(t, scenarioSpec{partitions: 1, players: 10, matches: 1, poisonEach: 8})
	topic := kafkatest.Topic(t, brokers, 1)
	topicWithConfigs(t, brokers, topic+".dlq", 1, nil)
	var creates atomic.Int32
	cluster.ControlKey(int16(kmsg.CreateTopics), func(req kmsg.Request) (kmsg.Response, error, bool) {
		cluster.KeepControl()
		creates.Add(1)
		resp := req.ResponseKind().(*kmsg.CreateTopicsResponse)
		for _, rt := range req.(*kmsg.CreateTopicsRequest).Topics {
			t := kmsg.NewCreateTopicsResponseTopic()
			t.Topic = rt.Topic
			t.ErrorCode = kerr.TopicAuthorizationFailed.Code
			resp.Topics = append(resp.Topics, t)
		}
		return resp, nil, true
	})
	s.produce(t, brokers, topic)
	rcv := startReceiver(t)
	group := kafkatest.Group(t)
	r := startConsumer(t, testConfig(brokers, topic, group), exporter(t, rcv.Addr()))
	consumeAll(t, brokers, topic+".dlq", s.poison)
	waitCommitted(t, brokers, group, topic, s.endOffsets(t), 30*time.Second)
	r.shutdown(t)
	if n := creates.Load(); n != 0 {
		t.Errorf("%d CreateTopics requests for a dead-letter topic that exists", n)
	}
}

// TestDeadLetterWriteFailuresHoldTheCommit makes the broker refuse every
// dead-letter write for a while (a non-retriable error, so the producer
// gives up on each attempt): the commit must not pass the first poison
// record while its copy is unwritten, and every copy must be written once
// the broker accepts them again.
func TestDeadLetterWriteFailuresHoldTheCommit(t *testing.T) {
	cluster, brokers := controlledCluster(t)
	s := buildScenario(t, scenarioSpec{partitions: 1, players: 20, matches: 1, poisonEach: 15})
	topic := kafkatest.Topic(t, brokers, 1)
	s.produce(t, brokers, topic) // before the broker starts refusing writes

	var refusing, refused atomic.Bool
	refusing.Store(true)
	cluster.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		cluster.KeepControl()
		if !refusing.Load() {
			return nil, nil, false
		}
		refused.Store(true)
		resp := req.ResponseKind().(*kmsg.ProduceResponse)
		for _, rt := range req.(*kmsg.ProduceRequest).Topics {
			t := kmsg.NewProduceResponseTopic()
			t.Topic, t.TopicID = rt.Topic, rt.TopicID
			for _, rp := range rt.Partitions {
				p := kmsg.NewProduceResponseTopicPartition()
				p.Partition = rp.Partition
				p.ErrorCode = kerr.InvalidRecord.Code
				t.Partitions = append(t.Partitions, p)
			}
			resp.Topics = append(resp.Topics, t)
		}
		return resp, nil, true
	})
	firstPoison := int64(-1)
	for off, r := range s.records[0] {
		if isPoison(t, r) {
			firstPoison = int64(off)
			break
		}
	}
	rcv := startReceiver(t)
	group := kafkatest.Group(t)
	logs := &lineCounter{}
	r := startConsumer(t, testConfig(brokers, topic, group), exporter(t, rcv.Addr()),
		WithLogger(slog.New(slog.NewTextHandler(logs, nil))))
	waitSpans(t, rcv, len(s.spans), 60*time.Second)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	for ctx.Err() == nil {
		// Every span is in; wait until the consumer has committed what it
		// may, and a few refusals happened since.
		if ok, why := r.c.Readiness(); !ok && refused.Load() {
			if why == "" {
				t.Error("not ready without a reason")
			}
			break
		}
	}
	if ctx.Err() != nil {
		t.Fatal("readiness never reported the failing dead-letter writes")
	}
	for p, off := range committedOffsets(t, brokers, group, topic) {
		if off > firstPoison {
			t.Errorf("partition %d committed to %d past poison record %d whose copy was refused", p, off, firstPoison)
		}
	}
	refusing.Store(false)
	consumeAll(t, brokers, topic+".dlq", s.poison)
	// Every write failed many times over, retried every 20-200 ms; the
	// failure is logged once per 10 s, not once per attempt.
	if n := logs.count("dead-letter write failed"); n == 0 || n > 2 {
		t.Errorf("%d log lines for the failing dead-letter writes, want 1 (rate-limited)", n)
	}
	waitCommitted(t, brokers, group, topic, s.endOffsets(t), 30*time.Second)
	if ok, why := r.c.Readiness(); !ok {
		t.Errorf("not ready after the dead-letter writes succeeded: %s", why)
	}
	r.shutdown(t)
}

// lineCounter is an io.Writer for a logger that counts lines by substring.
type lineCounter struct {
	mu    sync.Mutex
	lines []string
}

func (c *lineCounter) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lines = append(c.lines, strings.Split(strings.TrimRight(string(p), "\n"), "\n")...)
	return len(p), nil
}

func (c *lineCounter) count(sub string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, l := range c.lines {
		if strings.Contains(l, sub) {
			n++
		}
	}
	return n
}

// controlledCluster starts a kfake cluster of this test's own, for tests
// that make it answer some requests their way (kafkatest's backends do not
// expose theirs).
func controlledCluster(t *testing.T) (*kfake.Cluster, []string) {
	t.Helper()
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	return cluster, cluster.ListenAddrs()
}
