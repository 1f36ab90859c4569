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
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

const (
	testPartitions = 3
	perPartition   = 10
)

var t0 = time.Date(2025, 1, 1, 10, 0, 0, 0, time.UTC)

// newCluster starts an in-process kfake cluster with the given topics of
// three partitions each, closed when the test ends, and returns the client
// options that reach it.
func newCluster(t *testing.T, topics ...string) []kgo.Opt {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(testPartitions, topics...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return []kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...)}
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
	opts := newCluster(t, "t")
	seed(t, opts, "t")
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
			err := ReadTopic(testCtx(t), opts, "t", tt.from, tt.to, func(r Record) error {
				want := fmt.Sprintf("v%d-%d", r.Partition, r.Offset)
				if r.Topic != "t" || string(r.Key) != fmt.Sprintf("p%d", r.Partition) || string(r.Value) != want ||
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
func TestReadTopicRecordReplay(t *testing.T) {
	opts := newCluster(t, "t")
	seed(t, opts, "t")
	var want []Record
	var buf bytes.Buffer
	w := NewWriter(&buf)
	err := ReadTopic(testCtx(t), opts, "t", Start(), End(), func(r Record) error {
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
func TestReadTopicTransactionMarker(t *testing.T) {
	opts := newCluster(t, "txn")
	ctx := testCtx(t)
	cl, err := kgo.NewClient(append(opts, kgo.TransactionalID("tx-"+t.Name()),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		r := &kgo.Record{Topic: "txn", Partition: 0, Value: fmt.Appendf(nil, "v%d", i)}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	var got []string
	err = ReadTopic(ctx, opts, "txn", Start(), End(), func(r Record) error {
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

func TestReadTopicErrors(t *testing.T) {
	opts := newCluster(t, "t")
	seed(t, opts, "t")
	errStop := errors.New("stop here")
	tests := []struct {
		name  string
		opts  []kgo.Opt
		topic string
		fn    func(Record) error
		check func(error) bool
	}{
		{"no topic", opts, "", nil, func(err error) bool { return err != nil && strings.Contains(err.Error(), "no topic") }},
		{"unknown topic", opts, "missing", nil, func(err error) bool { return errors.Is(err, kerr.UnknownTopicOrPartition) }},
		{"callback error stops the read", opts, "t", func(Record) error { return errStop },
			func(err error) bool { return errors.Is(err, errStop) }},
		{"consumer group refused", append(slices.Clip(opts), kgo.ConsumerGroup("g")), "t", nil,
			func(err error) bool { return err != nil && strings.Contains(err.Error(), "consumer group") }},
		{"consumed topics refused", append(slices.Clip(opts), kgo.ConsumeTopics("t")), "t", nil,
			func(err error) bool { return err != nil && strings.Contains(err.Error(), "already consume topics") }},
		{"consumed partitions refused", append(slices.Clip(opts), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"t": {0: kgo.NewOffset()}})), "t", nil,
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
func TestReadTopicContext(t *testing.T) {
	opts := newCluster(t, "t")
	seed(t, opts, "t")
	ctx, cancel := context.WithCancel(testCtx(t))
	n := 0
	err := ReadTopic(ctx, opts, "t", Start(), End(), func(Record) error {
		n++
		cancel()
		return nil
	})
	if !errors.Is(err, context.Canceled) || n != 1 {
		t.Fatalf("ReadTopic() = %v after %d records, want context.Canceled after 1", err, n)
	}
}

func TestParseBound(t *testing.T) {
	tests := []struct {
		in      string
		want    Bound
		wantErr bool
	}{
		{"start", Start(), false},
		{"end", End(), false},
		{"0", AtOffset(0), false},
		{"1200", AtOffset(1200), false},
		{"2025-01-01T10:00:00Z", AtTime(t0), false},
		{"2025-01-01T11:00:00.5+01:00", AtTime(t0.Add(500 * time.Millisecond)), false},
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
