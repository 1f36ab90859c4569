package consumer

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/sessiontrace/sessiontrace/consumer/export"
	"github.com/sessiontrace/sessiontrace/lifecycle"
	"github.com/sessiontrace/sessiontrace/schema"
)

// pendingRecord is a processed record whose side effects (spans, a
// dead-letter write) are not all acknowledged yet.
type pendingRecord struct {
	offset  int64
	spanEnd int64         // the lane's emitted count after this record's spans
	dlq     *atomic.Int32 // outstanding dead-letter writes, nil when none
	// low is the lowest first offset of the sessions open just before this
	// record, -1 when none. While this record is the first unacknowledged
	// one, the commit must not pass it: a session that started below the
	// record and ends at or after it has spans the next owner must emit
	// again, and it can rebuild the session only from its first record.
	low int64
}

// worker owns one partition: its decoder, its session state machine, its
// export lane and the positions the commit is computed from. Records are
// processed only on the worker's goroutine; positions are shared with the
// committer under mu.
type worker struct {
	topic     string
	partition int32
	c         *pipeline

	dec   *schema.Decoder
	m     *lifecycle.Machine
	lane  export.Lane
	ev    schema.Event
	spans []lifecycle.Span
	logs  *rateLog
	attrs metric.MeasurementOption // topic and partition, built once
	// emitCtx is run's context without its cancellation, for the lane.
	emitCtx context.Context

	// exportedThrough is the mark H read back from the last commit: spans
	// closed by records below it were acknowledged by a previous owner and
	// are not emitted again. -1 until known (and when there was no commit).
	exportedThrough atomic.Int64

	mu        sync.Mutex
	pending   []pendingRecord // increasing offsets; acknowledged ones are popped from the front
	next      int64           // offset after the last processed record, -1 before the first
	low       int64           // lowest first offset of an open session, -1 when none
	open      int
	committed position // last committed by this worker; offset -1 if none
	hw        int64    // high watermark seen on the last fetch

	in   chan []*kgo.Record
	quit chan struct{}
	done chan struct{}
}

// position is what may be committed for a partition.
type position struct {
	offset int64 // the committable offset: every record below it is fully handled or still needed by an open session
	mark   int64 // H: every span closed by a record below it is acknowledged
}

func newWorker(p *pipeline, topic string, partition int32) (*worker, error) {
	dec, err := schema.NewDecoder(p.cfg.Limits)
	if err != nil {
		return nil, fmt.Errorf("partition %s/%d: %w", topic, partition, err)
	}
	m, err := lifecycle.New(p.cfg.Lifecycle)
	if err != nil {
		return nil, fmt.Errorf("partition %s/%d: %w", topic, partition, err)
	}
	w := &worker{
		topic: topic, partition: partition, c: p,
		dec: dec, m: m,
		lane:      p.newLane(p.laneConfig(topic, partition)),
		logs:      newRateLog(p.log.With("topic", topic, "partition", partition), 10*time.Second),
		attrs:     partitionAttrs(topic, partition),
		next:      -1,
		low:       -1,
		committed: position{offset: -1, mark: -1},
		in:        make(chan []*kgo.Record, DefaultWorkerQueue),
		quit:      make(chan struct{}),
		done:      make(chan struct{}),
	}
	w.exportedThrough.Store(-1)
	return w, nil
}

// run processes fetched batches until stop. It stops between records, so the
// rest of a batch for a partition being revoked is never processed.
func (w *worker) run(ctx context.Context) {
	defer close(w.done)
	// A full lane blocks emit until it has room or is aborted (stop's
	// deadline), never because the run is ending: a span dropped when the
	// context ends would leave a hole in the lane's queue that the
	// acknowledged count could pass.
	w.emitCtx = context.WithoutCancel(ctx)
	for {
		select {
		case <-w.quit:
			return
		case recs := <-w.in:
			var n, bytes int64
			for _, r := range recs {
				select {
				case <-w.quit:
					w.countRecords(n, bytes)
					return
				default:
				}
				w.process(ctx, r)
				n++
				bytes += int64(len(r.Value))
			}
			w.countRecords(n, bytes)
		}
	}
}

// countRecords adds processed records to the metrics once per fetched
// batch: an attribute set built per record cost more CPU than decoding it.
func (w *worker) countRecords(n, bytes int64) {
	if n == 0 {
		return
	}
	pm := w.c.metrics
	pm.records.Add(context.Background(), n, w.attrs)
	pm.bytes.Add(context.Background(), bytes, w.attrs)
}

// process runs one record through decode, the state machine and the lane.
func (w *worker) process(ctx context.Context, r *kgo.Record) {
	pm := w.c.metrics

	mark := w.exportedThrough.Load()
	replayed := r.Offset < mark // handled by a previous owner: rebuild state only

	var reason, detail string
	spans := w.spans[:0]
	if err := w.dec.Decode(r.Key, r.Value, &w.ev); err != nil {
		reason, detail = string(schema.ReasonMalformed), err.Error()
		var se *schema.Error
		if errors.As(err, &se) {
			reason = string(se.Reason)
		}
		pm.add(pm.rejected, 1, attribute.String("reason", reason))
	} else {
		var out lifecycle.Outcome
		spans, out = w.m.Apply(&w.ev, r.Offset, spans)
		w.countOutcome(out)
		if out.Dropped() {
			reason, detail = out.Reason(), fmt.Sprintf("event %q of player %q: %s", w.ev.EventID, w.ev.PlayerID, out.Reason())
		}
	}
	w.spans = spans[:0]

	var dlq *atomic.Int32
	if reason != "" && !replayed {
		w.logs.warn(reason, "record sent to the dead-letter topic", "offset", r.Offset, "reason", reason, "detail", detail)
		dlq = new(atomic.Int32)
		dlq.Store(1)
		w.c.dlq.send(r, reason, detail, func(err error) {
			if err != nil {
				pm.add(pm.dlqFailed, 1, attribute.String("reason", reason))
				w.c.log.Error("dead-letter write failed; the record is counted as lost", "topic", w.topic, "partition", w.partition, "offset", r.Offset, "error", err)
			} else {
				pm.add(pm.dlq, 1, attribute.String("reason", reason))
			}
			dlq.Store(0)
		})
	}
	before := w.lane.Emitted()
	if !replayed {
		for i := range spans {
			if err := w.lane.Emit(w.emitCtx, &spans[i]); err != nil {
				// Only an aborted lane gets here; the span is never
				// acknowledged, so never committed past.
				w.c.log.Error("emit span", "topic", w.topic, "partition", w.partition, "offset", r.Offset, "error", err)
			}
		}
		if w.c.sessions != nil {
			w.c.sessions.Record(ctx, spans)
		}
	}

	w.mu.Lock()
	if end := w.lane.Emitted(); end != before || dlq != nil {
		// w.low is still the position before this record: only this
		// goroutine writes it, below.
		w.pending = append(w.pending, pendingRecord{offset: r.Offset, spanEnd: end, dlq: dlq, low: w.low})
	}
	w.next = r.Offset + 1
	w.low = -1
	if lo, ok := w.m.LowestOffset(); ok {
		w.low = lo
	}
	w.open = w.m.Open()
	w.mu.Unlock()
}

func (w *worker) countOutcome(out lifecycle.Outcome) {
	if out == 0 {
		return
	}
	for _, k := range outcomeKinds {
		if out.Has(k.flag) {
			w.c.metrics.add(w.c.metrics.anomalies, 1, attribute.String("kind", k.name))
			if k.flag == lifecycle.UnknownSession || k.flag == lifecycle.Clamped {
				w.logs.info(k.name, "event anomaly", "kind", k.name)
			}
		}
	}
}

// position pops acknowledged records and returns what may be committed, and
// false when nothing was processed yet.
func (w *worker) position() (position, bool) {
	acked := w.lane.Acked()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.next < 0 {
		return position{}, false
	}
	i := 0
	for ; i < len(w.pending); i++ {
		p := w.pending[i]
		if p.spanEnd > acked || (p.dlq != nil && p.dlq.Load() != 0) {
			break
		}
	}
	if i > 0 {
		w.pending = append(w.pending[:0], w.pending[i:]...)
	}
	mark, low := w.next, w.low
	if len(w.pending) > 0 {
		// The sessions open just before the first unacknowledged record
		// include every session with a span still to acknowledge that
		// started below it (and every session open now that did): the next
		// owner must replay from their first records to emit those spans
		// again. The sessions open now are not enough: one that ends at an
		// unacknowledged record is no longer open.
		mark, low = w.pending[0].offset, w.pending[0].low
	} else if h := w.exportedThrough.Load(); h > mark {
		// Everything this owner did is acknowledged, and it has not yet
		// passed the previous owner's mark: keep that mark, so a crash now
		// does not re-emit spans the previous owner exported.
		mark = h
	}
	off := mark
	if low >= 0 && low < off {
		off = low
	}
	return position{offset: off, mark: mark}, true
}

// stop asks the worker to finish its current record and waits for it. If
// ctx ends first (the lane is blocked on a collector outage), the lane is
// aborted, which unblocks the worker; what was not acknowledged stays
// uncommitted.
func (w *worker) stop(ctx context.Context) {
	close(w.quit)
	select {
	case <-w.done:
	case <-ctx.Done():
		w.lane.Abort()
		<-w.done
	}
}
