package consumer

import (
	"testing"
	"time"

	"github.com/sessiontrace/sessiontrace/consumer/kafkatest"
)

// TestStaticMemberGetsItsPartitionsBackAfterKill kills a consumer process
// with SIGKILL (it cannot leave the group) and restarts it with the same
// kafka.instance_id. With static membership the restarted process owns the
// partitions again at once; without it, they wait for the dead member's
// session timeout (30 s here). The bound, a third of that, tells the two
// apart; the time measured is logged.
func TestStaticMemberGetsItsPartitionsBackAfterKill(t *testing.T) {
	kafkatest.Each(t, func(t *testing.T, brokers []string) {
		s := buildScenario(t, scenarioSpec{partitions: 2, players: 40, matches: 1})
		topic := kafkatest.Topic(t, brokers, s.partitions)
		group := kafkatest.Group(t)
		rcv := startReceiver(t)
		first, second := s.split(0.5)
		first.produce(t, brokers, topic)
		env := []string{"CHILD_INSTANCE_ID=sessiontrace-0", "CHILD_SESSION_TIMEOUT=30s"}
		child := startChild(t, brokers, topic, group, ExportDirect, rcv.Addr(), env...)
		waitSpans(t, rcv, len(first.spans), 60*time.Second)
		waitCommitted(t, brokers, group, topic, first.endOffsets(t), 30*time.Second)
		// Open sessions pin the offset: the mark says everything is exported.
		waitMarks(t, brokers, group, topic, first)
		if err := child.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		_ = child.Wait()

		killed := time.Now()
		startChild(t, brokers, topic, group, ExportDirect, rcv.Addr(), env...)
		second.produce(t, brokers, topic)
		// The second half's spans can only come from the restarted process,
		// and only once it owns both partitions.
		waitSpans(t, rcv, len(s.spans), 10*time.Second)
		waitCommitted(t, brokers, group, topic, s.endOffsets(t), 10*time.Second)
		t.Logf("restarted static member caught up %v after the kill (session timeout 30s)", time.Since(killed).Round(10*time.Millisecond))
		if dups := s.check(t, rcv.Spans()); dups != 0 {
			t.Errorf("%d duplicates after a kill that followed a commit of everything", dups)
		}
	})
}
