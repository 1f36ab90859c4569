package consumer

import (
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sessiontrace/sessiontrace/consumer/kafkatest"
)

// eventually polls cond until it holds or within passes, then fails t with
// what. Polling an external system (a broker, a group) has no event to wait
// on; the deadline bounds it.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, within)
		}
		select {
		case <-t.Context().Done():
			t.Fatal(t.Context().Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// assignedPartitions returns the partitions c has workers for.
func assignedPartitions(c *Consumer) map[int32]bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[int32]bool{}
	for p := range c.workers {
		out[p] = true
	}
	return out
}

// TestRebalanceCompletesDuringCollectorOutage fills every worker of a member
// while the collector is down, then starts a second member. Back-pressure
// must pause fetching, not block the poll loop: the rebalance completes
// within seconds (well inside the 20 s rebalance timeout), the first member
// stops the workers it gave up (a partition never has two owners), and once
// the collector is back every span arrives.
func TestRebalanceCompletesDuringCollectorOutage(t *testing.T) {
	eachPath(t, func(t *testing.T, brokers []string, path string) {
		s := buildScenario(t, scenarioSpec{partitions: 2, players: 120, matches: 2})
		topic := kafkatest.Topic(t, brokers, s.partitions)
		group := kafkatest.Group(t)
		rcv := startReceiver(t)
		rcv.Stop()
		s.produce(t, brokers, topic)
		watch := watchContract(t, brokers, group, topic, s, rcv)

		cfg := pathConfig(brokers, topic, group, path)
		cfg.ExportQueueSize, cfg.ExportBatchSize = 16, 8 // full after a few records
		cfg.MaxPollRecords = 4                           // many small batches: more than a worker's inbox holds
		cfg.RevokeTimeout = 2 * time.Second
		a := startConsumer(t, cfg, exporter(t, rcv.Addr()))
		eventually(t, 30*time.Second, "first member owns both partitions", func() bool { return len(assignedPartitions(a.c)) == 2 })
		waitForExportFailures(t, a.c)

		b := startConsumer(t, cfg, exporter(t, rcv.Addr()))
		select {
		case <-b.c.Ready():
		case <-time.After(12 * time.Second):
			t.Fatal("the second member got no partition within 12 s of joining: the rebalance waited for a blocked member")
		}
		pa, pb := assignedPartitions(a.c), assignedPartitions(b.c)
		for p := range pb {
			if pa[p] {
				t.Errorf("partition %d has a worker in both members", p)
			}
		}

		if err := rcv.Restart(); err != nil {
			t.Fatal(err)
		}
		waitSpans(t, rcv, len(s.spans), 60*time.Second)
		waitCommitted(t, brokers, group, topic, s.endOffsets(t), 30*time.Second)
		a.shutdown(t)
		b.shutdown(t)
		watch.finish(t)
		s.check(t, rcv.Spans())
	})
}

// TestTimedOutShutdownCommitsWhatWasAcknowledged shuts a consumer down while
// the collector is down, so the drain uses its whole deadline: the final
// commit has a deadline of its own and must still commit the acknowledged
// first half (periodic commits are off, so only that commit can). A second
// consumer then delivers the rest without re-emitting the first half.
func TestTimedOutShutdownCommitsWhatWasAcknowledged(t *testing.T) {
	t.Parallel() // minutes of waiting on brokers and children: run beside the other long ones
	eachPath(t, func(t *testing.T, brokers []string, path string) {
		s := buildScenario(t, scenarioSpec{partitions: 1, players: 30, matches: 1})
		first, rest := s.split(0.5)
		topic := kafkatest.Topic(t, brokers, 1)
		group := kafkatest.Group(t)
		rcv := startReceiver(t)
		first.produce(t, brokers, topic)

		cfg := pathConfig(brokers, topic, group, path)
		cfg.CommitInterval = time.Hour
		cfg.ShutdownTimeout = time.Second
		r := startConsumer(t, cfg, exporter(t, rcv.Addr()))
		waitSpans(t, rcv, len(first.spans), 60*time.Second)
		half := int64(len(first.records[0]))
		eventually(t, 30*time.Second, "first half processed and acknowledged", func() bool {
			r.c.mu.Lock()
			w := r.c.workers[0]
			r.c.mu.Unlock()
			if w == nil {
				return false
			}
			pos, ok := w.position()
			return ok && pos.Mark >= half
		})
		rcv.Stop()
		rest.produce(t, brokers, topic)
		waitForExportFailures(t, r.c)
		r.shutdown(t)

		marks := committedWithMarks(t, brokers, group, topic)
		if h, ok := marks[0]; !ok || h < half {
			t.Fatalf("after a timed-out shutdown the committed mark is %v (committed: %v), want at least %d: the acknowledged half was not committed",
				marks, committedOffsets(t, brokers, group, topic), half)
		}

		if err := rcv.Restart(); err != nil {
			t.Fatal(err)
		}
		cfg.CommitInterval = 100 * time.Millisecond
		r2 := startConsumer(t, cfg, exporter(t, rcv.Addr()))
		waitSpans(t, rcv, len(s.spans), 60*time.Second)
		waitCommitted(t, brokers, group, topic, s.endOffsets(t), 30*time.Second)
		r2.shutdown(t)
		if dups := s.check(t, rcv.Spans()); dups != 0 {
			t.Errorf("%d spans re-emitted although the first owner committed their mark", dups)
		}
	})
}

// TestReadinessFollowsAssignmentAndKafkaRefusals checks that readiness is
// a state, not a latch: ready while partitions are assigned and fetched,
// not ready (with the broker's error) while every fetch is refused for
// authorization, ready again when fetches succeed, and not ready once every
// partition was released.
func TestReadinessFollowsAssignmentAndKafkaRefusals(t *testing.T) {
	cluster, brokers := controlledCluster(t)
	s := buildScenario(t, scenarioSpec{partitions: 1, players: 10, matches: 1})
	first, rest := s.split(0.5)
	topic := kafkatest.Topic(t, brokers, 1)
	group := kafkatest.Group(t)
	rcv := startReceiver(t)
	first.produce(t, brokers, topic)
	r := startConsumer(t, testConfig(brokers, topic, group), exporter(t, rcv.Addr()))
	waitSpans(t, rcv, len(first.spans), 30*time.Second)
	if ok, why := r.c.Readiness(); !ok {
		t.Fatalf("not ready while consuming: %s", why)
	}

	var refusing atomic.Bool
	refusing.Store(true)
	cluster.ControlKey(int16(kmsg.Fetch), func(req kmsg.Request) (kmsg.Response, error, bool) {
		cluster.KeepControl()
		if !refusing.Load() {
			return nil, nil, false
		}
		resp := req.ResponseKind().(*kmsg.FetchResponse)
		for _, rt := range req.(*kmsg.FetchRequest).Topics {
			t := kmsg.NewFetchResponseTopic()
			t.Topic, t.TopicID = rt.Topic, rt.TopicID
			for _, rp := range rt.Partitions {
				p := kmsg.NewFetchResponseTopicPartition()
				p.Partition = rp.Partition
				p.ErrorCode = kerr.TopicAuthorizationFailed.Code
				t.Partitions = append(t.Partitions, p)
			}
			resp.Topics = append(resp.Topics, t)
		}
		return resp, nil, true
	})
	eventually(t, 30*time.Second, "not ready while fetches are refused", func() bool {
		ok, why := r.c.Readiness()
		return !ok && strings.Contains(why, kerr.TopicAuthorizationFailed.Message)
	})
	refusing.Store(false)
	rest.produce(t, brokers, topic)
	eventually(t, 30*time.Second, "ready again once fetches succeed", func() bool {
		ok, _ := r.c.Readiness()
		return ok
	})
	waitSpans(t, rcv, len(s.spans), 30*time.Second)
	r.shutdown(t)
	if ok, why := r.c.Readiness(); ok || why != "no partitions assigned" {
		t.Errorf("after shutdown: ready=%v %q, want not ready with no partitions assigned", ok, why)
	}
}

// TestInboxFlowControl drives one worker's inbox by hand: delivering past
// DefaultWorkerQueue batches asks the poll loop to wait, a take that makes
// room says so, a worker that drained meanwhile is never paused, and a paused
// one resumes its fetching only once it is down to half.
func TestInboxFlowControl(t *testing.T) {
	room := make(chan struct{}, 1)
	resumed, paused := 0, 0
	w := &worker{wake: make(chan struct{}, 1), room: room, resume: func() { resumed++ }}
	pause := func() { paused++ }
	batch := []*kgo.Record{{}}
	for i := 0; i < DefaultWorkerQueue; i++ {
		if w.deliver(batch) {
			t.Fatalf("batch %d of %d: inbox reported full", i+1, DefaultWorkerQueue)
		}
	}
	if !w.deliver(batch) {
		t.Fatalf("batch %d: inbox over DefaultWorkerQueue not reported full", DefaultWorkerQueue+1)
	}
	if _, ok := w.take(); !ok {
		t.Fatal("take from a full inbox found nothing")
	}
	select {
	case <-room:
	default:
		t.Fatal("a take back to DefaultWorkerQueue batches did not signal room")
	}
	w.pauseIfFull(pause)
	if paused != 0 || w.full() {
		t.Fatalf("a worker that made room was paused (%d pauses, full %v)", paused, w.full())
	}

	w.deliver(batch) // over the limit again, and stuck
	w.pauseIfFull(pause)
	w.pauseIfFull(pause)
	if paused != 1 || w.full() {
		t.Fatalf("a stuck worker: %d pauses (want 1), full %v (want false once paused)", paused, w.full())
	}
	for len(w.inbox) > DefaultWorkerQueue/2+1 {
		w.take()
	}
	if resumed != 0 {
		t.Fatalf("resumed with %d batches still queued", len(w.inbox))
	}
	w.take()
	if resumed != 1 {
		t.Fatalf("not resumed once down to %d batches (resumes %d)", len(w.inbox), resumed)
	}
}
