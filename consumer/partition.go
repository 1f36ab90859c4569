package consumer

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/sessiontrace/sessiontrace/consumer/checkpoint"
	"github.com/sessiontrace/sessiontrace/lifecycle"
	"github.com/sessiontrace/sessiontrace/schema"
)

// partition is one partition's pure logic, without Kafka, lanes or
// metrics: decode, the timestamp bounds, the dedup window, the reorder
// window, the state machine, and where a resumed partition starts
// applying. The worker runs records through it; the resume property is
// tested on it directly. P is what the caller keeps of a record (the Kafka
// record, in the worker) until the event it holds is applied.
//
// # Commit points with a reorder window
//
// Held events are applied later than records that arrive after them, so
// the point before a record (its offset, the stream time and dedup window
// start there) is a place to resume from only at a moment when every
// record below it was applied and none at or above it: a cut. The
// partition tracks the latest cut (whenever nothing is held, the next
// record's offset is one) and passes the cut's offset to the machine as the
// offset of every event it applies, so sessions, pending records and marks
// are all positioned at cuts: the ledger never commits past the first held
// record, and a new owner reading from a cut holds exactly the records held
// there again (the window's latest ts there is the stream time there,
// which the commit carries) and applies the rest in the same order.
//
// A snapshot (WriteSnapshot) is the state before the next record, whether
// or not events are held: with some, it holds them, the window's latest ts
// and the cut too, and restore puts them all back, so the new owner
// releases them when the old one would have, at the same cuts. Those cuts
// are below the snapshot's offset; package checkpoint explains why a commit
// naming it is made only once they are acknowledged.
type partition[P any] struct {
	dec          schema.RecordDecoder
	m            *lifecycle.Machine
	ev           schema.Event
	future, past time.Duration
	// applyFrom is the committed offset of a resumed partition: records
	// below it (from the dedup window's start on) only refill the dedup
	// window. -1 when every record is applied.
	applyFrom int64
	// win holds events for the reorder window; nil when it is off.
	win *reorder[P]
	// cut is the latest point at which every record below cut.Offset was
	// applied and none at or above it; applied is the highest offset
	// applied to the machine, -1 before the first.
	cut     checkpoint.Point
	applied int64
	// cutLow is the lowest first offset of a session open at the moment
	// of the cut, -1 when none: such a session may end at a later step
	// positioned at the cut, which a new owner resuming there must be able
	// to rebuild.
	cutLow int64
	// flushes are the offsets of the records before which every held
	// event is applied, ascending: quiet flushes this owner decided on
	// (once they are durable) or read from the commit it resumed at.
	flushes []int64
	// snapWin is WriteSnapshot's scratch window state.
	snapWin lifecycle.Reorder
}

func newPartition[P any](cfg Config) (*partition[P], error) {
	dec, err := schema.NewRecordDecoder(cfg.Limits, cfg.Mapping)
	if err != nil {
		return nil, err
	}
	if cfg.Pseudonyms != nil {
		dec = cfg.Pseudonyms.Pseudonymized(dec)
	}
	m, err := lifecycle.New(cfg.Lifecycle.Config)
	if err != nil {
		return nil, err
	}
	p := &partition[P]{dec: dec, m: m, future: cfg.MaxFutureSkew, past: cfg.MaxPastSkew, applyFrom: -1, applied: -1, cutLow: -1}
	if cfg.Lifecycle.ReorderWindow > 0 {
		p.win = newReorder[P](int64(cfg.Lifecycle.ReorderWindow), cfg.Lifecycle.ReorderMaxEvents)
	}
	return p, nil
}

// resume makes the partition continue from a commit at offset carrying meta:
// with a version 2 commit, the previous owner's stream time there, and
// records below it only refilling the dedup window.
func (p *partition[P]) resume(offset int64, meta checkpoint.Metadata) {
	if !meta.Resume {
		return
	}
	p.m.Resume(meta.StreamTime)
	if p.win != nil {
		// Every event below a cut was applied, so the largest ts the
		// window was given there is the stream time there.
		p.win.latest = meta.StreamTime
	}
	p.applyFrom = offset
	p.cut = checkpoint.Point{Offset: offset, StreamTime: meta.StreamTime, WindowStart: meta.WindowStart}
	p.flushes = append(p.flushes[:0], meta.Flushes...)
}

// restore makes the partition continue from a commit at offset whose
// metadata names a snapshot, read from snap: the machine takes the
// snapshot's state (verified by its SHA-256), the reorder window the events
// it held and the cut its positions, and every record from offset on is
// applied. On error the partition is unchanged, and the caller falls back;
// a snapshot holding events is refused (lifecycle.ErrSnapshotMismatch) when
// the window is off here.
func (p *partition[P]) restore(offset int64, meta checkpoint.Metadata, snap io.Reader) (lifecycle.SnapshotInfo, error) {
	var win lifecycle.Reorder
	into := &win
	if p.win == nil {
		into = nil
	}
	saved := *p.m
	info, err := p.m.ReadSnapshotReorder(snap, into)
	if err == nil && len(win.Held) > 0 && (win.Held[len(win.Held)-1].Offset >= offset || win.Applied >= offset || win.Cut > offset) {
		// Only a bug writes this (the SHA-256 matched): the window of a
		// snapshot before offset holds records below it.
		*p.m = saved
		err = fmt.Errorf("%w: it holds records up to %d and applied up to %d", lifecycle.ErrSnapshotCorrupt, win.Held[len(win.Held)-1].Offset, win.Applied)
	}
	if err != nil {
		return info, fmt.Errorf("restore snapshot %s at offset %d: %w", meta.Snapshot, offset, err)
	}
	p.applyFrom = -1
	if p.win != nil {
		// With nothing held, every event below offset was applied, so the
		// largest ts the window was given there is the snapshot's stream
		// time.
		p.win.latest = p.m.StreamTime()
		if len(win.Held) > 0 {
			// The payloads are not kept: these events are released at
			// cuts below offset, which the previous owner's commit at the
			// snapshot marked as exported (see the package doc, Snapshots
			// with held events), so their steps are replayed ones, with no
			// dead letter to write. Should one be written all the same,
			// the worker re-reads the record by its offset.
			var zero P
			for i := range win.Held {
				h := &win.Held[i]
				p.win.add(&h.Event, h.Offset, h.WindowStart, zero)
			}
			p.win.latest = win.Latest
			p.cut = checkpoint.Point{Offset: win.Cut, StreamTime: win.CutStreamTime, WindowStart: win.CutWindowStart}
			p.cutLow, p.applied = win.CutLow, win.Applied
		}
	}
	p.flushes = append(p.flushes[:0], meta.Flushes...)
	return info, nil
}

// WriteSnapshot writes a snapshot of the partition's state before the
// record after the last one given: the machine's and, with events held,
// the reorder window's (lifecycle version 3), so that restore continues
// exactly as this partition would.
func (p *partition[P]) WriteSnapshot(w io.Writer) (int64, [sha256.Size]byte, error) {
	if p.held() == 0 {
		return p.m.WriteSnapshot(w)
	}
	r := &p.snapWin
	*r = lifecycle.Reorder{Latest: p.win.latest, Cut: p.cut.Offset, CutStreamTime: p.cut.StreamTime,
		CutWindowStart: p.cut.WindowStart, CutLow: p.cutLow, Applied: p.applied, Held: r.Held[:0]}
	for _, h := range p.win.fifo[p.win.head:] {
		if !h.done {
			r.Held = append(r.Held, lifecycle.HeldEvent{Event: h.ev, Offset: h.offset, WindowStart: h.ws})
		}
	}
	n, sum, err := p.m.WriteSnapshotReorder(w, r)
	clear(r.Held) // the events' strings and attributes are the window's
	r.Held = r.Held[:0]
	return n, sum, err
}

// Open returns how many sessions are open.
func (p *partition[P]) Open() int { return p.m.Open() }

// snapshotPoint returns the point a snapshot written now, after the records
// below next were given, is the state before: next. With events held, the
// stream time and dedup window start are the machine's, as a fallback's
// metadata (a commit naming the snapshot is never resumed from without it:
// Consumer.loadSnapshot then replays from the oldest record).
func (p *partition[P]) snapshotPoint(next int64) checkpoint.Point {
	if p.held() == 0 {
		return p.point(next)
	}
	return checkpoint.Point{Offset: next, StreamTime: p.m.StreamTime(), WindowStart: p.windowStart(next)}
}

// step is what one record, or one held event applied, did.
type step[P any] struct {
	// before is the latest cut before it: where the ledger positions it.
	before checkpoint.Point
	// offset is the record's own offset, payload what the caller gave
	// with it.
	offset  int64
	payload P
	// warm is set for a record below the committed offset of a resumed
	// partition: it only refilled the dedup window.
	warm bool
	// ignored is set for a record whose event name the mapping ignores:
	// skipped and counted, not dead-lettered.
	ignored bool
	// held is set for a record whose event went into the reorder window:
	// a later step applies it.
	held bool
	// applied is set for a step that applied an event to the machine;
	// stream is the stream time after it.
	applied bool
	stream  int64
	out     lifecycle.Outcome
	// badLink says why the event's traceparent was ignored, "" when it had
	// none or a valid one; the event is applied all the same.
	badLink string
	// reason is why the record goes to the dead-letter topic, "" when it
	// does not; detail says more.
	reason, detail string
	// spans is where the step's spans end in the slice returned with it;
	// they start where the previous step's end.
	spans int
	// next and low are what the ledger is told after the step: the cut
	// and the lowest first offset of a session that matters there (-1
	// when none).
	next checkpoint.Point
	low  int64
}

// process runs the record at offset (its key, value and headers, and its
// Kafka timestamp, zero when unknown) through the decoder, the bounds, the
// dedup window and the reorder window, and applies what the window
// releases, appending the spans that finishes to spans and one step for
// the record and one for each event applied to steps (those of a quiet
// flush planned before the record first, then the record's own, then those
// of the events it lets out of the window).
func (p *partition[P]) process(rec *schema.Record, ts time.Time, offset int64, payload P, spans []lifecycle.Span, steps []step[P]) ([]lifecycle.Span, []step[P]) {
	st := step[P]{offset: offset, payload: payload, warm: offset < p.applyFrom}
	if !st.warm {
		// A quiet flush before this record: its steps come before the
		// record's.
		spans, steps = p.flushAt(offset, spans, steps)
		p.recut(offset)
	}
	st.before = p.cut
	if err := p.dec.DecodeRecord(rec, &p.ev); errors.Is(err, schema.ErrIgnored) {
		st.ignored = true
		return p.done(spans, steps, st, offset+1)
	} else if err != nil {
		st.reason, st.detail = string(schema.ReasonMalformed), err.Error()
		var se *schema.Error
		if errors.As(err, &se) {
			st.reason = string(se.Reason)
		}
		return p.done(spans, steps, st, offset+1)
	}
	st.badLink = p.ev.LinkError
	if skew := skewReason(p.ev.TS, ts, p.future, p.past); skew != "" {
		// Never applied: a ts far from the record's own time would move
		// stream time and end the partition's sessions.
		st.reason, st.detail = skew, fmt.Sprintf("event %q of player %q: ts %s, record timestamp %s",
			p.ev.EventID, p.ev.PlayerID, time.Unix(0, p.ev.TS).UTC().Format(time.RFC3339Nano), ts.UTC().Format(time.RFC3339Nano))
		return p.done(spans, steps, st, offset+1)
	}
	if st.warm {
		p.m.Remember(p.ev.EventID, offset)
		return p.done(spans, steps, st, offset+1)
	}
	// Duplicates are found in arrival order, before the window: the dedup
	// window stays a function of the records in offset order, which a new
	// owner re-reads.
	ws := p.windowStart(offset)
	if p.m.Seen(p.ev.EventID, offset) {
		st.out = lifecycle.Duplicate
		st.reason, st.detail = st.out.Reason(), fmt.Sprintf("event %q of player %q: %s", p.ev.EventID, p.ev.PlayerID, st.out.Reason())
		return p.done(spans, steps, st, offset+1)
	}
	if p.win == nil {
		spans, st = p.apply(&p.ev, spans, st)
		p.applied = offset
		return p.done(spans, steps, st, offset+1)
	}
	p.win.add(&p.ev, offset, ws, payload)
	st.held = true
	spans, steps = p.done(spans, steps, st, offset+1)
	return p.drain(offset+1, false, spans, steps)
}

// flush applies every held event, as at the end of the input; next is the
// offset after the last record given.
func (p *partition[P]) flush(next int64, spans []lifecycle.Span, steps []step[P]) ([]lifecycle.Span, []step[P]) {
	if p.win == nil {
		return spans, steps
	}
	return p.drain(next, true, spans, steps)
}

// quiet plans a quiet flush before the record at next, the offset after
// the last record given: every held event is applied before that record is
// (now, by flushAt, once the caller made the flush durable, or by
// process, when the record arrives first). A new owner starting below next
// must plan the same flush (checkpoint.Ledger.Flushed names it in the
// commits).
func (p *partition[P]) quiet(next int64) {
	p.flushes = append(p.flushes, next)
}

// flushAt applies every held event if a flush is planned before the record
// at next and drops the plan; next is the offset after the last record
// given.
func (p *partition[P]) flushAt(next int64, spans []lifecycle.Span, steps []step[P]) ([]lifecycle.Span, []step[P]) {
	// A plan below next is one before an offset no record has (a
	// transactional topic's commit marker, a gap in merged positions):
	// no record lies between the last one given and next, so a flush
	// before the offset is one before next. Plans at or below the last
	// record given were met when it came (a resumed partition's start
	// above its committed offset, and records come in offset order).
	due := false
	for len(p.flushes) > 0 && p.flushes[0] <= next {
		p.flushes = p.flushes[1:]
		due = true
	}
	if !due {
		return spans, steps
	}
	return p.flush(next, spans, steps)
}

// planned reports whether a flush is planned before the record at next.
func (p *partition[P]) planned(next int64) bool {
	for _, f := range p.flushes {
		if f >= next {
			return f == next
		}
	}
	return false
}

// plannedFrom reports whether a flush is planned before a record at or
// after next: a previous owner's decision still ahead, before which this
// owner plans none of its own (flushes stay in offset order).
func (p *partition[P]) plannedFrom(next int64) bool {
	return len(p.flushes) > 0 && p.flushes[len(p.flushes)-1] >= next
}

// held returns how many events the reorder window holds.
func (p *partition[P]) held() int {
	if p.win == nil {
		return 0
	}
	return p.win.len()
}

// drain applies the held events that are due (all of them with all);
// next is the offset after the last record given.
func (p *partition[P]) drain(next int64, all bool, spans []lifecycle.Span, steps []step[P]) ([]lifecycle.Span, []step[P]) {
	for h := p.win.due(all); h != nil; h = p.win.due(all) {
		p.win.release(h)
		st := step[P]{before: p.cut, offset: h.offset, payload: h.payload}
		spans, st = p.apply(&h.ev, spans, st)
		var zero P
		h.payload = zero
		p.applied = max(p.applied, h.offset)
		spans, steps = p.done(spans, steps, st, next)
	}
	return spans, steps
}

// apply applies ev to the machine, at the latest cut.
func (p *partition[P]) apply(ev *schema.Event, spans []lifecycle.Span, st step[P]) ([]lifecycle.Span, step[P]) {
	spans, st.out = p.m.ApplySeen(ev, p.cut.Offset, spans)
	st.applied, st.stream = true, p.m.StreamTime()
	if st.out.Dropped() {
		st.reason, st.detail = st.out.Reason(), fmt.Sprintf("event %q of player %q: %s", ev.EventID, ev.PlayerID, st.out.Reason())
	}
	return spans, st
}

// done appends st, after which every record below next was given.
func (p *partition[P]) done(spans []lifecycle.Span, steps []step[P], st step[P], next int64) ([]lifecycle.Span, []step[P]) {
	st.spans = len(spans)
	if !st.warm {
		p.recut(next)
		st.next, st.low = p.cut, p.low()
	}
	return spans, append(steps, st)
}

// recut moves the cut to the first held record, or to next when nothing is
// held, if every record applied is below it.
func (p *partition[P]) recut(next int64) {
	c, ws := next, int64(-1)
	if p.win != nil {
		if h := p.win.first(); h != nil {
			c, ws = h.offset, h.ws
		}
	}
	if p.applied >= c {
		return
	}
	if ws < 0 {
		ws = p.windowStart(c)
	}
	p.cut = checkpoint.Point{Offset: c, StreamTime: p.m.StreamTime(), WindowStart: ws}
	p.cutLow = -1
	if lo, ok := p.m.LowestOffset(); ok {
		p.cutLow = lo
	}
}

// point returns where a commit may be made after the records below next
// were given: the latest cut.
func (p *partition[P]) point(next int64) checkpoint.Point {
	p.recut(next)
	return p.cut
}

// windowStart is the dedup window's start before the record at offset.
func (p *partition[P]) windowStart(offset int64) int64 {
	if ws, ok := p.m.WindowStart(); ok {
		return ws
	}
	return offset
}

// low returns the lowest first offset of a session open now or at the
// moment of the latest cut, -1 when none.
func (p *partition[P]) low() int64 {
	lo, ok := p.m.LowestOffset()
	switch {
	case !ok:
		return p.cutLow
	case p.cutLow >= 0:
		return min(lo, p.cutLow)
	}
	return lo
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
	// One call tells a missing timestamp (zero: year 1; Kafka's -1) and
	// one beyond what Unix nanoseconds hold.
	if sec := record.Unix(); sec <= 0 || sec >= math.MaxInt64/int64(time.Second) {
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
