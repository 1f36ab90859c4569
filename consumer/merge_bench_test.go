package consumer

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sessiontrace/sessiontrace/consumer/merge"
)

// BenchmarkMergeRelease is the merge of one worker's inbox for three
// co-partitioned topics, per record: queueing the fetched batches, the
// k-way merge by record timestamp and the table's bookkeeping, without
// Kafka or the state machine (the single topic skips all of it).
func BenchmarkMergeRelease(b *testing.B) {
	const k, batch = 3, 500
	topics := []string{"auth", "matchmaking", "match"}
	base := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	batches := make([][]*kgo.Record, k)
	for t := range batches {
		for i := range batch {
			batches[t] = append(batches[t], &kgo.Record{Topic: topics[t], Offset: int64(i),
				Timestamp: base.Add(time.Duration(i*k+t) * time.Millisecond)})
		}
	}
	m := newMerger(nil, topics, 0)
	m.tbl = merge.NewTable(make([]int64, k))
	now := time.Now()
	b.ReportAllocs()
	b.ResetTimer()
	for n := 0; n < b.N; n += k * batch {
		// The same records again, as the next offsets of each topic.
		for t := range batches {
			for _, r := range batches[t] {
				r.Offset = m.tbl.Frontier()[t] + r.Offset%batch
			}
		}
		m.stash(batches)
		m.release(now)
		_, idx := m.tbl.Seal(&m.pend)
		m.tbl.Stored(idx, int64(idx))
		m.tbl.Trim(m.tbl.Position())
	}
}
