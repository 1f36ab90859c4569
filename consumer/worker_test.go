package consumer

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"
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
	for _, path := range exportPaths {
		t.Run(path, func(t *testing.T) {
			rcv := startReceiver(t)
			out := exporter(t, rcv.Addr())
			cfg := testConfig([]string{"127.0.0.1:9"}, "lifecycle", "group")
			cfg.ExportPath = path
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
					w.process(t.Context(), &r)
				}
			}

			process(0, half)
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
			if pos.mark < int64(half) {
				t.Errorf("mark %d below the acknowledged first half (%d records)", pos.mark, half)
			}
			if pos.offset != 0 {
				t.Errorf("committable offset %d (mark %d) passes the first record of sessions whose last spans are unacknowledged", pos.offset, pos.mark)
			}
		})
	}
}
