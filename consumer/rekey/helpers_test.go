package rekey

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sessiontrace/sessiontrace/consumer"
	"github.com/sessiontrace/sessiontrace/consumer/kafkatest"
	"github.com/sessiontrace/sessiontrace/schema"
)

// childEnv switches the test binary into a rekey process for the kill test:
// the parent kills it with SIGKILL, which no in-process test can do.
const childEnv = "SESSIONTRACE_REKEY_TEST_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		os.Exit(runChild())
	}
	kafkatest.Main(m)
}

// runChild runs one rekey member configured by CHILD_* variables until the
// parent kills it (its deadline only stops an orphan).
func runChild() int {
	var cfg Config
	if err := json.Unmarshal([]byte(os.Getenv("CHILD_CONFIG")), &cfg); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	r, err := New(cfg, WithKafkaOptions(kgo.SessionTimeout(6*time.Second), kgo.HeartbeatInterval(500*time.Millisecond)))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := r.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// testEvent is a valid v1 event with a unique event ID: the field the
// exactly-once checks count by.
func testEvent(i int) (player string, value []byte) {
	player = fmt.Sprintf("player-%03d", i%37)
	ev := schema.Event{
		Type: schema.SessionLogin, EventID: "ev-" + strconv.Itoa(i), PlayerID: player,
		TS:         time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Millisecond).UnixNano(),
		AuthMethod: "password", ClientVersion: "1.4.2", Platform: "pc",
	}
	return player, schema.AppendJSON(nil, &ev)
}

// source is what a test wrote to the source topic.
type source struct {
	topic  string
	events map[string]*kgo.Record // by event ID
	poison map[string]*kgo.Record // by value
	end    map[int32]int64        // per partition, one past the last offset written
	all    []*kgo.Record          // every record built
}

func newSource(topic string) *source {
	return &source{topic: topic, events: map[string]*kgo.Record{}, poison: map[string]*kgo.Record{}, end: map[int32]int64{}}
}

// produce writes events [from, to) keyed by a "server" (or unkeyed when i
// is a multiple of 3), with a header, and every tenth index also a record
// whose player cannot be found.
func (s *source) produce(t *testing.T, brokers []string, from, to int) {
	t.Helper()
	recs := s.build(from, to)
	kafkatest.Produce(t, brokers, recs...)
	s.written(recs)
}

// flow produces events [from, to) in batches of 20 on its own goroutine,
// so that records keep arriving while members come and go; the returned
// wait blocks until all are written and fails t if a write failed.
func (s *source) flow(t *testing.T, brokers []string, from, to int) (wait func()) {
	t.Helper()
	cl := kafkatest.Client(t, brokers)
	done := make(chan error, 1)
	batches := make(chan []*kgo.Record, (to-from)/20+1)
	for i := from; i < to; i += 20 {
		batches <- s.build(i, min(i+20, to))
	}
	close(batches)
	go func() {
		for recs := range batches {
			if err := cl.ProduceSync(t.Context(), recs...).FirstErr(); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	return func() {
		t.Helper()
		if err := <-done; err != nil {
			t.Fatalf("produce: %v", err)
		}
		s.writtenAll()
	}
}

// build makes the records of events [from, to) and remembers them.
func (s *source) build(from, to int) []*kgo.Record {
	var recs []*kgo.Record
	for i := from; i < to; i++ {
		_, v := testEvent(i)
		r := &kgo.Record{Topic: s.topic, Value: v, Headers: []kgo.RecordHeader{{Key: "producer", Value: []byte("test")}},
			Timestamp: time.UnixMilli(1_700_000_000_000 + int64(i))}
		if i%3 != 0 {
			r.Key = []byte("server-" + strconv.Itoa(i%5))
		}
		s.events["ev-"+strconv.Itoa(i)] = r
		recs = append(recs, r)
		if i%10 == 0 {
			p := &kgo.Record{Topic: s.topic, Key: []byte("server-x"), Value: []byte("not json " + strconv.Itoa(i))}
			s.poison[string(p.Value)] = p
			recs = append(recs, p)
		}
	}
	s.all = append(s.all, recs...)
	return recs
}

// written records where recs landed.
func (s *source) written(recs []*kgo.Record) {
	for _, r := range recs {
		s.end[r.Partition] = max(s.end[r.Partition], r.Offset+1)
	}
}

// writtenAll records where every record built so far landed.
func (s *source) writtenAll() { s.written(s.all) }

// waitCommitted polls until group has committed s.end on every partition.
func (s *source) waitCommitted(t *testing.T, brokers []string, group string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		got := kafkatest.Committed(t, brokers, group, s.topic)
		done := true
		for p, end := range s.end {
			if got[p].Offset < end {
				done = false
			}
		}
		if done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("group %s committed %v on %s, want %v", group, got, s.topic, s.end)
		}
		select {
		case <-t.Context().Done():
			t.Fatal(t.Context().Err())
		case <-tick.C:
		}
	}
}

const fenceValue = "rekey-test-fence"

// readAll returns every record of topic that a reader with isolation sees,
// excluding fences: after every transaction that matters has ended it
// appends a fence to each partition and reads until each fence arrives, so
// nothing written before is missed and no wait is guessed.
func readAll(t *testing.T, brokers []string, topic string, partitions int32, isolation kgo.IsolationLevel) []*kgo.Record {
	t.Helper()
	var fences []*kgo.Record
	for p := range partitions {
		fences = append(fences, &kgo.Record{Topic: topic, Partition: p, Value: []byte(fenceValue)})
	}
	pcl := kafkatest.Client(t, brokers, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	if err := pcl.ProduceSync(ctx, fences...).FirstErr(); err != nil {
		t.Fatalf("produce fences: %v", err)
	}
	cl := kafkatest.Client(t, brokers, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(isolation))
	var out []*kgo.Record
	seen := map[int32]bool{}
	for len(seen) < int(partitions) {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("read %s: fences of %d of %d partitions after %d records: %v", topic, len(seen), partitions, len(out), err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if string(r.Value) == fenceValue {
				seen[r.Partition] = true
				return
			}
			out = append(out, r)
		})
	}
	return out
}

// checkExactlyOnce fails t unless out holds every event of s once, keyed by
// its player, with value, headers and timestamp unchanged, and dlq every
// poison record once with its reason; it returns the duplicates.
func (s *source) checkExactlyOnce(t *testing.T, out, dlq []*kgo.Record) {
	t.Helper()
	if dups := s.check(t, out); dups != 0 {
		t.Errorf("%d duplicate records in the output", dups)
	}
	got := map[string]int{}
	for _, r := range dlq {
		got[string(r.Value)]++
		if h := header(r, consumer.HeaderReason); h != string(schema.ReasonMalformed) {
			t.Errorf("dead letter %q has reason %q, want %q", r.Value, h, schema.ReasonMalformed)
		}
		if h := header(r, consumer.HeaderSourceTopic); h != s.topic {
			t.Errorf("dead letter %q has source topic %q", r.Value, h)
		}
	}
	for v := range s.poison {
		if got[v] != 1 {
			t.Errorf("poison record %q is in the dead-letter topic %d times, want once", v, got[v])
		}
	}
	if len(dlq) != len(s.poison) {
		t.Errorf("%d dead letters, want %d", len(dlq), len(s.poison))
	}
}

// check compares out with the events and returns how many records repeat
// an event already seen; missing or altered events fail t.
func (s *source) check(t *testing.T, out []*kgo.Record) (dups int) {
	t.Helper()
	seen := map[string]int{}
	var ev schema.Event
	dec, err := schema.NewDecoder(schema.DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range out {
		if err := dec.Decode(r.Key, r.Value, &ev); err != nil {
			t.Errorf("output record at %d/%d: %v", r.Partition, r.Offset, err)
			continue
		}
		seen[ev.EventID]++
		if seen[ev.EventID] > 1 {
			dups++
			continue
		}
		src, ok := s.events[ev.EventID]
		if !ok {
			t.Errorf("output has an event never produced: %s", ev.EventID)
			continue
		}
		if string(src.Value) != string(r.Value) || !src.Timestamp.Equal(r.Timestamp) ||
			!slices.EqualFunc(src.Headers, r.Headers, func(a, b kgo.RecordHeader) bool { return a.Key == b.Key && string(a.Value) == string(b.Value) }) {
			t.Errorf("event %s changed on the way: value %q ts %v headers %v, want %q %v %v",
				ev.EventID, r.Value, r.Timestamp, r.Headers, src.Value, src.Timestamp, src.Headers)
		}
	}
	for id := range s.events {
		if seen[id] == 0 {
			t.Errorf("event %s is missing from the output", id)
		}
	}
	return dups
}

func header(r *kgo.Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}
