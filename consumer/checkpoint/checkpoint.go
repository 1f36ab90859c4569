// Package checkpoint is one partition's commit rule: which records are
// still owed an acknowledgement, which offset may be committed, and what
// the commit carries so that the partition's next owner decides exactly as
// this one would have. It is pure (no Kafka, no clock) and not safe for
// concurrent use; the consumer's worker guards it with its mutex.
//
// # The commit rule
//
// A record's side effects are its spans and its dead-letter copy. The
// committable offset C is the lowest of:
//   - the offset after the last processed record;
//   - the first offset of every open session;
//   - the offset of the first record whose side effects are not all
//     acknowledged, and the first offset of every session open just before
//     it (such a session may have ended since, with spans still in flight:
//     the next owner must replay it from its first record to emit them).
//
// The exported-through mark H is the offset of that first unacknowledged
// record (or, when every one is acknowledged, the offset after the last
// processed one, or the previous owner's mark if that is higher): every span
// closed by a record below H was accepted. A new owner replays from C and
// emits only the spans closed by records at or after H.
//
// # What a new owner needs
//
// Replaying from C rebuilds every session that matters at H (they all
// started at or after C), but two things the old owner decided with depend
// on records below C: stream time (the largest event ts applied), which
// expires sessions, and the dedup window (the IDs of the last N events),
// which drops redeliveries. Stream time is a running maximum, so a new
// owner that starts at C with the old owner's stream time just before C has
// the old owner's stream time at every later record. The dedup window is a
// pure function of the last N events, so a new owner that re-reads them
// (from the offset of the oldest, the window start W ≤ C), remembering
// their IDs without applying them, has the old window at C. Every position
// the ledger can commit is a Point that carries both.
//
// # Snapshots
//
// Without more, one session open for hours pins C for hours, and every new
// owner replays everything since its login. A snapshot of the partition's
// state before the record at S (every open session, stream time, the dedup
// window; package lifecycle writes it) lets a new owner load it and replay
// from S instead. The ledger is told of a snapshot once it is durable
// (Snapshotted), and a commit may then be made at S with the snapshot named
// in its metadata, past open sessions, provided S is at or below the first
// record whose side effects are unacknowledged (the new owner must replay
// that record to emit its spans, and the snapshot holds the state the
// replay starts from). Of C without a snapshot and the latest such S, the
// higher is committed. A new owner that loads the snapshot decides exactly
// as the old owner would have, without the divergence below.
//
// Because the ledger hears of a snapshot only once it is durable, a commit
// that names one is always made after it can be read back: the snapshot is
// written and acknowledged first, the commit referring to it follows. A
// crash between the two leaves an unreferenced snapshot and the previous
// commit, which is still whole. No Kafka transaction is needed for that
// order; the snapshots a commit no longer names may be deleted only once a
// commit naming a later one succeeded.
//
// # Snapshots with held events
//
// With a reorder window, the consumer positions every record, and every
// event the window releases, at the latest cut: the first held record (or
// the next record when nothing is held), where every record below was
// applied and none above. A snapshot taken before the record at S while
// events are held is still the state before S, once it holds what the
// window holds (the held events, decoded, and the cut itself); the machine
// alone is not, since it has applied records above the first held one. The
// ledger needs no other rule for it: it is usable at limit ≥ S, as any
// snapshot, and limit is at most the cut, which stays at the first held
// record. So a commit names it only once every event held at S was
// released, the cut passed S, and every side effect positioned below S (the
// held records' spans and dead letters among them) is acknowledged; that
// commit's mark is at or above limit, so at or above S. A new owner that
// loads it puts the held events back in its window with the cut, and
// releases them at cuts below S, below the mark: as replayed records, which
// rebuild state and emit nothing, exactly what the previous owner's
// acknowledged side effects make right. This is also why a snapshot need not
// keep the held records themselves (the consumer keeps a held event's Kafka
// record only to dead-letter it). Until the new owner's cut passes S, its
// own cut is below S, so its commits would fall back below the commit it
// read; Restored keeps them at S instead, since below S it has nothing of
// its own to acknowledge. A quiet flush planned at S after the snapshot
// applies events the snapshot holds, so a commit at S naming the snapshot
// names that flush too (metadata version 4 with F1 = S), and the new owner
// flushes before the record at S as the old one did.
//
// Naming the snapshot earlier, while the held records' side effects are
// still to come, would also be sound if the new owner emitted the spans of
// the held events' releases (positioned from the cut below S on) and
// re-read their records to dead-letter them, but the mark would have to
// tell those apart from the spans positioned at the same cut before the
// snapshot, which the previous owner emitted; the ledger does not do that.
// The cost of waiting is one reorder window of wall time, or, on release,
// the final snapshot: a snapshot taken with events held after the last
// record can never be committed at by its owner, so none is written then.
//
// # Metadata format
//
// The commit's metadata string is
//
//	sessiontrace/v2 h=<H> t=<stream time before C, Unix ns> w=<W>
//
// with decimal integers (t may be negative; math.MinInt64 means no event was
// applied yet), at most 82 bytes, far below Kafka's default
// offset.metadata.max.bytes (4096). A commit at a snapshot is
//
//	sessiontrace/v3 h=<H> t=<T> w=<W> s=<ref>
//
// where t and w are those before C as in version 2 (the fallback should the
// snapshot be unreadable) and ref names the snapshot: at most MaxRefLen
// bytes of [A-Za-z0-9:._-] (the consumer's says where the snapshot's chunks
// are and their SHA-256), so at most 82+3+MaxRefLen bytes. A commit below
// quiet flushes (a reorder window's held events applied before the records
// at F1 < F2 < ..., all above C) is
//
//	sessiontrace/v4 h=<H> t=<T> w=<W>[ s=<ref>] f=<F1>,<F2>,...
//
// with at most MaxFlushes offsets, so at most 82+3+MaxRefLen+3+20*MaxFlushes
// bytes (under 2048): a new owner starting at C flushes before the same
// records. F1 may be C itself only in a commit naming a snapshot: one
// taken with events held before a flush was planned at its offset (builds
// before that rule ignore such metadata, as they would not load the
// snapshot either). Versions 2 and 3 are written whenever no flush is above C.
// Version 1,
// "sessiontrace/v1 h=<H>", is read too: a new owner then starts at C with no
// stream time and an empty window, as version 1 consumers did. Anything
// else (another tool's metadata) is ignored: the partition starts at the
// committed offset as if nothing was known.
//
// # Known divergence
//
// A session that started below C and ended before H is met by the new owner
// as a fragment (its tail, from C on, looks like a session that did not
// start with a login). It ends where the original ended (its last event, a
// timeout at the same stream time, or the same superseding login), below H,
// so nothing of it is emitted, except when the original ended by
// max_duration: the fragment started later, so its deadline is later, and
// it may live on past H and be emitted as an extra "unknown session" root.
// For the same reason, with max_duration expiries among sessions whose ts
// are out of order, a session may be expired at a different record than in
// the original run. Long max_duration values (the default is 24h) make both
// rare.
package checkpoint

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
)

// Point is a position in a partition with what holds just before it.
type Point struct {
	// Offset is the record the point is before.
	Offset int64
	// StreamTime is the stream time before that record (Unix nanoseconds;
	// math.MinInt64 when no event was applied yet).
	StreamTime int64
	// WindowStart is the offset of the oldest event in the dedup window
	// before that record; Offset itself when the window is empty.
	WindowStart int64
}

// Record is a processed record whose side effects are not all acknowledged
// yet. P is what the caller keeps of it (the Kafka record, in the
// consumer, to dead-letter it if the endpoint refuses one of its spans).
type Record[P any] struct {
	Point // where the record is, and what held before it
	// SpanStart and SpanEnd are the lane's emitted count before and after
	// the record's spans.
	SpanStart, SpanEnd int64
	// DeadLetters counts the record's dead-letter writes not yet
	// acknowledged; nil when it has none.
	DeadLetters *atomic.Int32
	// Payload is kept while the record's spans are unacknowledged.
	Payload P
	// Rejected is set once the record was dead-lettered for a refused span.
	Rejected bool
	// low is the lowest first offset of the sessions open just before the
	// record, -1 when none.
	low int64
}

// Position is what may be committed for a partition: the committable
// offset C with what holds before it, and the mark H.
type Position struct {
	Point
	Mark int64
	// Snapshot is the ref of the durable snapshot of the state before C that
	// the commit names, "" when it names none.
	Snapshot string
	// Flushes are the quiet flushes above C (version 4).
	Flushes Flushes
}

// MaxFlushes bounds the quiet flushes one commit names: at most 20 bytes
// each, with the rest of the metadata far below Kafka's default
// offset.metadata.max.bytes (4096).
const MaxFlushes = 32

// Flushes is a list of quiet flushes: the offsets of the records before
// which a partition applied every event its reorder window held, in
// ascending order. It is a value (comparable, like Position).
type Flushes struct {
	n  int
	at [MaxFlushes]int64
}

// Len returns how many flushes f holds.
func (f Flushes) Len() int { return f.n }

// At returns the i-th flush's offset.
func (f Flushes) At(i int) int64 { return f.at[i] }

// Has reports whether f holds a flush before the record at offset.
func (f Flushes) Has(offset int64) bool {
	for i := range f.n {
		if f.at[i] == offset {
			return true
		}
	}
	return false
}

// Slice returns f's offsets, nil when it holds none.
func (f Flushes) Slice() []int64 {
	if f.n == 0 {
		return nil
	}
	return append([]int64(nil), f.at[:f.n]...)
}

// Snapshot is a durable snapshot of the partition's state before the record
// at Point.Offset, and the ref a commit names it by.
type Snapshot struct {
	Point
	Ref string
}

// MaxRefLen bounds a snapshot ref, so that a commit's metadata stays far
// below Kafka's default offset.metadata.max.bytes (4096).
const MaxRefLen = 256

// Ledger is one partition's pending records and the points a commit may
// be made at. Besides the pending records it keeps one Point (24 bytes) per
// session started since the committable offset, so a session that pins the
// offset for long makes it grow with the sessions started meanwhile.
type Ledger[P any] struct {
	pending []Record[P]
	// starts are the points of the records that started a session, from
	// the last committable offset on: a session's first offset may become
	// the committable offset.
	starts []Point
	next   Point // before the next record; Offset -1 before the first
	low    int64 // lowest first offset of an open session, -1 when none
	mark   int64 // the previous owner's mark, -1 when none
	// snaps are the durable snapshots not yet passed by a later one that
	// could be committed, in offset order: the first is the one the last
	// position named, if any.
	snaps []Snapshot
	// flushes are the quiet flushes above the last committable offset, in
	// offset order.
	flushes []int64
	// restored is the offset of the snapshot this owner resumed from, -1
	// when none (Restored).
	restored int64
}

// New returns an empty ledger. prevMark is the mark read back from the
// partition's commit (-1 when none): until this owner's own mark passes it,
// a commit keeps it, so a crash does not re-emit what the previous owner
// exported.
func New[P any](prevMark int64) *Ledger[P] {
	return &Ledger[P]{next: Point{Offset: -1}, low: -1, mark: prevMark, restored: -1}
}

// Resume sets the previous owner's mark, read back from the commit after
// the ledger was made, before the first record is processed.
func (l *Ledger[P]) Resume(prevMark int64) { l.mark = prevMark }

// Started records that the record at p starts a session. Calls come in
// offset order, before Processed for the same record.
func (l *Ledger[P]) Started(p Point) { l.starts = append(l.starts, p) }

// Add records a processed record whose side effects are pending, before
// they are emitted (an emission may be refused before Add's caller
// returns). Calls come in offset order, before Processed for the record.
func (l *Ledger[P]) Add(r Record[P]) {
	r.low = l.low
	l.pending = append(l.pending, r)
}

// Processed records that every record up to next.Offset is processed, and
// the lowest first offset of a session open now (-1 when none).
func (l *Ledger[P]) Processed(next Point, low int64) {
	l.next, l.low = next, low
}

// Snapshotted records that a snapshot of the state before the record at
// s.Offset is durable (Kafka acknowledged every byte of it). Offsets do not
// decrease from call to call; s.Ref must be a valid ref (ValidRef).
func (l *Ledger[P]) Snapshotted(s Snapshot) { l.snaps = append(l.snaps, s) }

// Restored records that this owner resumed from the durable snapshot s,
// which the commit it read back named (before the first record is
// processed, after Resume). Until this owner's own commit rule allows a
// later position, it may commit at s: with the previous owner's mark at or
// above s.Offset, every record this owner positions below s.Offset (the
// snapshot's held events, released at cuts below it) is a replayed one
// whose side effects the previous owner had acknowledged, so s is the
// state a next owner needs, as it was for this one. (Snapshotted would not
// do: this owner's cut stays below s.Offset until those events are out.)
func (l *Ledger[P]) Restored(s Snapshot) {
	l.snaps = append(l.snaps, s)
	l.restored = s.Offset
}

// Flushed records a quiet flush before the record at offset: a decision
// of this owner's (or of a previous one, read back from the commit) that a
// new owner starting below offset must take too, so every position below
// it names it. Offsets increase from call to call; at most MaxFlushes may
// be above the committable offset at a time (Flushes tells how many are).
func (l *Ledger[P]) Flushed(offset int64) {
	if n := len(l.flushes); n > 0 && l.flushes[n-1] >= offset || n >= MaxFlushes {
		panic(fmt.Sprintf("checkpoint: flush at %d after %v", offset, l.flushes))
	}
	l.flushes = append(l.flushes, offset)
}

// Flushes returns how many quiet flushes are above the committable offset
// of the last Position.
func (l *Ledger[P]) Flushes() int { return len(l.flushes) }

// ValidRef reports whether ref may name a snapshot in a commit's metadata.
func ValidRef(ref string) bool {
	if ref == "" || len(ref) > MaxRefLen {
		return false
	}
	for i := 0; i < len(ref); i++ {
		c := ref[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == ':' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// Pending returns the pending record whose spans include emission index
// seq, or nil.
func (l *Ledger[P]) Pending(seq int64) *Record[P] {
	i := sort.Search(len(l.pending), func(i int) bool { return l.pending[i].SpanEnd > seq })
	if i == len(l.pending) || l.pending[i].SpanStart > seq {
		return nil
	}
	return &l.pending[i]
}

// Position forgets the records whose side effects are acknowledged (every
// span below acked, no dead-letter write outstanding) and returns what may
// be committed, and false when nothing was processed yet.
func (l *Ledger[P]) Position(acked int64) (Position, bool) {
	if l.next.Offset < 0 {
		return Position{}, false
	}
	i := 0
	for ; i < len(l.pending); i++ {
		p := &l.pending[i]
		if p.SpanEnd > acked || (p.DeadLetters != nil && p.DeadLetters.Load() != 0) {
			break
		}
	}
	if i > 0 {
		n := copy(l.pending, l.pending[i:])
		clear(l.pending[n:]) // the payloads they hold can be collected
		l.pending = l.pending[:n]
	}
	at, low, mark := l.next, l.low, l.next.Offset
	if len(l.pending) > 0 {
		// The sessions open just before the first unacknowledged record
		// include every session with a span still to acknowledge that
		// started below it (and every session open now that did).
		at, low, mark = l.pending[0].Point, l.pending[0].low, l.pending[0].Offset
	} else if l.mark > mark {
		// Everything this owner did is acknowledged, and it has not yet
		// passed the previous owner's mark: keep that mark. The offset
		// stays at what this owner processed: records between them may
		// start sessions that outlive the mark.
		mark = l.mark
	}
	// limit is the first record the next owner must replay: a snapshot at
	// or below it may be committed at.
	limit := at.Offset
	if l.restored > limit && l.mark >= l.restored {
		// Below the restored snapshot everything is the previous owner's
		// and acknowledged (Restored).
		limit = l.restored
	}
	if low >= 0 && low < at.Offset {
		at = l.start(low)
	}
	ref := ""
	k := sort.Search(len(l.snaps), func(k int) bool { return l.snaps[k].Offset > limit }) - 1
	if k >= 0 && l.snaps[k].Offset > at.Offset {
		at, ref = l.snaps[k].Point, l.snaps[k].Ref
	}
	if k > 0 {
		// Snapshots below the one usable now are never committed at again.
		n := copy(l.snaps, l.snaps[k:])
		l.snaps = l.snaps[:n]
	}
	// The committable offset never decreases (sessions open before a
	// later record that started below an earlier one were open before
	// it too), so the starts below it are never needed again.
	j := sort.Search(len(l.starts), func(j int) bool { return l.starts[j].Offset >= at.Offset })
	if j > 0 {
		n := copy(l.starts, l.starts[j:])
		l.starts = l.starts[:n]
	}
	// A new owner starting at the committed offset reads every record
	// above it again, so it must flush before the same records; a flush at
	// or below the offset is behind it, except one at a snapshot's offset:
	// a snapshot taken with events held, before a quiet flush was planned
	// there, holds them, and the new owner must flush them before the
	// record at the offset as this one did.
	f := sort.Search(len(l.flushes), func(f int) bool {
		return l.flushes[f] > at.Offset || ref != "" && l.flushes[f] == at.Offset
	})
	if f > 0 {
		n := copy(l.flushes, l.flushes[f:])
		l.flushes = l.flushes[:n]
	}
	pos := Position{Point: at, Mark: mark, Snapshot: ref}
	pos.Flushes.n = copy(pos.Flushes.at[:], l.flushes)
	return pos, true
}

// start returns the point of the record that started the session whose
// first offset is off.
func (l *Ledger[P]) start(off int64) Point {
	j := sort.Search(len(l.starts), func(j int) bool { return l.starts[j].Offset >= off })
	if j < len(l.starts) && l.starts[j].Offset == off {
		return l.starts[j]
	}
	// Started was not called for a session's first record: a caller bug.
	// The offset alone is still safe to commit; the next owner then starts
	// without stream time, as from a version 1 commit.
	return Point{Offset: off, StreamTime: math.MinInt64, WindowStart: off}
}

// Metadata is what a commit carries besides its offset.
type Metadata struct {
	// Mark is the exported-through mark H.
	Mark int64
	// Resume is set when the commit carries the stream time and dedup
	// window start at its offset (version 2).
	Resume bool
	// StreamTime is the stream time before the committed offset.
	StreamTime int64
	// WindowStart is where the dedup window at the committed offset
	// starts: the new owner re-reads from there.
	WindowStart int64
	// Snapshot is the ref of the snapshot of the state at the committed
	// offset (version 3), "" when the commit names none.
	Snapshot string
	// Flushes are the offsets, above the committed one and ascending, of
	// the records before which the previous owner flushed its reorder
	// window (version 4), nil when none.
	Flushes []int64
}

const (
	prefixV1 = "sessiontrace/v1 h="
	prefixV2 = "sessiontrace/v2 "
	prefixV3 = "sessiontrace/v3 "
	prefixV4 = "sessiontrace/v4 "
)

// Format returns the metadata string of a commit at pos: version 4 when it
// names quiet flushes, else version 3 when it names a snapshot, else
// version 2.
func Format(pos Position) string {
	if pos.Flushes.n > 0 {
		var b strings.Builder
		fmt.Fprintf(&b, "%sh=%d t=%d w=%d", prefixV4, pos.Mark, pos.StreamTime, pos.WindowStart)
		if pos.Snapshot != "" {
			b.WriteString(" s=" + pos.Snapshot)
		}
		for i := range pos.Flushes.n {
			if i == 0 {
				b.WriteString(" f=")
			} else {
				b.WriteByte(',')
			}
			b.WriteString(strconv.FormatInt(pos.Flushes.at[i], 10))
		}
		return b.String()
	}
	if pos.Snapshot != "" {
		return fmt.Sprintf("%sh=%d t=%d w=%d s=%s", prefixV3, pos.Mark, pos.StreamTime, pos.WindowStart, pos.Snapshot)
	}
	return fmt.Sprintf("%sh=%d t=%d w=%d", prefixV2, pos.Mark, pos.StreamTime, pos.WindowStart)
}

// Parse reads a commit's metadata string for a commit at offset, and
// reports false when it is not ours or is invalid (a window start above the
// offset, a negative mark).
func Parse(s string, offset int64) (Metadata, bool) {
	if rest, ok := strings.CutPrefix(s, prefixV1); ok {
		h, err := strconv.ParseInt(rest, 10, 64)
		if err != nil || h < 0 {
			return Metadata{}, false
		}
		return Metadata{Mark: h}, true
	}
	var flushes []int64
	if rest, ok := strings.CutPrefix(s, prefixV4); ok {
		i := strings.LastIndex(rest, " f=")
		if i < 0 {
			return Metadata{}, false
		}
		list := strings.Split(rest[i+len(" f="):], ",")
		if len(list) > MaxFlushes {
			return Metadata{}, false
		}
		// A flush at the committed offset itself only with a snapshot.
		last := offset
		if strings.Contains(rest[:i], " s=") {
			last--
		}
		for _, num := range list {
			f, err := strconv.ParseInt(num, 10, 64)
			if err != nil || f <= last {
				return Metadata{}, false
			}
			flushes, last = append(flushes, f), f
		}
		// The rest is version 3's when it names a snapshot, else version 2's.
		rest = rest[:i]
		if strings.Contains(rest, " s=") {
			s = prefixV3 + rest
		} else {
			s = prefixV2 + rest
		}
	}
	rest, ok := strings.CutPrefix(s, prefixV2)
	var ref string
	if !ok {
		if rest, ok = strings.CutPrefix(s, prefixV3); !ok {
			return Metadata{}, false
		}
		var r string
		if rest, r, ok = strings.Cut(rest, " s="); !ok || !ValidRef(r) {
			return Metadata{}, false
		}
		ref = r
	}
	fields := strings.Split(rest, " ")
	if len(fields) != 3 {
		return Metadata{}, false
	}
	var v [3]int64
	for i, key := range []string{"h=", "t=", "w="} {
		num, ok := strings.CutPrefix(fields[i], key)
		if !ok {
			return Metadata{}, false
		}
		n, err := strconv.ParseInt(num, 10, 64)
		if err != nil {
			return Metadata{}, false
		}
		v[i] = n
	}
	if v[0] < 0 || v[2] < 0 || v[2] > offset {
		return Metadata{}, false
	}
	return Metadata{Mark: v[0], Resume: true, StreamTime: v[1], WindowStart: v[2], Snapshot: ref, Flushes: flushes}, true
}
