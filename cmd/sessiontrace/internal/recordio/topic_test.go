package recordio

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sessiontrace/sessiontrace/consumer/kafkatest"
)

const (
	testPartitions = 3
	perPartition   = 10
)

// t0 is the timestamp of the first seeded record: an hour ago, so that a
// real broker neither rejects it as too far in the future nor deletes it as
// past retention. Whole seconds keep the time bounds exact.
var t0 = time.Now().Add(-time.Hour).Truncate(time.Second)

func TestMain(m *testing.M) { kafkatest.Main(m) }

// eachBroker runs fn against every broker backend of the shared harness (a
// real Kafka in CI, kfake everywhere) with a fresh three-partition topic.
func eachBroker(t *testing.T, fn func(t *testing.T, opts []kgo.Opt, topic string)) {
	t.Helper()
	kafkatest.Each(t, func(t *testing.T, brokers []string) {
		fn(t, []kgo.Opt{kgo.SeedBrokers(brokers...)}, kafkatest.Topic(t, brokers, testPartitions))
	})
}

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// seed writes perPartition records to every partition of topic: record i of
// partition p has key "p<p>", value "v<p>-<i>" and timestamp t0 + i seconds.
func seed(t *testing.T, opts []kgo.Opt, topic string) {
	t.Helper()
	cl, err := kgo.NewClient(append(opts, kgo.RecordPartitioner(kgo.ManualPartitioner()))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var recs []*kgo.Record
	for i := range perPartition {
		for p := range int32(testPartitions) {
			recs = append(recs, &kgo.Record{
				Topic: topic, Partition: p,
				Key:       fmt.Appendf(nil, "p%d", p),
				Value:     fmt.Appendf(nil, "v%d-%d", p, i),
				Timestamp: t0.Add(time.Duration(i) * time.Second),
			})
		}
	}
	if err := cl.ProduceSync(testCtx(t), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

func TestReadTopicBounds(t *testing.T) {
	eachBroker(t, testReadTopicBounds)
}

func testReadTopicBounds(t *testing.T, opts []kgo.Opt, topic string) {
	seed(t, opts, topic)
	sec := func(n int) Bound { return AtTime(t0.Add(time.Duration(n) * time.Second)) }
	tests := []struct {
		name     string
		from, to Bound
		want     []int64 // offsets read in every partition
	}{
		{"everything", Start(), End(), []int64{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}},
		{"zero bound is start", Bound{}, End(), []int64{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}},
		{"offsets", AtOffset(2), AtOffset(5), []int64{2, 3, 4}},
		{"times", sec(3), sec(7), []int64{3, 4, 5, 6}},
		{"time between records", AtTime(t0.Add(2500 * time.Millisecond)), sec(4), []int64{3}},
		{"time after the last record", sec(60), End(), nil},
		{"time to offset", sec(8), AtOffset(100), []int64{8, 9}},
		{"offset past the end clamps", AtOffset(8), AtOffset(1000), []int64{8, 9}},
		{"from end", End(), End(), nil},
		{"empty range", AtOffset(5), AtOffset(2), nil},
		{"to start", Start(), Start(), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := make(map[int32][]int64)
			err := ReadTopic(testCtx(t), opts, topic, tt.from, tt.to, func(r Record) error {
				want := fmt.Sprintf("v%d-%d", r.Partition, r.Offset)
				if r.Topic != topic || string(r.Key) != fmt.Sprintf("p%d", r.Partition) || string(r.Value) != want ||
					!r.Timestamp.Equal(t0.Add(time.Duration(r.Offset)*time.Second)) {
					t.Errorf("record %s[%d]@%d = key %q value %q ts %v", r.Topic, r.Partition, r.Offset, r.Key, r.Value, r.Timestamp)
				}
				got[r.Partition] = append(got[r.Partition], r.Offset)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			for p := range int32(testPartitions) {
				if !slices.Equal(got[p], tt.want) {
					t.Errorf("partition %d: offsets %v, want %v", p, got[p], tt.want)
				}
			}
		})
	}
}

// TestReadTopicRecordReplay writes a topic read through Writer and reads the
// file back: what `record` saves is what `replay` sees.
func TestReadTopicRecordReplay(t *testing.T) { eachBroker(t, testReadTopicRecordReplay) }

func testReadTopicRecordReplay(t *testing.T, opts []kgo.Opt, topic string) {
	seed(t, opts, topic)
	var want []Record
	var buf bytes.Buffer
	w := NewWriter(&buf)
	err := ReadTopic(testCtx(t), opts, topic, Start(), End(), func(r Record) error {
		want = append(want, r)
		return w.Write(r)
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	got := readAll(t, NewReader(&buf, "recorded"))
	if len(got) != testPartitions*perPartition || len(got) != len(want) {
		t.Fatalf("read back %d records, recorded %d, want %d", len(got), len(want), testPartitions*perPartition)
	}
	for i := range got {
		if !equalRecord(got[i], want[i]) {
			t.Errorf("record %d: read back %+v, recorded %+v", i, got[i], want[i])
		}
	}
}

// TestReadTopicTransactionMarker: a committed transaction leaves a control
// record as the partition's last offset; the read must still finish.
func TestReadTopicTransactionMarker(t *testing.T) { eachBroker(t, testReadTopicTransactionMarker) }

func testReadTopicTransactionMarker(t *testing.T, opts []kgo.Opt, topic string) {
	ctx := testCtx(t)
	cl, err := kgo.NewClient(append(opts, kgo.TransactionalID("tx-"+topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		r := &kgo.Record{Topic: topic, Partition: 0, Value: fmt.Appendf(nil, "v%d", i)}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	var got []string
	err = ReadTopic(ctx, opts, topic, Start(), End(), func(r Record) error {
		got = append(got, string(r.Value))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"v0", "v1", "v2"}; !slices.Equal(got, want) {
		t.Errorf("values %q, want %q", got, want)
	}
}

func TestReadTopicErrors(t *testing.T) { eachBroker(t, testReadTopicErrors) }

func testReadTopicErrors(t *testing.T, opts []kgo.Opt, topic string) {
	seed(t, opts, topic)
	errStop := errors.New("stop here")
	tests := []struct {
		name  string
		opts  []kgo.Opt
		topic string
		fn    func(Record) error
		check func(error) bool
	}{
		{"no topic", opts, "", nil, func(err error) bool { return err != nil && strings.Contains(err.Error(), "no topic") }},
		{"unknown topic", opts, "missing-" + topic, nil, func(err error) bool { return errors.Is(err, kerr.UnknownTopicOrPartition) }},
		{"callback error stops the read", opts, topic, func(Record) error { return errStop },
			func(err error) bool { return errors.Is(err, errStop) }},
		{"consumer group refused", append(slices.Clip(opts), kgo.ConsumerGroup("g")), topic, nil,
			func(err error) bool { return err != nil && strings.Contains(err.Error(), "consumer group") }},
		{"consumed topics refused", append(slices.Clip(opts), kgo.ConsumeTopics(topic)), topic, nil,
			func(err error) bool { return err != nil && strings.Contains(err.Error(), "already consume topics") }},
		{"consumed partitions refused", append(slices.Clip(opts), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset()}})), topic, nil,
			func(err error) bool { return err != nil && strings.Contains(err.Error(), "already consume partitions") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fn := tt.fn
			if fn == nil {
				fn = func(Record) error { return nil }
			}
			err := ReadTopic(testCtx(t), tt.opts, tt.topic, Start(), End(), fn)
			if !tt.check(err) {
				t.Fatalf("ReadTopic() error = %v", err)
			}
		})
	}
}

// TestReadTopicContext: cancelling the context stops the read at the next
// record, even in the middle of a fetched batch.
func TestReadTopicContext(t *testing.T) { eachBroker(t, testReadTopicContext) }

func testReadTopicContext(t *testing.T, opts []kgo.Opt, topic string) {
	seed(t, opts, topic)
	ctx, cancel := context.WithCancel(testCtx(t))
	n := 0
	err := ReadTopic(ctx, opts, topic, Start(), End(), func(Record) error {
		n++
		cancel()
		return nil
	})
	if !errors.Is(err, context.Canceled) || n != 1 {
		t.Fatalf("ReadTopic() = %v after %d records, want context.Canceled after 1", err, n)
	}
}

func TestParseBound(t *testing.T) {
	jan1 := time.Date(2025, 1, 1, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		in      string
		want    Bound
		wantErr bool
	}{
		{"start", Start(), false},
		{"end", End(), false},
		{"0", AtOffset(0), false},
		{"1200", AtOffset(1200), false},
		{"2025-01-01T10:00:00Z", AtTime(jan1), false},
		{"2025-01-01T11:00:00.5+01:00", AtTime(jan1.Add(500 * time.Millisecond)), false},
		{"-1", Bound{}, true},
		{"yesterday", Bound{}, true},
		{"", Bound{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseBound(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("ParseBound(%q) error = %v, want error %v", tt.in, err, tt.wantErr)
			}
			if tt.wantErr {
				return
			}
			if got.kind != tt.want.kind || got.offset != tt.want.offset || !got.time.Equal(tt.want.time) {
				t.Errorf("ParseBound(%q) = %v, want %v", tt.in, got, tt.want)
			}
			if again, err := ParseBound(got.String()); err != nil || again.String() != got.String() {
				t.Errorf("String() %q does not parse back: %v", got.String(), err)
			}
		})
	}
}
