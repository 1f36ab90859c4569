package consumer

import (
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
// metrics: decode, the timestamp bounds, the state machine, and where a
// resumed partition starts applying. The worker runs records through it;
// the resume property is tested on it directly.
type partition struct {
	dec          schema.RecordDecoder
	m            *lifecycle.Machine
	ev           schema.Event
	future, past time.Duration
	// applyFrom is the committed offset of a resumed partition: records
	// below it (from the dedup window's start on) only refill the dedup
	// window. -1 when every record is applied.
	applyFrom int64
}

func newPartition(cfg Config) (*partition, error) {
	dec, err := schema.NewRecordDecoder(cfg.Limits, cfg.Mapping)
	if err != nil {
		return nil, err
	}
	if cfg.Pseudonyms != nil {
		dec = cfg.Pseudonyms.Pseudonymized(dec)
	}
	m, err := lifecycle.New(cfg.Lifecycle)
	if err != nil {
		return nil, err
	}
	return &partition{dec: dec, m: m, future: cfg.MaxFutureSkew, past: cfg.MaxPastSkew, applyFrom: -1}, nil
}

// resume makes the partition continue from a commit at offset carrying meta:
// with a version 2 commit, the previous owner's stream time there, and
// records below it only refilling the dedup window.
func (p *partition) resume(offset int64, meta checkpoint.Metadata) {
	if !meta.Resume {
		return
	}
	p.m.Resume(meta.StreamTime)
	p.applyFrom = offset
}

// restore makes the partition continue from a commit at offset whose
// metadata names a snapshot, read from snap: the machine takes the
// snapshot's state (verified by its SHA-256) and every record from offset on
// is applied. On error the partition is unchanged, and the caller falls
// back.
func (p *partition) restore(offset int64, meta checkpoint.Metadata, snap io.Reader) (lifecycle.SnapshotInfo, error) {
	info, err := p.m.ReadSnapshot(snap)
	if err != nil {
		return info, fmt.Errorf("restore snapshot %s at offset %d: %w", meta.Snapshot, offset, err)
	}
	p.applyFrom = -1
	return info, nil
}

// step is what one record did.
type step struct {
	// before is the record's point: where it is, and the stream time and
	// dedup window start before it.
	before checkpoint.Point
	// warm is set for a record below the committed offset of a resumed
	// partition: it only refilled the dedup window.
	warm bool
	// ignored is set for a record whose event name the mapping ignores:
	// skipped and counted, not dead-lettered.
	ignored bool
	out     lifecycle.Outcome
	// badLink says why the event's traceparent was ignored, "" when it had
	// none or a valid one; the event is applied all the same.
	badLink string
	// reason is why the record goes to the dead-letter topic, "" when it
	// does not; detail says more.
	reason, detail string
}

// process runs the record at offset (its key, value and headers, and its
// Kafka timestamp, zero when unknown) through the decoder, the bounds and
// the state machine, appending the spans it finishes to spans.
func (p *partition) process(rec *schema.Record, ts time.Time, offset int64, spans []lifecycle.Span) ([]lifecycle.Span, step) {
	st := step{before: p.point(offset), warm: offset < p.applyFrom}
	if err := p.dec.DecodeRecord(rec, &p.ev); errors.Is(err, schema.ErrIgnored) {
		st.ignored = true
		return spans, st
	} else if err != nil {
		st.reason, st.detail = string(schema.ReasonMalformed), err.Error()
		var se *schema.Error
		if errors.As(err, &se) {
			st.reason = string(se.Reason)
		}
		return spans, st
	}
	st.badLink = p.ev.LinkError
	if skew := skewReason(p.ev.TS, ts, p.future, p.past); skew != "" {
		// Never applied: a ts far from the record's own time would move
		// stream time and end the partition's sessions.
		st.reason, st.detail = skew, fmt.Sprintf("event %q of player %q: ts %s, record timestamp %s",
			p.ev.EventID, p.ev.PlayerID, time.Unix(0, p.ev.TS).UTC().Format(time.RFC3339Nano), ts.UTC().Format(time.RFC3339Nano))
		return spans, st
	}
	if st.warm {
		p.m.Remember(p.ev.EventID, offset)
		return spans, st
	}
	spans, st.out = p.m.Apply(&p.ev, offset, spans)
	if st.out.Dropped() {
		st.reason, st.detail = st.out.Reason(), fmt.Sprintf("event %q of player %q: %s", p.ev.EventID, p.ev.PlayerID, st.out.Reason())
	}
	return spans, st
}

// point is the position before the record at offset, given everything
// below it was processed.
func (p *partition) point(offset int64) checkpoint.Point {
	ws, ok := p.m.WindowStart()
	if !ok {
		ws = offset
	}
	return checkpoint.Point{Offset: offset, StreamTime: p.m.StreamTime(), WindowStart: ws}
}

// low returns the lowest first offset of an open session, -1 when none.
func (p *partition) low() int64 {
	if lo, ok := p.m.LowestOffset(); ok {
		return lo
	}
	return -1
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
