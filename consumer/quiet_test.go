package consumer

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sessiontrace/sessiontrace/consumer/checkpoint"
	"github.com/sessiontrace/sessiontrace/consumer/kafkatest"
	"github.com/sessiontrace/sessiontrace/consumer/receiver"
	"github.com/sessiontrace/sessiontrace/schema"
)

// TestQuietPartitionFlushes: a partition goes quiet with the last events
// of a session held by the reorder window (its disconnect is the newest
// event, so stream time never passes it). The quiet flush applies them:
// the session's spans arrive and the commit names the flush, pinned below
// it by another player's open session. A new owner resuming there flushes
// at the same record: the second player's disconnect, produced later, ends
// its session, nothing is emitted twice, and the commit passes both.
func TestQuietPartitionFlushes(t *testing.T) {
	t.Parallel() // minutes of waiting on brokers and children: run beside the other long ones
	eachPath(t, func(t *testing.T, brokers []string, path string) {
		r := rand.New(rand.NewPCG(14, 2))
		evs := backend(r, 2)
		// Player 1's disconnect waits for the second owner; the rest is
		// one partition's records in ts order.
		last := len(evs) - 1
		for evs[last].ev.PlayerID != "player-1" || evs[last].ev.Type != schema.SessionDisconnect {
			last--
		}
		later := evs[last]
		first := append(append([]producedEvent(nil), evs[:last]...), evs[last+1:]...)
		end := int64(len(first))
		wantFirst, _ := runPartition(t, first, 2*time.Second)
		wantAll, _ := runPartition(t, append(first, later), 2*time.Second)

		topic := kafkatest.Topic(t, brokers, 1)
		group := kafkatest.Group(t)
		rcv := startReceiver(t)
		kafkatest.Produce(t, brokers, eventRecords(topic, first)...)

		cfg := pathConfig(brokers, topic, group, path)
		cfg.Lifecycle.ReorderWindow = 2 * time.Second
		a := startConsumer(t, cfg, exporter(t, rcv.Addr()))
		waitSpans(t, rcv, len(wantFirst), 60*time.Second)
		// Player 1's open session pins the commit at the cut before its
		// login, and the commit names the flush before end.
		login := pinnedAt(t, first, cfg)
		var c kafkatest.Commit
		eventually(t, 30*time.Second, "a commit naming the quiet flush", func() bool {
			c = kafkatest.Committed(t, brokers, group, topic)[0]
			m, ok := checkpoint.Parse(c.Metadata, c.Offset)
			return ok && len(m.Flushes) == 1 && m.Flushes[0] == end && m.Mark == end
		})
		if login < 0 || c.Offset != login {
			t.Fatalf("committed %d (%q), want %d: player 1's session is open", c.Offset, c.Metadata, login)
		}
		a.shutdown(t)

		kafkatest.Produce(t, brokers, eventRecords(topic, []producedEvent{later})...)
		b := startConsumer(t, cfg, exporter(t, rcv.Addr()))
		waitSpans(t, rcv, len(wantAll), 60*time.Second)
		waitCommitted(t, brokers, group, topic, map[int32]int64{0: end + 1}, 30*time.Second)
		b.shutdown(t)
		if n := rcv.Count(); n != len(wantAll) {
			t.Fatalf("received %d spans, want %d", n, len(wantAll))
		}
		assertNoDuplicateSpans(t, rcv.Spans())
	})
}

// pinnedAt is where the pure partition logic positions the lowest open
// session after evs and a flush, -1 when none is open.
func pinnedAt(t *testing.T, evs []producedEvent, cfg Config) int64 {
	t.Helper()
	p, err := newPartition[int](cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range evs {
		_, _ = p.process(&schema.Record{Key: []byte(e.ev.PlayerID), Value: schema.AppendJSON(nil, &e.ev)}, time.Unix(0, e.ev.TS), int64(i), 0, nil, nil)
	}
	p.flush(int64(len(evs)), nil, nil)
	return p.low()
}

// eventRecords are evs as records of topic, keyed by player, with the
// event's time as the record's timestamp.
func eventRecords(topic string, evs []producedEvent) []*kgo.Record {
	out := make([]*kgo.Record, len(evs))
	for i, e := range evs {
		out[i] = &kgo.Record{Topic: topic, Key: []byte(e.ev.PlayerID), Value: schema.AppendJSON(nil, &e.ev), Timestamp: time.Unix(0, e.ev.TS)}
	}
	return out
}

// assertNoDuplicateSpans fails t when a span ID was received twice.
func assertNoDuplicateSpans(t *testing.T, spans []receiver.Span) {
	t.Helper()
	seen := map[string]bool{}
	for _, sp := range spans {
		id := fmt.Sprint(sp.SpanID)
		if seen[id] {
			t.Fatalf("span %s received twice", id)
		}
		seen[id] = true
	}
}
