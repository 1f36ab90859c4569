package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sessiontrace/sessiontrace/consumer/kafkatest"
	"github.com/sessiontrace/sessiontrace/schema"
)

// TestRekeyBinaryKilled kills the rekey binary with SIGKILL mid-stream and
// starts it again with the same --instance, whose transactional ID fences
// the dead process's open transaction: a read_committed reader of the
// output sees every event exactly once.
func TestRekeyBinaryKilled(t *testing.T) {
	kafkatest.Each(t, func(t *testing.T, brokers []string) {
		src, out := kafkatest.Topic(t, brokers, 3), kafkatest.Topic(t, brokers, 3)
		group := kafkatest.Group(t)
		const total = 4000
		var recs []*kgo.Record
		for i := range total {
			ev := schema.Event{Type: schema.SessionLogin, EventID: fmt.Sprintf("ev-%d", i), PlayerID: fmt.Sprintf("player-%d", i%41),
				TS:         time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Millisecond).UnixNano(),
				AuthMethod: "password", ClientVersion: "1.4.2", Platform: "pc"}
			recs = append(recs, &kgo.Record{Topic: src, Value: schema.AppendJSON(nil, &ev)})
		}
		kafkatest.Produce(t, brokers, recs[:total/2]...)
		ctx, cancel := context.WithTimeout(t.Context(), cliTimeout)
		defer cancel()
		env := []string{
			"SESSIONTRACE_REKEY_GROUP=" + group, "SESSIONTRACE_REKEY_TRANSACTIONAL_ID_PREFIX=" + group,
			"SESSIONTRACE_REKEY_MAX_POLL_RECORDS=20", "SESSIONTRACE_METRICS_OTLP=false",
			"SESSIONTRACE_KAFKA_SESSION_TIMEOUT=6s", "SESSIONTRACE_KAFKA_HEARTBEAT_INTERVAL=500ms",
		}
		args := []string{"rekey", "--brokers", strings.Join(brokers, ","), "--source-topics", src, "--output-topic", out,
			"--instance", "killed", "--http-address", "127.0.0.1:0", "--log-format", "json"}
		first := startServing(ctx, t, env, args...)
		adm := kadm.NewClient(kafkatest.Client(t, brokers))
		waitCommitted(ctx, t, adm, group, src, total/6)
		kafkatest.Produce(t, brokers, recs[total/2:]...)
		if err := first.cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		<-first.exited
		second := startServing(ctx, t, env, args...)
		waitCommitted(ctx, t, adm, group, src, total)

		seen := map[string]int{}
		var ev schema.Event
		dec, err := schema.NewDecoder(schema.DefaultLimits())
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range readCommittedTo(ctx, t, brokers, out, 3) {
			if err := dec.Decode(r.Key, r.Value, &ev); err != nil {
				t.Fatalf("output record at %d/%d: %v", r.Partition, r.Offset, err)
			}
			seen[ev.EventID]++
		}
		dups, missing := 0, 0
		for i := range total {
			switch n := seen[fmt.Sprintf("ev-%d", i)]; {
			case n == 0:
				missing++
			case n > 1:
				dups += n - 1
			}
		}
		if dups != 0 || missing != 0 {
			t.Errorf("after a kill -9 and a restart: %d duplicate and %d missing events of %d", dups, missing, total)
		}
		second.stop(ctx, t)
	})
}

// waitCommitted polls until group has committed at least n records of
// topic over all partitions.
func waitCommitted(ctx context.Context, t *testing.T, adm *kadm.Client, group, topic string, n int64) {
	t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		var sum int64
		// Before the first commit kfake does not know the group yet.
		if offs, err := adm.FetchOffsets(ctx, group); err == nil {
			offs.Each(func(o kadm.OffsetResponse) {
				if o.Topic == topic && o.Err == nil {
					sum += o.At
				}
			})
		}
		if sum >= n {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("group %s committed %d records of %s, want %d", group, sum, topic, n)
		case <-tick.C:
		}
	}
}

// readCommittedTo reads topic with read_committed isolation up to a fence
// record it appends to every partition once the writers are done: the fence
// is returned only after every transaction before it ended, so nothing
// committed is missed and no wait is guessed.
func readCommittedTo(ctx context.Context, t *testing.T, brokers []string, topic string, partitions int32) []*kgo.Record {
	t.Helper()
	const fence = "test-fence"
	pcl := kafkatest.Client(t, brokers, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	for p := range partitions {
		if err := pcl.ProduceSync(ctx, &kgo.Record{Topic: topic, Partition: p, Value: []byte(fence)}).FirstErr(); err != nil {
			t.Fatalf("produce fence: %v", err)
		}
	}
	cl := kafkatest.Client(t, brokers, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	var out []*kgo.Record
	fenced := map[int32]bool{}
	for len(fenced) < int(partitions) {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %s: fences of %d of %d partitions", topic, len(fenced), partitions)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if string(r.Value) == fence {
				fenced[r.Partition] = true
				return
			}
			out = append(out, r)
		})
	}
	return out
}
