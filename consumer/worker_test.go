package consumer

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestCommitNeverPassesASessionWithUnacknowledgedSpans runs one partition's
// worker by hand on each export path: the first half of the records is
// exported and acknowledged, then the collector goes down for the second
// half, in which every session but the open ones ends. The committable
// offset must stay at the first record of the oldest such session (offset
// 0: the sessions overlap the whole stream), because the next owner must
// rebuild them to emit their unacknowledged spans; the sessions open at the
// end started later and would let the commit pass their logins.
func TestCommitNeverPassesASessionWithUnacknowledgedSpans(t *testing.T) {
	s := buildScenario(t, scenarioSpec{partitions: 1, players: 30, openAtEnd: 3, matches: 2})
	recs := s.records[0]
	half := len(recs) / 2
	for _, window := range []time.Duration{0, 2 * time.Second} {
		for _, path := range exportPaths {
			t.Run(fmt.Sprintf("%s/window=%s", path, window), func(t *testing.T) {
				testCommitNeverPasses(t, recs, half, path, window)
			})
		}
	}
}

func testCommitNeverPasses(t *testing.T, recs []*kgo.Record, half int, path string, window time.Duration) {
	rcv := startReceiver(t)
	out := exporter(t, rcv.Addr())
	cfg := testConfig([]string{"127.0.0.1:9"}, "lifecycle", "group")
	cfg.ExportPath = path
	cfg.Lifecycle.ReorderWindow = window
	cfg.ExportQueueSize = DefaultExportQueueSize // the second half must fit while nothing is accepted
	p := &pipeline{cfg: cfg, exporter: out.exp, client: out.client, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	m, err := newMetrics(nil)
	if err != nil {
		t.Fatal(err)
	}
	p.metrics, p.exportLog = m, newRateLog(p.log, time.Minute)
	w, err := newWorker(p, "lifecycle", 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.lane.Close(context.Background()) })
	w.emitCtx = context.Background()
	process := func(from, to int) {
		for off := from; off < to; off++ {
			r := *recs[off]
			r.Offset = int64(off)
			w.process(t.Context(), &r, r.Offset)
		}
	}

	process(0, half)
	// With the reorder window the first half's newest events are
	// still held, so their spans come in the second half: what the
	// lane acknowledged is everything below the cut there (half
	// itself without the window).
	acked := w.part.point(int64(half)).Offset
	if cfg.Lifecycle.ReorderWindow == 0 && acked != int64(half) {
		t.Fatalf("cut %d after the first half without a window, want %d", acked, half)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := w.lane.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	rcv.Stop()
	process(half, len(recs))

	pos, ok := w.position()
	if !ok {
		t.Fatal("no position after processing")
	}
	if pos.Mark < acked {
		t.Errorf("mark %d below the acknowledged first half (%d of %d records)", pos.Mark, acked, half)
	}
	if pos.Offset != 0 {
		t.Errorf("committable offset %d (mark %d) passes the first record of sessions whose last spans are unacknowledged", pos.Offset, pos.Mark)
	}
}

func TestSkewReason(t *testing.T) {
	at := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name         string
		ts           time.Time
		record       time.Time
		future, past time.Duration
		want         string
	}{
		{"same time", at, at, time.Minute, time.Hour, ""},
		{"ahead within the bound", at.Add(time.Minute), at, time.Minute, time.Hour, ""},
		{"ahead past the bound", at.Add(time.Minute + 1), at, time.Minute, time.Hour, ReasonFutureTimestamp},
		{"2262", time.Date(2262, 4, 1, 0, 0, 0, 0, time.UTC), at, time.Minute, time.Hour, ReasonFutureTimestamp},
		{"behind within the bound", at.Add(-time.Hour), at, time.Minute, time.Hour, ""},
		{"behind past the bound", at.Add(-time.Hour - 1), at, time.Minute, time.Hour, ReasonPastTimestamp},
		{"1678", time.Unix(0, math.MinInt64), at, time.Minute, time.Hour, ReasonPastTimestamp},
		{"future bound disabled", at.Add(1000 * time.Hour), at, 0, time.Hour, ""},
		{"past bound disabled", at.Add(-1000 * time.Hour), at, time.Minute, 0, ""},
		{"no record timestamp", at.Add(1000 * time.Hour), time.Time{}, time.Minute, time.Hour, ""},
		{"Kafka's -1", at.Add(1000 * time.Hour), time.UnixMilli(-1), time.Minute, time.Hour, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := skewReason(tt.ts.UnixNano(), tt.record, tt.future, tt.past); got != tt.want {
				t.Errorf("skewReason(%v, %v, %v, %v) = %q, want %q", tt.ts, tt.record, tt.future, tt.past, got, tt.want)
			}
		})
	}
}
