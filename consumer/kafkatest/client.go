package kafkatest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Client returns a franz-go client seeded with brokers and configured by
// opts. It is closed in t.Cleanup, so the caller must not close it; a test
// that closes a client mid-way (to leave a group, say) makes its own with
// kgo.NewClient.
func Client(t testing.TB, brokers []string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl := newClient(t, brokers, opts...)
	t.Cleanup(cl.Close)
	return cl
}

func newClient(t testing.TB, brokers []string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(brokers...)}, opts...)...)
	if err != nil {
		t.Fatalf("kafkatest: client for %s: %v", strings.Join(brokers, ","), err)
	}
	return cl
}

// produceTimeout bounds Produce: long enough for a real broker's first
// metadata and leader lookups on a loaded machine.
const produceTimeout = 30 * time.Second

// Produce writes recs synchronously and fails t if any write fails. Records
// must name their topic; records with a key go to the partition Kafka's Java
// client would pick for that key. On return each record's Partition and
// Offset say where it was written.
func Produce(t testing.TB, brokers []string, recs ...*kgo.Record) {
	t.Helper()
	cl := newClient(t, brokers)
	defer cl.Close()
	ctx, cancel := context.WithTimeout(t.Context(), produceTimeout)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("kafkatest: produce %d records: %v", len(recs), err)
	}
}

// Commit is a committed offset with the metadata string stored beside it.
type Commit struct {
	// Offset is the next offset the group will consume.
	Offset   int64
	Metadata string
}

// Committed returns the offsets and metadata that group has committed for
// topic, by partition; partitions without a commit are absent.
func Committed(t testing.TB, brokers []string, group, topic string) map[int32]Commit {
	t.Helper()
	cl := newClient(t, brokers)
	defer cl.Close()
	ctx, cancel := context.WithTimeout(t.Context(), adminTimeout)
	defer cancel()
	resps, err := kadm.NewClient(cl).FetchOffsets(ctx, group)
	if err != nil {
		t.Fatalf("kafkatest: fetch offsets of group %s: %v", group, err)
	}
	out := map[int32]Commit{}
	for p, r := range resps[topic] {
		if r.Err != nil {
			t.Fatalf("kafkatest: fetch offsets of group %s, %s[%d]: %v", group, topic, p, r.Err)
		}
		out[p] = Commit{Offset: r.At, Metadata: r.Metadata}
	}
	return out
}
