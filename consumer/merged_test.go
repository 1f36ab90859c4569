package consumer

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sessiontrace/sessiontrace/consumer/kafkatest"
	"github.com/sessiontrace/sessiontrace/consumer/merge"
	"github.com/sessiontrace/sessiontrace/schema"
)

// serviceOf is the topic (0 auth, 1 matchmaking, 2 match) the service that
// writes an event of this type publishes to.
func serviceOf(dec *schema.Decoder, r *kgo.Record) int {
	var ev schema.Event
	if err := dec.DecodeRecord(&schema.Record{Key: r.Key, Value: r.Value}, &ev); err != nil {
		return 0 // poison goes where logins go
	}
	switch ev.Type {
	case schema.SessionLogin, schema.SessionDisconnect:
		return 0
	case schema.MatchmakingEnter, schema.MatchmakingComplete, schema.MatchmakingCancel:
		return 1
	}
	return 2
}

// multiProducer lays a scenario's records out as three services write
// them: each event on its service's topic, keyed by player ID on the
// scenario's partition (the topics are co-partitioned), each record sent up
// to jitter after its event happened (its Kafka timestamp is when it was
// sent) and appended in send order, so one player's events reach the
// topics out of order.
func multiProducer(t testing.TB, s *scenario, jitter time.Duration, seed uint64) [3]map[int32][]*kgo.Record {
	t.Helper()
	dec, err := schema.NewDecoder(schema.DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(seed, 3))
	var out [3]map[int32][]*kgo.Record
	for i := range out {
		out[i] = map[int32][]*kgo.Record{}
	}
	for p, recs := range s.records {
		for _, rec := range recs {
			c := *rec
			if jitter > 0 {
				c.Timestamp = c.Timestamp.Add(time.Duration(r.Int64N(int64(jitter))))
			}
			svc := serviceOf(dec, rec)
			out[svc][p] = append(out[svc][p], &c)
		}
	}
	for i := range out {
		for _, recs := range out[i] {
			slices.SortStableFunc(recs, func(a, b *kgo.Record) int { return a.Timestamp.Compare(b.Timestamp) })
		}
	}
	return out
}

// produceTopics writes each service's records to its topic, partition by
// partition, in order, one topic after the other.
func produceTopics(t testing.TB, brokers []string, topics []string, recs [3]map[int32][]*kgo.Record, partitions int32) {
	t.Helper()
	for i, topic := range topics {
		(&scenario{partitions: partitions, records: recs[i]}).produce(t, brokers, topic)
	}
}

// splitTopics splits every topic's records at the same moment: the first
// frac of the whole stream's send times. (Split per topic, the topics would
// stop at different times, as if a producer went down for minutes: its
// events would come later than any reorder window.)
func splitTopics(recs [3]map[int32][]*kgo.Record, frac float64) (first, rest [3]map[int32][]*kgo.Record) {
	var times []time.Time
	for i := range recs {
		for _, rs := range recs[i] {
			for _, r := range rs {
				times = append(times, r.Timestamp)
			}
		}
	}
	slices.SortFunc(times, time.Time.Compare)
	cut := times[int(float64(len(times))*frac)]
	for i := range recs {
		first[i], rest[i] = map[int32][]*kgo.Record{}, map[int32][]*kgo.Record{}
		for p, rs := range recs[i] {
			k, _ := slices.BinarySearchFunc(rs, cut, func(r *kgo.Record, at time.Time) int { return r.Timestamp.Compare(at) })
			first[i][p], rest[i][p] = rs[:k], rs[k:]
		}
	}
	return first, rest
}

// mergedTopics creates three co-partitioned topics.
func mergedTopics(t testing.TB, brokers []string, partitions int32) []string {
	t.Helper()
	return []string{kafkatest.Topic(t, brokers, partitions), kafkatest.Topic(t, brokers, partitions), kafkatest.Topic(t, brokers, partitions)}
}

func mergedConfig(brokers, topics []string, group string) Config {
	cfg := testConfig(brokers, "", group)
	cfg.Topics = topics
	// The tests write each topic's share of minutes of stream time within
	// milliseconds, one topic after another: a consumer at the live edge
	// must wait for the others as for a producer's backlog.
	cfg.MergeWait = 300 * time.Millisecond
	return cfg
}

// waitMergedCommits waits until every topic's commit carries merged
// metadata at each topic's end offset, and returns the metadata.
func waitMergedCommits(t *testing.T, brokers []string, group string, topics []string, recs [3]map[int32][]*kgo.Record, partitions int32) {
	t.Helper()
	for i, topic := range topics {
		want := map[int32]int64{}
		for p := range partitions {
			want[p] = int64(len(recs[i][p]))
		}
		waitCommitted(t, brokers, group, topic, want, 60*time.Second)
		for p, c := range kafkatest.Committed(t, brokers, group, topic) {
			if _, _, ok := parseMerged(c.Metadata); !ok {
				t.Errorf("%s/%d: commit %d without merged metadata: %q", topic, p, c.Offset, c.Metadata)
			}
		}
	}
}

// TestMergedTopics consumes three co-partitioned topics written by three
// services that each jitter their records by up to 500 ms: with the 2 s
// reorder window the spans are exactly those of the same sessions in
// order, with no out_of_phase dead letter, and every topic's commit ends
// at its end offset with the merged metadata.
func TestMergedTopics(t *testing.T) {
	t.Parallel()
	kafkatest.Each(t, func(t *testing.T, brokers []string) {
		s := buildScenario(t, scenarioSpec{partitions: 3, players: 60, matches: 2})
		recs := multiProducer(t, s, 500*time.Millisecond, 1)
		topics := mergedTopics(t, brokers, s.partitions)
		group := kafkatest.Group(t)
		rcv := startReceiver(t)
		produceTopics(t, brokers, topics, recs, s.partitions)

		r := startConsumer(t, mergedConfig(brokers, topics, group), exporter(t, rcv.Addr()))
		waitSpans(t, rcv, len(s.spans), 60*time.Second)
		waitMergedCommits(t, brokers, group, topics, recs, s.partitions)
		if ok, why := r.c.Readiness(); !ok {
			t.Errorf("not ready: %s", why)
		}
		r.shutdown(t)
		if dups := s.check(t, rcv.Spans()); dups != 0 {
			t.Errorf("%d duplicate spans from one consumer", dups)
		}
		checkNoDeadLetters(t, brokers, topics[0]+".dlq")
	})
}

// checkNoDeadLetters fails t if the dead-letter topic holds any record.
func checkNoDeadLetters(t *testing.T, brokers []string, topic string) {
	t.Helper()
	adm := kadm.NewClient(kafkatest.Client(t, brokers))
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatalf("dead-letter topic %s: %v", topic, err)
	}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err == nil && o.Offset > 0 {
			t.Errorf("dead-letter topic %s partition %d holds %d records", topic, o.Partition, o.Offset)
		}
	})
}

// TestMergedTopicsResume stops merged consumers mid-stream (killed with
// SIGKILL, or handing partitions over gracefully), with snapshots and
// without, and checks that every span arrives, a graceful move emits none
// twice, and a re-emitted span is the same span: the new owner replayed the
// merge order from the merge log.
func TestMergedTopicsResume(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		kill     bool
		snapshot time.Duration
	}{
		{"kill", true, 0},
		{"kill-snapshots", true, 200 * time.Millisecond},
		{"handover", false, 0},
		{"handover-snapshots", false, 200 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel() // each waits on brokers, children and session timeouts
			kafkatest.Each(t, func(t *testing.T, brokers []string) {
				s := buildScenario(t, scenarioSpec{partitions: 3, players: 90, openAtEnd: 6, matches: 3, stagger: 3 * time.Second})
				recs := multiProducer(t, s, 500*time.Millisecond, 2)
				topics := mergedTopics(t, brokers, s.partitions)
				group := kafkatest.Group(t)
				rcv := startReceiver(t)
				first, rest := splitTopics(recs, 0.5)
				produceTopics(t, brokers, topics, first, s.partitions)
				cfg := mergedConfig(brokers, topics, group)
				cfg.SnapshotInterval = tc.snapshot
				exp := exporter(t, rcv.Addr())

				var stop func()
				if tc.kill {
					child := startChild(t, brokers, "", group, ExportDirect, rcv.Addr(),
						"CHILD_TOPICS="+strings.Join(topics, ","), "CHILD_SNAPSHOT_INTERVAL="+tc.snapshot.String())
					stop = func() {
						if err := child.Process.Kill(); err != nil {
							t.Fatal(err)
						}
						_ = child.Wait()
					}
				} else {
					a := startConsumer(t, cfg, exp)
					<-a.c.Ready()
					stop = func() { a.shutdown(t) }
				}
				waitSpans(t, rcv, 1, 60*time.Second)
				produceTopics(t, brokers, topics, rest, s.partitions)
				waitSpans(t, rcv, rcv.Count()+1, 60*time.Second) // mid-stream
				var b *running
				if !tc.kill {
					// Partitions move while records flow.
					b = startConsumer(t, cfg, exp)
					<-b.c.Ready()
				}
				stop()
				if tc.kill {
					b = startConsumer(t, cfg, exp)
				}
				want := make([]string, 0, len(s.spans))
				for id := range s.spans {
					want = append(want, id.String())
				}
				waitEvery(t, rcv, want, 90*time.Second)
				b.shutdown(t)
				if tc.snapshot > 0 && !tc.kill {
					// The final commits name the snapshots the release wrote,
					// and sessiontrace snapshot reads them as for one topic.
					named := 0
					for p := range s.partitions {
						cs, err := ReadCommittedSnapshot(t.Context(), cfg, p)
						if err != nil {
							t.Errorf("partition %d: %v", p, err)
						}
						if cs.Ref != "" {
							named++
						}
					}
					if named == 0 {
						t.Errorf("no final commit names a snapshot")
					}
				}
				dups := s.check(t, rcv.Spans())
				t.Logf("%d spans expected, %d received, %d duplicates", len(s.spans), rcv.Count(), dups)
				if !tc.kill && dups != 0 {
					t.Errorf("%d duplicate spans across a graceful handover", dups)
				}
				checkNoDeadLetters(t, brokers, topics[0]+".dlq")
			})
		})
	}
}

// TestNotCoPartitioned checks that Run refuses topics whose partition
// counts differ, naming each count.
func TestNotCoPartitioned(t *testing.T) {
	kafkatest.Each(t, func(t *testing.T, brokers []string) {
		topics := []string{kafkatest.Topic(t, brokers, 3), kafkatest.Topic(t, brokers, 2)}
		c, err := New(mergedConfig(brokers, topics, kafkatest.Group(t)), nil, exporter(t, startReceiver(t).Addr()).options()...)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		err = c.Run(ctx)
		if !errors.Is(err, ErrNotCoPartitioned) {
			t.Fatalf("run: %v, want %v", err, ErrNotCoPartitioned)
		}
		for _, want := range []string{topics[0] + " has 3", topics[1] + " has 2"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not say %q", err, want)
			}
		}
	})
}

// TestMergeLogRefusedHoldsCommits makes the merge topic refuse most
// entries (max.message.bytes far below them): the partition stops merging,
// readiness says why, and no commit names a position the merge log does
// not hold; once the topic takes entries again, the same consumer writes
// the lost entries again and delivers every span, committing to the end.
func TestMergeLogRefusedHoldsCommits(t *testing.T) {
	t.Parallel()
	kafkatest.Each(t, func(t *testing.T, brokers []string) {
		s := buildScenario(t, scenarioSpec{partitions: 2, players: 40, matches: 2})
		recs := multiProducer(t, s, 200*time.Millisecond, 3)
		topics := mergedTopics(t, brokers, s.partitions)
		group := kafkatest.Group(t)
		cfg := mergedConfig(brokers, topics, group)
		adm := kadm.NewClient(kafkatest.Client(t, brokers))
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		small := "300"
		resp, err := adm.CreateTopic(ctx, s.partitions, 1, map[string]*string{"max.message.bytes": &small}, cfg.mergeTopic())
		if err == nil {
			err = resp.Err
		}
		if err != nil {
			t.Fatalf("create merge topic: %v", err)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_, _ = adm.DeleteTopic(ctx, cfg.mergeTopic())
		})
		rcv := startReceiver(t)
		produceTopics(t, brokers, topics, recs, s.partitions)
		r := startConsumer(t, cfg, exporter(t, rcv.Addr()))
		waitReadiness(t, r.c, "merge log")
		checkCommitsCovered(t, brokers, group, topics, cfg.mergeTopic())
		before := rcv.Count()

		big := "1048576"
		if _, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: "max.message.bytes", Value: &big}}, cfg.mergeTopic()); err != nil {
			t.Fatalf("alter merge topic: %v", err)
		}
		waitMergedCommits(t, brokers, group, topics, recs, s.partitions)
		if ok, why := r.c.Readiness(); !ok {
			t.Errorf("not ready after the merge topic took writes again: %s", why)
		}
		r.shutdown(t)
		checkCommitsCovered(t, brokers, group, topics, cfg.mergeTopic())
		if dups := s.check(t, rcv.Spans()); dups != 0 {
			t.Errorf("%d duplicate spans from one consumer", dups)
		}
		t.Logf("%d spans, %d while the merge topic refused writes", rcv.Count(), before)
	})
}

// waitReadiness waits until the consumer reports not ready for a reason
// containing why.
func waitReadiness(t *testing.T, c *Consumer, why string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if ok, msg := c.Readiness(); !ok && strings.Contains(msg, why) {
			return
		}
		select {
		case <-t.Context().Done():
			t.Fatal(t.Context().Err())
		case <-time.After(20 * time.Millisecond): // polling a status, bounded by the deadline
		}
	}
	ok, msg := c.Readiness()
	t.Fatalf("readiness %v %q, want not ready for %q", ok, msg, why)
}

// checkCommitsCovered checks that every merged commit names a position the
// merge log holds, up to its mark: a new owner can replay it.
func checkCommitsCovered(t *testing.T, brokers []string, group string, topics []string, mergeTopic string) {
	t.Helper()
	l := &mergeLog{topic: mergeTopic, brokers: brokers}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	adm := kadm.NewClient(kafkatest.Client(t, brokers))
	ends, err := adm.ListEndOffsets(ctx, mergeTopic)
	if err != nil {
		t.Fatal(err)
	}
	for _, topic := range topics {
		for p, c := range kafkatest.Committed(t, brokers, group, topic) {
			mm, meta, ok := parseMerged(c.Metadata)
			if !ok {
				t.Errorf("%s/%d: commit %d without merged metadata: %q", topic, p, c.Offset, c.Metadata)
				continue
			}
			end, _ := ends.Lookup(mergeTopic, p)
			logged, err := l.read(ctx, p, mm.log, end.Offset)
			if err != nil {
				t.Fatal(err)
			}
			plan, err := merge.NewPlan(logged, len(topics), min(meta.WindowStart, mm.position))
			if err != nil {
				t.Errorf("%s/%d: commit at position %d: %v", topic, p, mm.position, err)
				continue
			}
			if end := merge.Sum(plan.End); meta.Mark > end {
				t.Errorf("%s/%d: commit's mark %d beyond the merge log's %d", topic, p, meta.Mark, end)
			}
		}
	}
}

// TestMergeWaits checks when the merge holds a queued record for a topic
// with nothing queued: while that topic's fetch is behind its high
// watermark (not for a lone commit marker past the frontier), for
// mergeIdle at most, and for merge_wait for any topic.
func TestMergeWaits(t *testing.T) {
	at := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name  string
		hw    int64 // topic 1's high watermark; its frontier is 10
		wait  time.Duration
		after time.Duration // since the wait began
		holds bool
	}{
		{"caught up", 10, 0, 0, false},
		{"commit marker", 11, 0, 0, false},
		{"behind", 12, 0, 0, true},
		{"behind, idle long enough", 12, 0, mergeIdle, false},
		{"caught up, merge_wait", 10, time.Second, 900 * time.Millisecond, true},
		{"caught up, merge_wait over", 10, time.Second, time.Second, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newMerger(nil, []string{"a", "b"}, tc.wait)
			m.tbl = merge.NewTable([]int64{0, 10})
			m.hws[1] = tc.hw
			m.stash([][]*kgo.Record{{{Topic: "a", Offset: 0, Timestamp: at}}})
			if recs, _, _ := m.release(at); len(recs) != 0 && tc.holds {
				t.Fatalf("released %d records at once", len(recs))
			} else if len(recs) != 0 {
				return // not held at all
			}
			if !tc.holds && tc.after == 0 {
				t.Fatal("held a record with nothing to wait for")
			}
			recs, _, _ := m.release(at.Add(tc.after))
			if got := len(recs) == 0; got != tc.holds {
				t.Fatalf("after %v: held %v, want %v", tc.after, got, tc.holds)
			}
		})
	}
}
