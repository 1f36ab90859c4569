package consumer

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/sessiontrace/sessiontrace/consumer/checkpoint"
	"github.com/sessiontrace/sessiontrace/consumer/export"
	"github.com/sessiontrace/sessiontrace/lifecycle"
	"github.com/sessiontrace/sessiontrace/schema"
)

// worker owns one partition: its decoder, its session state machine, its
// export lane and the positions the commit is computed from. Records are
// processed only on the worker's goroutine; positions are shared with the
// committer under mu.
type worker struct {
	topic     string
	partition int32
	c         *pipeline

	part *partition[*kgo.Record]
	// mg merges co-partitioned topics into the partition's one stream
	// (mergelog.go); nil for one topic, whose offsets are the positions.
	mg    *merger
	steps []step[*kgo.Record] // scratch: what one record did
	rec   schema.Record       // scratch: the record as the decoder reads it
	hdrs  bool                // the decoder reads headers (a mapping); v1 does not
	lane  export.Lane
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

	// resumeFrom is what the last commit says about the partition, set by
	// the Consumer when it reads the commit back and taken by the worker
	// before its first record; nil when there is none.
	resumeFrom atomic.Pointer[resume]
	started    bool

	mu sync.Mutex
	// ledger holds the records whose side effects are pending and the
	// points a commit may be made at: the commit rule.
	ledger    *checkpoint.Ledger[bool]
	open      int
	committed checkpoint.Position // last committed by this worker; offset -1 if none
	hw        int64               // high watermark seen on the last fetch

	// inbox holds the fetched batches the worker has not taken yet. The poll
	// loop appends without ever blocking (a rebalance must never wait for a
	// worker stuck on a collector outage). Once it holds more than
	// DefaultWorkerQueue batches the poll loop stops polling until the worker
	// takes one (the client then stops fetching: franz-go's own flow
	// control), and a worker still full after stallAfter has its partition's
	// fetching paused, resumed once it took the inbox down to half (inMu also
	// orders those two calls). Pausing is kept for a worker that is stuck:
	// the client drops a paused partition's buffered fetches, which are then
	// fetched again, so pausing a merely busy worker costs throughput.
	inMu   sync.Mutex
	inbox  [][]*kgo.Record
	paused bool
	resume func() // resumes the partition's fetching; set by the Consumer, nil in tests
	wake   chan struct{}
	// room is signalled when a take leaves the inbox at or under
	// DefaultWorkerQueue; the poll loop waits on it. Shared by the workers
	// of one Consumer; nil in tests that drive a worker alone.
	room chan struct{}

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

	// next is the offset after the last record processed, -1 before the
	// first; snapAt is the offset of the last snapshot written, and
	// snapTime when it was. Only the worker's goroutine touches them, or
	// release once that goroutine has exited.
	next, snapAt int64
	snapTime     time.Time
	// lastFetched is when the last batch was taken from the inbox;
	// flushAt is the offset before which a quiet flush is planned and not
	// yet applied, -1 when none: it is applied once a commit naming it is
	// acknowledged. Only the worker's goroutine touches them.
	lastFetched time.Time
	flushAt     int64
	// flushWaiting is set while a planned quiet flush waits for its
	// commit: a merge log acknowledgement then asks for a commit at once.
	flushWaiting atomic.Bool
	// written are the snapshots written and not yet superseded by a
	// committed one (under mu): once a commit names a later one they are
	// deleted from the snapshot topic.
	written []writtenSnapshot
}

// writtenSnapshot is a snapshot in the topic and the offset it was taken at.
type writtenSnapshot struct {
	ref    snapshotRef
	offset int64
}

// maxDLQInFlight bounds one partition's outstanding dead-letter writes.
const maxDLQInFlight = 1024

// resume is what a commit read back says about its partition.
type resume struct {
	offset int64 // the committed offset
	meta   checkpoint.Metadata
	// snap is the verified snapshot the commit names, nil when it names
	// none or it could not be read (meta.Snapshot is then "").
	snap []byte
}

func newWorker(p *pipeline, topic string, partition int32) (*worker, error) {
	part, err := newPartition[*kgo.Record](p.cfg)
	if err != nil {
		return nil, fmt.Errorf("partition %s/%d: %w", topic, partition, err)
	}
	w := &worker{
		topic: topic, partition: partition, c: p,
		part:      part,
		hdrs:      p.cfg.Mapping != nil,
		logs:      newRateLog(p.log.With("topic", topic, "partition", partition), 10*time.Second),
		attrs:     partitionAttrs(topic, partition),
		ledger:    checkpoint.New[bool](-1),
		committed: checkpoint.Position{Point: checkpoint.Point{Offset: -1}, Mark: -1},
		wake:      make(chan struct{}, 1),
		dlqDone:   make(chan struct{}, 1),
		quit:      make(chan struct{}),
		done:      make(chan struct{}),
		next:      -1,
		snapAt:    -1,
		flushAt:   -1,
		snapTime:  time.Now(),
	}
	w.dlqCtx, w.dlqCancel = context.WithCancel(context.Background())
	w.exportedThrough.Store(-1)
	lc := p.laneConfig(topic, partition)
	counted := lc.Observer.Rejected
	lc.Observer.Rejected = func(seq int64, s *lifecycle.Span, msg string) {
		if counted != nil {
			counted(seq, s, msg)
		}
		w.rejected(seq, msg)
	}
	w.lane = p.newLane(lc)
	return w, nil
}

// signal wakes the waiter of c, if any, without blocking.
func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// record is r as the decoder reads it, in the worker's scratch record; the
// headers are copied only for a mapping, which may read any of them. The v1
// decoder reads only traceparent: a scan for that key copies nothing else.
func (w *worker) record(r *kgo.Record) *schema.Record {
	w.rec.Key, w.rec.Value = r.Key, r.Value
	w.rec.Headers = w.rec.Headers[:0]
	if !w.hdrs {
		for _, h := range r.Headers {
			if h.Key == schema.HeaderTraceparent {
				w.rec.Headers = append(w.rec.Headers, schema.Header{Key: h.Key, Value: h.Value})
			}
		}
		return &w.rec
	}
	for _, h := range r.Headers {
		w.rec.Headers = append(w.rec.Headers, schema.Header{Key: h.Key, Value: h.Value})
	}
	return &w.rec
}

// deliver appends a fetched batch to the inbox; it never blocks. It reports
// whether the inbox is now over DefaultWorkerQueue, so the poll loop waits
// for room before it polls again.
func (w *worker) deliver(recs []*kgo.Record) (full bool) {
	w.inMu.Lock()
	w.inbox = append(w.inbox, recs)
	full = len(w.inbox) > DefaultWorkerQueue && !w.paused
	w.inMu.Unlock()
	signal(w.wake)
	return full
}

// full reports whether the inbox is over DefaultWorkerQueue and the
// partition still fetched.
func (w *worker) full() bool {
	w.inMu.Lock()
	defer w.inMu.Unlock()
	return len(w.inbox) > DefaultWorkerQueue && !w.paused
}

// pauseIfFull pauses the partition's fetching, under the inbox lock, when
// the inbox is still over DefaultWorkerQueue: the worker is stuck (a
// collector outage, a dead-letter topic refusing writes), and the poll loop
// must go on fetching for the others.
func (w *worker) pauseIfFull(pause func()) {
	w.inMu.Lock()
	defer w.inMu.Unlock()
	if len(w.inbox) > DefaultWorkerQueue && !w.paused {
		w.paused = true
		pause()
	}
}

// take removes the oldest batch from the inbox, tells the poll loop when
// there is room again, and resumes a paused partition's fetching once the
// inbox is down to half.
func (w *worker) take() ([]*kgo.Record, bool) {
	w.inMu.Lock()
	defer w.inMu.Unlock()
	if len(w.inbox) == 0 {
		return nil, false
	}
	recs := w.inbox[0]
	w.inbox[0] = nil
	w.inbox = w.inbox[1:]
	if len(w.inbox) == DefaultWorkerQueue && w.room != nil {
		signal(w.room)
	}
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
	// snapDue fires when a snapshot is due while the partition is idle: the
	// records after the last one may be few, or none for long.
	var snapDue <-chan time.Time
	// quietDue fires a reorder window (in wall time) after the last batch
	// was taken, while events are held: the partition may have gone quiet.
	var quietDue <-chan time.Time
	for {
		if w.mg != nil && !w.started {
			// A merged partition begins once adjust said how: replaying
			// the merge log first, before any record the group fetches.
			if st := w.mg.start.Load(); st != nil && st.err == nil {
				if !w.startMerged(ctx, st) {
					return
				}
				continue
			}
			select {
			case <-w.quit:
				return
			case <-w.wake:
			}
			continue
		}
		if w.mg != nil && w.mg.broken.Load() {
			if !w.repairMerge(ctx) {
				return
			}
			continue
		}
		if w.flushAt >= 0 {
			// No record is processed past a planned quiet flush before it
			// is applied, and it is applied only once durable: the commit
			// loop commits the position naming it and wakes the worker.
			if !w.flushDurable() {
				select {
				case <-w.quit:
					return
				case <-w.wake:
				}
				continue
			}
			w.part.quiet(w.flushAt)
			w.flushAt = -1
			w.flushWaiting.Store(false)
			w.flushQuiet(ctx)
		}
		recs, offs, ok := w.takeRecords()
		if !ok {
			if iv := w.c.cfg.SnapshotInterval; iv > 0 && snapDue == nil && w.next != w.snapAt {
				snapDue = time.After(max(0, iv-time.Since(w.snapTime)))
			}
			if win := w.c.cfg.Lifecycle.ReorderWindow; win > 0 && quietDue == nil && w.part.held() > 0 {
				quietDue = time.After(max(0, win-time.Since(w.lastFetched)))
			}
			mergeDue := w.mergeDue()
			select {
			case <-mergeDue:
			case <-w.quit:
				return
			case <-w.wake:
			case <-snapDue:
				snapDue = nil
				w.snapshot(ctx, false)
			case <-quietDue:
				quietDue = nil
				w.planQuiet()
			}
			continue
		}
		w.lastFetched = time.Now()
		quietDue = nil
		var n, bytes int64
		for i, r := range recs {
			if !w.roomForDeadLetters() {
				w.countRecords(n, bytes)
				return
			}
			off := r.Offset
			if offs != nil {
				off = offs[i]
			}
			w.process(ctx, r, off)
			w.next = off + 1
			n++
			bytes += int64(len(r.Value))
		}
		w.countRecords(n, bytes)
		if w.part.planned(w.next) {
			// A previous owner's flush after its last record: the next
			// record may be long in coming.
			w.flushQuiet(ctx)
		}
		if iv := w.c.cfg.SnapshotInterval; iv > 0 && time.Since(w.snapTime) >= iv {
			w.snapshot(ctx, false)
		}
	}
}

// planQuiet plans a quiet flush before w.next when the partition went
// quiet with events held: nothing fetched for a reorder window of wall
// time and the inbox empty. That is "caught up" as far as the worker can
// tell: the high watermark of the last fetch is no test, since on a
// transactional topic (rekey's output) the commit marker after the last
// record keeps it above the next offset for good, and a fetch that returns
// nothing is not seen here. A flush taken while records are still on their
// way (a broker unreachable for the window) is as durable and as safe as
// any; it only applies the held events before later ones that a longer wait
// would have ordered in front of them. Held events would otherwise wait for the next record,
// and their sessions, and the commit, with them. The plan goes to the
// ledger, which names it in every commit below it; run applies the flush
// once such a commit is acknowledged (see the package doc, Quiet flushes).
// At most checkpoint.MaxFlushes may be pending above the committable
// offset: beyond that the events wait for the next record.
func (w *worker) planQuiet() {
	if w.part.held() == 0 || w.next < 0 || time.Since(w.lastFetched) < w.c.cfg.Lifecycle.ReorderWindow {
		return
	}
	w.inMu.Lock()
	empty := len(w.inbox) == 0
	w.inMu.Unlock()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.mg != nil && w.mg.stashed > 0 {
		empty = false // records wait for the merge
	}
	if !empty || w.part.plannedFrom(w.next) {
		return
	}
	if w.ledger.Flushes() >= checkpoint.MaxFlushes {
		w.logs.warn("quiet-flushes", "too many quiet flushes above the committed offset; held events wait for the next record", "offset", w.next, "held", w.part.held())
		return
	}
	w.ledger.Flushed(w.next)
	w.flushAt = w.next
	w.flushWaiting.Store(true)
	signal(w.c.commitSoon)
}

// flushDurable reports whether a commit naming the planned quiet flush (or
// past it) was acknowledged.
func (w *worker) flushDurable() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.committed.Flushes.Has(w.flushAt) || w.committed.Offset >= w.flushAt
}

// flushQuiet applies the held events of a durable quiet flush before
// w.next, with their side effects.
func (w *worker) flushQuiet(ctx context.Context) {
	spans, steps := w.part.flushAt(w.next, w.spans[:0], w.steps[:0])
	w.applySteps(ctx, spans, steps, w.exportedThrough.Load())
	w.mu.Lock()
	w.open = w.part.m.Open()
	w.mu.Unlock()
}

// snapshot writes a snapshot of the partition's state before w.next to the
// snapshot topic and, once Kafka acknowledged it, tells the ledger, so that
// commits may pass the sessions it holds. It runs on the worker's goroutine
// between batches (the machine is the worker's), or in release (final)
// once that goroutine has exited. Nothing is written before the first
// record, while records only refill the dedup window, or when nothing
// changed since the last snapshot.
func (w *worker) snapshot(ctx context.Context, final bool) {
	w.snapTime = time.Now()
	s := w.c.snaps
	if s == nil || w.next < 0 || w.next == w.snapAt || w.next < w.part.applyFrom {
		return
	}
	if held := w.part.held(); held > 0 {
		// With events held the snapshot holds them too (the state before
		// w.next is the machine's and the window's), but the ledger may
		// commit at it only once the cut passed w.next (see the package
		// doc, Snapshots with held events). Not in release, then: this
		// owner's cut moves no more, so no commit would name it. Not with
		// a quiet flush planned before w.next and not yet applied either
		// (only in release, or a previous owner's plan before a record not
		// read yet): the snapshot after it, with nothing held, does as
		// well, and the resume property covers snapshots taken before a
		// flush is planned, not between plan and application.
		if final || w.flushAt >= 0 || w.part.planned(w.next) {
			return
		}
	}
	at := w.part.snapshotPoint(w.next)
	start := time.Now()
	ref, _, err := s.write(ctx, w.part, w.partition, w.next)
	pm := w.c.metrics
	if err != nil {
		pm.add(pm.snapshots, 1, attribute.String("result", "error"))
		w.logs.warn("snapshot-failed", "snapshot write failed; commits keep to the open sessions", "offset", w.next, "error", err)
		return
	}
	pm.add(pm.snapshots, 1, attribute.String("result", "ok"))
	w.snapAt = w.next
	w.mu.Lock()
	w.ledger.Snapshotted(snapshotPoint(at, ref))
	w.written = append(w.written, writtenSnapshot{ref: ref, offset: at.Offset})
	w.mu.Unlock()
	w.c.log.Debug("snapshot written", "topic", w.topic, "partition", w.partition, "offset", at.Offset,
		"sessions", w.part.m.Open(), "held", w.part.held(), "ref", ref.String(), "took", time.Since(start).Round(time.Millisecond))
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

// process runs one record, at offset off (its position in a merged
// stream), through decode, the reorder window, the state machine and the
// lane.
func (w *worker) process(ctx context.Context, r *kgo.Record, off int64) {
	if !w.started {
		w.start()
	}
	mark := w.exportedThrough.Load()
	// Handled by a previous owner: rebuild state only, silently. The tails
	// of sessions that began below the committed offset look like unknown
	// sessions here, although the previous owner saw them whole: counting
	// or logging them would raise false anomalies on every handover.
	replayed := off < mark
	if replayed {
		if w.rebuilt == 0 {
			w.rebuildStart = time.Now()
		}
		w.rebuilt++
	} else if w.rebuilt > 0 {
		w.rebuildDone(mark)
	}
	spans, steps := w.part.process(w.record(r), r.Timestamp, off, r, w.spans[:0], w.steps[:0])
	// Every step of a record below the committed offset is warm.
	warm := steps[0].warm
	w.applySteps(ctx, spans, steps, mark)
	if warm {
		// Below the committed offset: it only refilled the dedup window,
		// and nothing of it is this owner's to commit.
		if replayed && off+1 >= mark {
			w.rebuildDone(mark)
		}
		return
	}

	w.mu.Lock()
	w.open = w.part.m.Open()
	w.mu.Unlock()
	if replayed && off+1 >= mark {
		w.rebuildDone(mark)
	}
}

// applySteps does the side effects of the partition's steps, in order.
func (w *worker) applySteps(ctx context.Context, spans []lifecycle.Span, steps []step[*kgo.Record], mark int64) {
	from := 0
	for i := range steps {
		w.apply(ctx, &steps[i], spans[from:steps[i].spans], mark)
		from = steps[i].spans
	}
	// The steps must not keep records or spans alive until the next one.
	clear(steps)
	w.spans, w.steps = spans[:0], steps[:0]
}

// apply does the side effects of one step of the partition: the metrics,
// the dead-letter write, the ledger and the spans. A step positioned below
// mark was handled by a previous owner: it only rebuilds state.
func (w *worker) apply(ctx context.Context, st *step[*kgo.Record], spans []lifecycle.Span, mark int64) {
	pm := w.c.metrics
	replayed := st.before.Offset < mark
	if st.ignored && !replayed {
		pm.add(pm.ignored, 1)
	}
	if st.warm {
		return
	}
	if st.badLink != "" && !replayed {
		// Counted at the record's own step, held or not: the event is
		// applied (now or once the reorder window lets it out) as if it
		// carried no traceparent.
		pm.traceparentInvalid.Add(context.Background(), 1, w.attrs)
		w.logs.warn("traceparent", "invalid traceparent ignored: the event is applied without its trace link",
			"offset", st.offset, "detail", st.badLink)
	}
	if st.held {
		w.processed(st)
		return
	}
	if !replayed {
		w.countOutcome(st.out)
	}
	r, reason, detail := st.payload, st.reason, st.detail

	var dlq *atomic.Int32
	if reason != "" && !replayed {
		// Every record sent to the dead-letter topic is a rejected one,
		// whatever stage refused it.
		pm.add(pm.rejected, 1, attribute.String("reason", reason))
		w.logs.warn(reason, "record sent to the dead-letter topic", "offset", st.offset, "reason", reason, "detail", detail)
		dlq = new(atomic.Int32)
		dlq.Store(1)
		if r != nil {
			w.sendDeadLetter(r, reason, detail, dlq)
		} else {
			// An event a snapshot held: its record was not kept.
			w.refetchDeadLetter(st.offset, reason, detail, dlq)
		}
	}
	emitted := w.lane.Emitted()
	if replayed {
		spans = spans[:0]
	}
	// The pending record goes in before its spans are emitted: the lane may
	// refuse one of them (and report it) before this goroutine returns.
	if started := st.out.Has(lifecycle.Started); started || len(spans) > 0 || dlq != nil {
		w.mu.Lock()
		if started {
			w.ledger.Started(st.before)
		}
		if len(spans) > 0 || dlq != nil {
			pr := checkpoint.Record[bool]{Point: st.before, SpanStart: emitted, SpanEnd: emitted + int64(len(spans)), DeadLetters: dlq}
			// Payload says the record has spans. The record itself is not
			// kept: a fetched record's key and value point into its whole
			// fetch's buffer, and holding the records whose spans are in
			// flight kept hundreds of MiB of fetch buffers alive under load.
			// The rare refused span re-reads its record (rejected).
			pr.Payload = len(spans) > 0
			w.ledger.Add(pr)
		}
		w.mu.Unlock()
	}
	for i := range spans {
		if err := w.lane.Emit(w.emitCtx, &spans[i]); err != nil {
			// Only an aborted lane, or a tracer provider built without
			// the SDK lane's ID generator (the lane builds its own), gets
			// here; the span is never acknowledged, so never committed
			// past.
			w.c.log.Error("emit span", "topic", w.topic, "partition", w.partition, "offset", st.offset, "error", err)
		}
	}
	if len(spans) > 0 && w.c.sessions != nil {
		w.c.sessions.Record(ctx, spans)
	}
	w.processed(st)
}

// processed tells the ledger where a commit may be made after st.
func (w *worker) processed(st *step[*kgo.Record]) {
	w.mu.Lock()
	w.ledger.Processed(st.next, st.low)
	w.mu.Unlock()
}

// start takes what the partition's last commit says, once, before the
// first record: the previous owner's stream time at the committed offset,
// and the offset from which records only refill the dedup window.
func (w *worker) start() {
	w.started = true
	res := w.resumeFrom.Load()
	if res == nil {
		return
	}
	w.mu.Lock()
	w.ledger.Resume(res.meta.Mark)
	// The previous owner's quiet flushes above the committed offset are
	// this owner's too (the partition applies them), and its commits below
	// them must name them as the previous owner's did.
	for _, f := range res.meta.Flushes {
		w.ledger.Flushed(f)
	}
	w.mu.Unlock()
	if res.snap != nil {
		info, err := w.part.restore(res.offset, res.meta, bytes.NewReader(res.snap))
		if err == nil {
			w.snapAt = res.offset
			// The snapshot is durable: until this owner writes its own, its
			// commits stay at it rather than fall back to the first
			// offsets of the sessions it holds, which this owner never read,
			// or to the cut below it while the events it held wait.
			if ref, err := parseSnapshotRef(res.meta.Snapshot); err == nil {
				w.mu.Lock()
				w.ledger.Restored(snapshotPoint(w.part.snapshotPoint(res.offset), ref))
				w.written = append(w.written, writtenSnapshot{ref: ref, offset: res.offset})
				w.mu.Unlock()
			}
			w.c.log.Info("partition restored from its snapshot", "topic", w.topic, "partition", w.partition,
				"offset", res.offset, "sessions", info.Sessions, "held", info.Held, "bytes", info.Bytes)
			return
		}
		// adjust verified the snapshot, so this is a bug; the partition
		// still fetches from the committed offset, and the mark keeps
		// spans below it from being emitted again.
		w.c.log.Error("restore verified snapshot", "topic", w.topic, "partition", w.partition, "error", err)
		return
	}
	w.part.resume(res.offset, res.meta)
}

// rebuildDone logs the rebuild's summary once it passed the mark.
func (w *worker) rebuildDone(mark int64) {
	w.c.log.Info("partition rebuilt up to the exported-through mark", "topic", w.topic, "partition", w.partition,
		"mark", mark, "records", w.rebuilt, "sessions", w.part.m.Open(), "took", time.Since(w.rebuildStart).Round(time.Millisecond))
	w.rebuilt = 0
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
	p := w.ledger.Pending(seq)
	if p == nil || !p.Payload {
		w.mu.Unlock()
		// Spans of a replayed record are never emitted; anything else is a
		// lane that broke its contract, which must not go unseen.
		w.c.log.Error("refused span has no pending record", "topic", w.topic, "partition", w.partition, "span_seq", seq)
		return
	}
	if p.Rejected {
		w.mu.Unlock()
		return
	}
	p.Rejected = true
	if p.DeadLetters == nil {
		p.DeadLetters = new(atomic.Int32)
	}
	offset, counter := p.Offset, p.DeadLetters
	// Counted before the lock is released: position must see it before
	// the lane's acknowledged count covers the span. The in-flight count
	// covers the re-read too, so a release waits for it.
	counter.Add(1)
	w.dlqOut.Add(1)
	w.mu.Unlock()
	const reason = "export_rejected"
	pm := w.c.metrics
	pm.add(pm.rejected, 1, attribute.String("reason", reason))
	w.logs.warn(reason, "the OTLP endpoint refused a span; its record is sent to the dead-letter topic", "offset", offset, "detail", msg)
	w.refetched(offset, reason, msg, counter)
}

// refetchDeadLetter writes the record at offset, which the worker does not
// hold, to the dead-letter topic, re-reading it first: an event a restored
// snapshot held (restore says why this is not expected). counter is
// counted as for sendDeadLetter.
func (w *worker) refetchDeadLetter(offset int64, reason, detail string, counter *atomic.Int32) {
	w.dlqOut.Add(1)
	w.refetched(offset, reason, detail, counter)
}

// refetched re-reads the record at offset and writes it to the dead-letter
// topic, then takes one off counter and the partition's in-flight writes
// (which the caller counted).
func (w *worker) refetched(offset int64, reason, detail string, counter *atomic.Int32) {
	// Not on the lane's (or the worker's) goroutine: the re-read is a fetch.
	go func() {
		topic, at := w.topic, offset
		if w.mg != nil {
			w.mu.Lock()
			t, o, ok := w.mg.locate(offset)
			w.mu.Unlock()
			if !ok {
				w.logs.warn("refetch", "no record at this position of the merged topics; it stays uncommitted", "position", offset, "reason", reason)
				w.dlqOut.Add(-1)
				signal(w.dlqDone)
				return
			}
			topic, at = t, o
		}
		rec, err := w.c.dlq.refetch(w.dlqCtx, topic, w.partition, at)
		if err != nil {
			// The partition is being released (or the record is gone):
			// the copy stays unwritten and the commit stays below it.
			w.logs.warn("refetch", "could not read a record to dead-letter again; it stays uncommitted", "offset", offset, "reason", reason, "error", err)
			w.dlqOut.Add(-1)
			signal(w.dlqDone)
			return
		}
		w.c.dlq.send(w.dlqCtx, rec, reason, detail, func(err error) {
			if err == nil {
				counter.Add(-1)
			}
			w.dlqOut.Add(-1)
			signal(w.dlqDone)
		})
	}()
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

// superseded removes from written, and returns, the snapshots taken below
// offset, which a commit at offset made unnecessary; the caller holds mu.
func (w *worker) superseded(offset int64) []writtenSnapshot {
	i := 0
	for i < len(w.written) && w.written[i].offset < offset {
		i++
	}
	stale := w.written[:i:i]
	w.written = w.written[i:]
	return stale
}

// position forgets acknowledged records and returns what may be committed,
// and false when nothing was processed yet (the commit rule is the
// ledger's).
func (w *worker) position() (checkpoint.Position, bool) {
	acked := w.lane.Acked()
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.ledger.Position(acked)
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
		w.lane.Abort()
		<-w.done
	}
}
