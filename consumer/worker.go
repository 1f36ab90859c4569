package consumer

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/sessiontrace/sessiontrace/lifecycle"
	"github.com/sessiontrace/sessiontrace/schema"
)

// pendingRecord is a processed record whose side effects (spans, a
// dead-letter write) are not all acknowledged yet.
type pendingRecord struct {
	offset    int64
	spanStart int64         // the lane's emitted count before this record's spans
	spanEnd   int64         // the lane's emitted count after this record's spans
	dlq       *atomic.Int32 // outstanding dead-letter writes, nil when none
	// rec is kept while the record's spans are unacknowledged: when the
	// endpoint refuses one of them for good, the record itself goes to the
	// dead-letter topic (export_rejected). Nil for records without spans.
	rec *kgo.Record
	// rejected is set once the record was dead-lettered for a refused span,
	// so a record with several refused spans is written once.
	rejected bool
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
	lane  lane
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
	// rebuilt counts the records replayed below the mark so far, and
	// rebuildStart is when the first was; the rebuild's one summary line
	// is logged when it passes the mark.
	rebuilt      int64
	rebuildStart time.Time

	mu        sync.Mutex
	pending   []pendingRecord // increasing offsets; acknowledged ones are popped from the front
	next      int64           // offset after the last processed record, -1 before the first
	low       int64           // lowest first offset of an open session, -1 when none
	open      int
	committed position // last committed by this worker; offset -1 if none
	hw        int64    // high watermark seen on the last fetch

	// inbox holds the fetched batches the worker has not taken yet. The poll
	// loop appends without ever blocking (a rebalance must never wait for a
	// worker stuck on a collector outage); when it holds DefaultWorkerQueue
	// batches the partition's fetching is paused, and resumed once the
	// worker took it down to half (inMu also orders those two calls).
	inMu   sync.Mutex
	inbox  [][]*kgo.Record
	paused bool
	resume func() // resumes the partition's fetching; set by the Consumer, nil in tests
	wake   chan struct{}

	// dlqOut counts this partition's dead-letter writes in flight; the
	// worker waits before its next record while maxDLQInFlight are, so a
	// dead-letter topic that refuses writes pauses the partition instead of
	// growing memory. dlqCtx ends their retries when the partition is
	// released; dlqDone is signalled whenever one finishes.
	dlqOut     atomic.Int32
	dlqDone    chan struct{}
	dlqCtx     context.Context
	dlqCancel  context.CancelFunc
	quit       chan struct{}
	done       chan struct{}
	quitClosed sync.Once
}

// maxDLQInFlight bounds one partition's outstanding dead-letter writes.
const maxDLQInFlight = 1024

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
		wake:      make(chan struct{}, 1),
		dlqDone:   make(chan struct{}, 1),
		quit:      make(chan struct{}),
		done:      make(chan struct{}),
	}
	w.dlqCtx, w.dlqCancel = context.WithCancel(context.Background())
	w.exportedThrough.Store(-1)
	return w, nil
}

// deliver appends a fetched batch to the inbox; it never blocks. pause is
// called, under the inbox lock, when the inbox became full.
func (w *worker) deliver(recs []*kgo.Record, pause func()) {
	w.inMu.Lock()
	w.inbox = append(w.inbox, recs)
	if len(w.inbox) >= DefaultWorkerQueue && !w.paused {
		w.paused = true
		pause()
	}
	w.inMu.Unlock()
	signal(w.wake)
}

// take removes the oldest batch from the inbox, resuming the partition's
// fetching once the inbox is down to half.
func (w *worker) take() ([]*kgo.Record, bool) {
	w.inMu.Lock()
	defer w.inMu.Unlock()
	if len(w.inbox) == 0 {
		return nil, false
	}
	recs := w.inbox[0]
	w.inbox[0] = nil
	w.inbox = w.inbox[1:]
	if w.paused && len(w.inbox) <= DefaultWorkerQueue/2 {
		w.paused = false
		if w.resume != nil {
			w.resume()
		}
	}
	return recs, true
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
		recs, ok := w.take()
		if !ok {
			select {
			case <-w.quit:
				return
			case <-w.wake:
			}
			continue
		}
		var n, bytes int64
		for _, r := range recs {
			if !w.roomForDeadLetters() {
				w.countRecords(n, bytes)
				return
			}
			w.process(ctx, r)
			n++
			bytes += int64(len(r.Value))
		}
		w.countRecords(n, bytes)
	}
}

// roomForDeadLetters waits while the partition has maxDLQInFlight
// dead-letter writes outstanding, and reports false when the worker is
// stopped first (the next record then stays unprocessed).
func (w *worker) roomForDeadLetters() bool {
	for {
		select {
		case <-w.quit:
			return false
		default:
		}
		if w.dlqOut.Load() < maxDLQInFlight {
			return true
		}
		select {
		case <-w.quit:
			return false
		case <-w.dlqDone:
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
	// Handled by a previous owner: rebuild state only, silently. The tails
	// of sessions that began below the committed offset look like unknown
	// sessions here, although the previous owner saw them whole: counting
	// or logging them would raise false anomalies on every handover.
	replayed := r.Offset < mark
	if replayed {
		if w.rebuilt == 0 {
			w.rebuildStart = time.Now()
		}
		w.rebuilt++
	} else if w.rebuilt > 0 {
		w.rebuildDone(mark)
	}

	var reason, detail string
	spans := w.spans[:0]
	if err := w.dec.Decode(r.Key, r.Value, &w.ev); err != nil {
		reason, detail = string(schema.ReasonMalformed), err.Error()
		var se *schema.Error
		if errors.As(err, &se) {
			reason = string(se.Reason)
		}
	} else if skew := skewReason(w.ev.TS, r.Timestamp, w.c.cfg.MaxFutureSkew, w.c.cfg.MaxPastSkew); skew != "" {
		// Never applied: a ts far from the record's own time would move
		// stream time and end the partition's sessions.
		reason, detail = skew, fmt.Sprintf("event %q of player %q: ts %s, record timestamp %s",
			w.ev.EventID, w.ev.PlayerID, time.Unix(0, w.ev.TS).UTC().Format(time.RFC3339Nano), r.Timestamp.UTC().Format(time.RFC3339Nano))
	} else {
		var out lifecycle.Outcome
		spans, out = w.m.Apply(&w.ev, r.Offset, spans)
		if !replayed {
			w.countOutcome(out)
		}
		if out.Dropped() {
			reason, detail = out.Reason(), fmt.Sprintf("event %q of player %q: %s", w.ev.EventID, w.ev.PlayerID, out.Reason())
		}
	}
	w.spans = spans[:0]

	var dlq *atomic.Int32
	if reason != "" && !replayed {
		// Every record sent to the dead-letter topic is a rejected one,
		// whatever stage refused it.
		pm.add(pm.rejected, 1, attribute.String("reason", reason))
		w.logs.warn(reason, "record sent to the dead-letter topic", "offset", r.Offset, "reason", reason, "detail", detail)
		dlq = new(atomic.Int32)
		dlq.Store(1)
		w.sendDeadLetter(r, reason, detail, dlq)
	}
	before := w.lane.emitted()
	if replayed {
		spans = spans[:0]
	}
	// The pending record goes in before its spans are emitted: the lane may
	// refuse one of them (and report it) before this goroutine returns.
	w.mu.Lock()
	if len(spans) > 0 || dlq != nil {
		// w.low is still the position before this record: only this
		// goroutine writes it, below.
		pr := pendingRecord{offset: r.Offset, spanStart: before, spanEnd: before + int64(len(spans)), dlq: dlq, low: w.low}
		if len(spans) > 0 {
			pr.rec = r
		}
		w.pending = append(w.pending, pr)
	}
	w.mu.Unlock()
	for i := range spans {
		if err := w.lane.emit(w.emitCtx, &spans[i]); err != nil {
			// Only an aborted lane, or a tracer provider built without
			// the SDK lane's ID generator (the lane builds its own), gets
			// here; the span is never acknowledged, so never committed
			// past.
			w.c.log.Error("emit span", "topic", w.topic, "partition", w.partition, "offset", r.Offset, "error", err)
		}
	}
	if len(spans) > 0 && w.c.sessions != nil {
		w.c.sessions.Record(ctx, spans)
	}

	w.mu.Lock()
	w.next = r.Offset + 1
	w.low = -1
	if lo, ok := w.m.LowestOffset(); ok {
		w.low = lo
	}
	w.open = w.m.Open()
	w.mu.Unlock()
	if replayed && r.Offset+1 >= mark {
		w.rebuildDone(mark)
	}
}

// rebuildDone logs the rebuild's summary once it passed the mark.
func (w *worker) rebuildDone(mark int64) {
	w.c.log.Info("partition rebuilt up to the exported-through mark", "topic", w.topic, "partition", w.partition,
		"mark", mark, "records", w.rebuilt, "sessions", w.m.Open(), "took", time.Since(w.rebuildStart).Round(time.Millisecond))
	w.rebuilt = 0
}

// Dead-letter reasons of events whose ts is too far from their record's
// Kafka timestamp.
const (
	ReasonFutureTimestamp = "future_timestamp"
	ReasonPastTimestamp   = "past_timestamp"
)

// skewReason reports whether an event's ts (Unix nanoseconds) is more than
// future ahead of, or more than past behind, its record's Kafka timestamp,
// as the dead-letter reason, or "" when it is within both bounds, a bound is
// 0, or the record has no timestamp (zero, or Kafka's -1).
func skewReason(ts int64, record time.Time, future, past time.Duration) string {
	if record.IsZero() || record.UnixMilli() <= 0 || record.Year() > 2262 {
		return ""
	}
	at := record.UnixNano()
	// Differences in uint64: both values are int64, so the true distance
	// always fits.
	if future > 0 && ts > at && uint64(ts)-uint64(at) > uint64(future) {
		return ReasonFutureTimestamp
	}
	if past > 0 && ts < at && uint64(at)-uint64(ts) > uint64(past) {
		return ReasonPastTimestamp
	}
	return ""
}

// sendDeadLetter writes r to the dead-letter topic. The caller counted the
// write in counter (the commit cannot pass r's record while it is
// non-zero); it is counted in the partition's in-flight writes here. A
// write that ends with the partition's release, unwritten, leaves counter
// non-zero: the final commit stops there.
func (w *worker) sendDeadLetter(r *kgo.Record, reason, detail string, counter *atomic.Int32) {
	w.dlqOut.Add(1)
	w.c.dlq.send(w.dlqCtx, r, reason, detail, func(err error) {
		if err == nil {
			counter.Add(-1)
		}
		w.dlqOut.Add(-1)
		signal(w.dlqDone)
	})
}

// rejected is the lane's report that the endpoint refused the span with
// emission index seq for good: the record it came from goes to the
// dead-letter topic as export_rejected. The lane calls it before its
// acknowledged count passes seq, so the record is still pending here and
// its commit waits for the write.
func (w *worker) rejected(seq int64, msg string) {
	w.mu.Lock()
	i := sort.Search(len(w.pending), func(i int) bool { return w.pending[i].spanEnd > seq })
	if i == len(w.pending) || w.pending[i].spanStart > seq || w.pending[i].rec == nil {
		w.mu.Unlock()
		// Spans of a replayed record are never emitted; anything else is a
		// lane that broke its contract, which must not go unseen.
		w.c.log.Error("refused span has no pending record", "topic", w.topic, "partition", w.partition, "span_seq", seq)
		return
	}
	p := &w.pending[i]
	if p.rejected {
		w.mu.Unlock()
		return
	}
	p.rejected = true
	if p.dlq == nil {
		p.dlq = new(atomic.Int32)
	}
	rec, counter := p.rec, p.dlq
	// Counted before the lock is released: position must see it before
	// the lane's acknowledged count covers the span.
	counter.Add(1)
	w.mu.Unlock()
	const reason = "export_rejected"
	pm := w.c.metrics
	pm.add(pm.rejected, 1, attribute.String("reason", reason))
	w.logs.warn(reason, "the OTLP endpoint refused a span; its record is sent to the dead-letter topic", "offset", rec.Offset, "detail", msg)
	w.sendDeadLetter(rec, reason, msg, counter)
}

// waitDeadLetters waits until the partition has no dead-letter write in
// flight, or ctx ends.
func (w *worker) waitDeadLetters(ctx context.Context) error {
	for w.dlqOut.Load() > 0 {
		select {
		case <-w.dlqDone:
		case <-ctx.Done():
			return fmt.Errorf("%d dead-letter writes still in flight: %w", w.dlqOut.Load(), ctx.Err())
		}
	}
	return nil
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
	acked := w.lane.acked()
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
		n := copy(w.pending, w.pending[i:])
		clear(w.pending[n:]) // the records they hold can be collected
		w.pending = w.pending[:n]
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
	w.quitClosed.Do(func() { close(w.quit) })
	select {
	case <-w.done:
	case <-ctx.Done():
		w.lane.abort()
		<-w.done
	}
}
