package checkpoint

import (
	"math"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
)

func pt(off int64) Point { return Point{Offset: off, StreamTime: 1000 + off, WindowStart: off / 2} }

// TestPosition walks one ledger through the cases of the commit rule.
func TestPosition(t *testing.T) {
	type step struct {
		name string
		do   func(l *Ledger[string])
		// acked is the lane's acknowledged span count at the position.
		acked int64
		want  Position
	}
	dl := new(atomic.Int32)
	steps := []step{
		{"a session starts at 0, its login span unacknowledged", func(l *Ledger[string]) {
			l.Started(pt(0))
			l.Add(Record[string]{Point: pt(0), SpanStart: 0, SpanEnd: 1, Payload: "r0"})
			l.Processed(pt(1), 0)
		}, 0, Position{Point: pt(0), Mark: 0}},
		{"acknowledged, but the session is open", func(l *Ledger[string]) {}, 1, Position{Point: pt(0), Mark: 1}},
		{"a second session starts at 1; the first ends at 2 unacknowledged", func(l *Ledger[string]) {
			l.Started(pt(1))
			l.Processed(pt(2), 0)
			l.Add(Record[string]{Point: pt(2), SpanStart: 1, SpanEnd: 3, Payload: "r2"})
			l.Processed(pt(3), 1)
		}, 1, Position{Point: pt(0), Mark: 2}},
		{"the end is acknowledged: the open second session holds the offset", func(l *Ledger[string]) {}, 3, Position{Point: pt(1), Mark: 3}},
		{"a dead letter in flight at 3 holds the mark", func(l *Ledger[string]) {
			dl.Store(1)
			l.Add(Record[string]{Point: pt(3), SpanStart: 3, SpanEnd: 3, DeadLetters: dl})
			l.Processed(pt(4), 1)
		}, 3, Position{Point: pt(1), Mark: 3}},
		{"written; the second session ends at 4, acknowledged", func(l *Ledger[string]) {
			dl.Store(0)
			l.Add(Record[string]{Point: pt(4), SpanStart: 3, SpanEnd: 4, Payload: "r4"})
			l.Processed(pt(5), -1)
		}, 4, Position{Point: pt(5), Mark: 5}},
	}
	l := New[string](-1)
	if _, ok := l.Position(0); ok {
		t.Fatal("a position before any record was processed")
	}
	for _, s := range steps {
		s.do(l)
		got, ok := l.Position(s.acked)
		if !ok || got != s.want {
			t.Fatalf("%s: Position(%d) = %+v, %t; want %+v", s.name, s.acked, got, ok, s.want)
		}
	}
}

// TestPositionKeepsThePreviousMark checks that a new owner's commit keeps
// the previous owner's mark until it passes it, without committing an
// offset beyond what it processed: records between them may start sessions
// that outlive the mark.
func TestPositionKeepsThePreviousMark(t *testing.T) {
	l := New[string](-1)
	l.Resume(10)
	l.Processed(pt(4), -1)
	got, _ := l.Position(0)
	if want := (Position{Point: pt(4), Mark: 10}); got != want {
		t.Fatalf("Position = %+v, want %+v", got, want)
	}
}

// TestPositionSnapshots: a durable snapshot lets the commit pass an open
// session, but never a record whose spans are unacknowledged.
func TestPositionSnapshots(t *testing.T) {
	snap := func(off int64) Snapshot { return Snapshot{Point: pt(off), Ref: "0:" + string(rune('0'+off))} }
	type step struct {
		name  string
		do    func(l *Ledger[string])
		acked int64
		want  Position
	}
	steps := []step{
		{"a session opens at 0 and stays open", func(l *Ledger[string]) {
			l.Started(pt(0))
			l.Add(Record[string]{Point: pt(0), SpanStart: 0, SpanEnd: 1, Payload: "r0"})
			l.Processed(pt(3), 0)
		}, 1, Position{Point: pt(0), Mark: 3}},
		{"a snapshot before 3 is durable: the commit passes the session", func(l *Ledger[string]) {
			l.Snapshotted(snap(3))
		}, 1, Position{Point: pt(3), Mark: 3, Snapshot: snap(3).Ref}},
		{"record 4 emits a span, unacknowledged; a snapshot at 5 is durable", func(l *Ledger[string]) {
			l.Add(Record[string]{Point: pt(4), SpanStart: 1, SpanEnd: 2, Payload: "r4"})
			l.Processed(pt(5), 0)
			l.Snapshotted(snap(5))
		}, 1, Position{Point: pt(3), Mark: 4, Snapshot: snap(3).Ref}},
		{"acknowledged: the later snapshot is committed at", func(l *Ledger[string]) {}, 2, Position{Point: pt(5), Mark: 5, Snapshot: snap(5).Ref}},
		{"the session ends: nothing open, the plain offset is higher", func(l *Ledger[string]) {
			l.Add(Record[string]{Point: pt(6), SpanStart: 2, SpanEnd: 3, Payload: "r6"})
			l.Processed(pt(7), -1)
		}, 3, Position{Point: pt(7), Mark: 7}},
	}
	l := New[string](-1)
	for _, s := range steps {
		s.do(l)
		got, ok := l.Position(s.acked)
		if !ok || got != s.want {
			t.Fatalf("%s: Position(%d) = %+v, %t; want %+v", s.name, s.acked, got, ok, s.want)
		}
	}
}

func TestPending(t *testing.T) {
	l := New[string](-1)
	l.Add(Record[string]{Point: pt(0), SpanStart: 0, SpanEnd: 2, Payload: "a"})
	l.Add(Record[string]{Point: pt(1), SpanStart: 2, SpanEnd: 2})
	l.Add(Record[string]{Point: pt(2), SpanStart: 2, SpanEnd: 5, Payload: "c"})
	for seq, want := range map[int64]string{0: "a", 1: "a", 2: "c", 4: "c", 5: ""} {
		got := ""
		if p := l.Pending(seq); p != nil {
			got = p.Payload
		}
		if got != want {
			t.Errorf("Pending(%d) = %q, want %q", seq, got, want)
		}
	}
}

func TestMetadata(t *testing.T) {
	pos := Position{Point: Point{Offset: 500, StreamTime: -42, WindowStart: 120}, Mark: 1234}
	tests := []struct {
		name   string
		in     string
		offset int64
		want   Metadata
		ok     bool
	}{
		{"v2", Format(pos), 500, Metadata{Mark: 1234, Resume: true, StreamTime: -42, WindowStart: 120}, true},
		{"v2 no stream time yet", Format(Position{Point: Point{StreamTime: math.MinInt64}}), 0, Metadata{Resume: true, StreamTime: math.MinInt64}, true},
		{"v1", "sessiontrace/v1 h=1234", 500, Metadata{Mark: 1234}, true},
		{"v1 zero", "sessiontrace/v1 h=0", 0, Metadata{}, true},
		{"empty", "", 0, Metadata{}, false},
		{"another tool's", "some-other-tool", 0, Metadata{}, false},
		{"v1 negative", "sessiontrace/v1 h=-5", 0, Metadata{}, false},
		{"v1 garbage number", "sessiontrace/v1 h=12x", 0, Metadata{}, false},
		{"v2 window above the offset", Format(pos), 100, Metadata{}, false},
		{"v2 missing field", "sessiontrace/v2 h=1 t=2", 10, Metadata{}, false},
		{"v2 fields swapped", "sessiontrace/v2 t=2 h=1 w=0", 10, Metadata{}, false},
		{"v2 negative mark", "sessiontrace/v2 h=-1 t=2 w=0", 10, Metadata{}, false},
		{"v3", Format(Position{Point: pos.Point, Mark: pos.Mark, Snapshot: "3:77:2:ab12"}), 500,
			Metadata{Mark: 1234, Resume: true, StreamTime: -42, WindowStart: 120, Snapshot: "3:77:2:ab12"}, true},
		{"v3 empty ref", "sessiontrace/v3 h=1 t=2 w=0 s=", 10, Metadata{}, false},
		{"v3 bad ref", "sessiontrace/v3 h=1 t=2 w=0 s=a b", 10, Metadata{}, false},
		{"v3 no ref", "sessiontrace/v3 h=1 t=2 w=0", 10, Metadata{}, false},
		{"v4", Format(Position{Point: pos.Point, Mark: pos.Mark, Flushes: flushes(501, 900)}), 500,
			Metadata{Mark: 1234, Resume: true, StreamTime: -42, WindowStart: 120, Flushes: []int64{501, 900}}, true},
		{"v4 with a snapshot", Format(Position{Point: pos.Point, Mark: pos.Mark, Snapshot: "3:77:2:ab12", Flushes: flushes(700)}), 500,
			Metadata{Mark: 1234, Resume: true, StreamTime: -42, WindowStart: 120, Snapshot: "3:77:2:ab12", Flushes: []int64{700}}, true},
		{"v4 flush at the offset", "sessiontrace/v4 h=1 t=2 w=0 f=10", 10, Metadata{}, false},
		{"v4 flush at a snapshot's offset", "sessiontrace/v4 h=12 t=2 w=0 s=0:1:1:ab f=10,11", 10,
			Metadata{Mark: 12, Resume: true, StreamTime: 2, WindowStart: 0, Snapshot: "0:1:1:ab", Flushes: []int64{10, 11}}, true},
		{"v4 flush below a snapshot's offset", "sessiontrace/v4 h=12 t=2 w=0 s=0:1:1:ab f=9", 10, Metadata{}, false},
		{"v4 flushes not ascending", "sessiontrace/v4 h=1 t=2 w=0 f=12,11", 10, Metadata{}, false},
		{"v4 empty flush list", "sessiontrace/v4 h=1 t=2 w=0 f=", 10, Metadata{}, false},
		{"v4 no flush list", "sessiontrace/v4 h=1 t=2 w=0", 10, Metadata{}, false},
		{"v4 bad ref", "sessiontrace/v4 h=1 t=2 w=0 s=a b f=11", 10, Metadata{}, false},
		{"v4 too many flushes", "sessiontrace/v4 h=1 t=2 w=0 f=" + strings.Repeat("1,", MaxFlushes) + "1", 0, Metadata{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := Parse(tt.in, tt.offset)
			if !reflect.DeepEqual(got, tt.want) || ok != tt.ok {
				t.Fatalf("Parse(%q, %d) = %+v, %t; want %+v, %t", tt.in, tt.offset, got, ok, tt.want, tt.ok)
			}
		})
	}
	longest := Format(Position{Point: Point{Offset: math.MaxInt64, StreamTime: math.MinInt64, WindowStart: math.MaxInt64}, Mark: math.MaxInt64})
	if len(longest) > 82 {
		t.Errorf("longest metadata is %d bytes, documented at most 82: %s", len(longest), longest)
	}
	longest = Format(Position{Point: Point{Offset: math.MaxInt64, StreamTime: math.MinInt64, WindowStart: math.MaxInt64},
		Mark: math.MaxInt64, Snapshot: strings.Repeat("a", MaxRefLen)})
	if len(longest) > 82+3+MaxRefLen || len(longest) > 1024 {
		t.Errorf("longest v3 metadata is %d bytes, documented at most %d", len(longest), 82+3+MaxRefLen)
	}
	var most Flushes
	for i := range MaxFlushes {
		most.at[i] = math.MaxInt64 - MaxFlushes + int64(i)
	}
	most.n = MaxFlushes
	longest = Format(Position{Point: Point{Offset: math.MaxInt64, StreamTime: math.MinInt64, WindowStart: math.MaxInt64},
		Mark: math.MaxInt64, Snapshot: strings.Repeat("a", MaxRefLen), Flushes: most})
	if max := 82 + 3 + MaxRefLen + 3 + 20*MaxFlushes; len(longest) > max || len(longest) > 2048 {
		t.Errorf("longest v4 metadata is %d bytes, documented at most %d", len(longest), max)
	}
}

func flushes(offsets ...int64) Flushes {
	var f Flushes
	f.n = copy(f.at[:], offsets)
	return f
}

// TestPositionFlushes: every position below a quiet flush names it, and
// positions at or above it do not.
func TestPositionFlushes(t *testing.T) {
	l := New[bool](-1)
	l.Started(Point{Offset: 0})
	l.Processed(Point{Offset: 3}, 0) // a session open since offset 0
	l.Flushed(3)
	l.Processed(Point{Offset: 6}, 0)
	l.Flushed(6)
	if pos, _ := l.Position(0); pos.Offset != 0 || pos.Flushes != flushes(3, 6) {
		t.Fatalf("position %+v, want offset 0 naming flushes 3 and 6", pos)
	}
	l.Processed(Point{Offset: 8}, -1) // the session ended
	pos, _ := l.Position(0)
	if pos.Offset != 8 || pos.Flushes.Len() != 0 || l.Flushes() != 0 {
		t.Fatalf("position %+v (%d flushes kept), want offset 8 naming none", pos, l.Flushes())
	}
	meta, ok := Parse(Format(pos), pos.Offset)
	if !ok || meta.Flushes != nil {
		t.Fatalf("metadata %+v, %t", meta, ok)
	}
}

// TestPositionHeldSnapshots: a snapshot taken while a reorder window holds
// events (the cut stays at the first held record, below the snapshot) is
// committed at only once the cut passed it; an owner restored from it
// commits at it while the events it held wait at a cut below it, as long as
// the previous owner's mark is at or above it.
func TestPositionHeldSnapshots(t *testing.T) {
	snap := func(off int64) Snapshot { return Snapshot{Point: pt(off), Ref: "0:" + string(rune('0'+off))} }
	type step struct {
		name  string
		do    func(l *Ledger[string])
		acked int64
		want  Position
	}
	for _, tc := range []struct {
		name     string
		prevMark int64 // -1: the owner that takes the snapshot
		steps    []step
	}{
		{"taken", -1, []step{
			{"a session opens at 0; record 2 is held, records 3 and 4 applied at the cut 2", func(l *Ledger[string]) {
				l.Started(pt(0))
				l.Add(Record[string]{Point: pt(0), SpanStart: 0, SpanEnd: 1})
				l.Add(Record[string]{Point: pt(2), SpanStart: 1, SpanEnd: 2})
				l.Processed(pt(2), 0)
			}, 2, Position{Point: pt(0), Mark: 2}},
			{"a snapshot before 5, with record 2 held: not yet", func(l *Ledger[string]) {
				l.Snapshotted(snap(5))
			}, 2, Position{Point: pt(0), Mark: 2}},
			{"record 2 released at the cut 2, its span unacknowledged; the cut moves to 6", func(l *Ledger[string]) {
				l.Add(Record[string]{Point: pt(2), SpanStart: 2, SpanEnd: 3})
				l.Processed(pt(6), 0)
			}, 2, Position{Point: pt(0), Mark: 2}},
			{"acknowledged: the snapshot is committed at", func(l *Ledger[string]) {}, 3, Position{Point: pt(5), Mark: 6, Snapshot: snap(5).Ref}},
		}},
		{"restored", 6, []step{
			{"the restored events wait at the cut 2, replayed", func(l *Ledger[string]) {
				l.Restored(snap(5))
				l.Processed(pt(2), 0)
			}, 0, Position{Point: pt(5), Mark: 6, Snapshot: snap(5).Ref}},
			{"the restored events are out; record 6 emits a span at the cut 6, unacknowledged", func(l *Ledger[string]) {
				l.Add(Record[string]{Point: pt(6), SpanStart: 0, SpanEnd: 1})
				l.Processed(pt(7), 0)
			}, 0, Position{Point: pt(5), Mark: 6, Snapshot: snap(5).Ref}},
			{"acknowledged, the restored session still open", func(l *Ledger[string]) {}, 1, Position{Point: pt(5), Mark: 7, Snapshot: snap(5).Ref}},
		}},
		{"taken, then a quiet flush there", -1, []step{
			{"a session opens at 0; record 2 is held; a snapshot before 3", func(l *Ledger[string]) {
				l.Started(pt(0))
				l.Add(Record[string]{Point: pt(0), SpanStart: 0, SpanEnd: 1})
				l.Processed(pt(2), 0)
				l.Snapshotted(snap(3))
			}, 1, Position{Point: pt(0), Mark: 2}},
			{"the partition goes quiet: a flush before 3 is planned", func(l *Ledger[string]) {
				l.Flushed(3)
			}, 1, Position{Point: pt(0), Mark: 2, Flushes: flushes(3)}},
			{"applied, acknowledged: the snapshot holds record 2, so the commit at it names the flush", func(l *Ledger[string]) {
				l.Add(Record[string]{Point: pt(2), SpanStart: 1, SpanEnd: 2})
				l.Processed(pt(3), 0)
			}, 2, Position{Point: pt(3), Mark: 3, Snapshot: snap(3).Ref, Flushes: flushes(3)}},
			{"record 3 applied, the session ends: the plain offset passes both", func(l *Ledger[string]) {
				l.Add(Record[string]{Point: pt(3), SpanStart: 2, SpanEnd: 3})
				l.Processed(pt(4), -1)
			}, 3, Position{Point: pt(4), Mark: 4}},
		}},
		{"restored below its mark", 4, []step{
			// Not written by this package's rule (the mark of a commit at a
			// snapshot is at or above it); without the guarantee the
			// restored owner may emit spans below the snapshot, so it
			// keeps to its own rule.
			{"the restored events wait at the cut 2", func(l *Ledger[string]) {
				l.Restored(snap(5))
				l.Processed(pt(2), 0)
			}, 0, Position{Point: Point{Offset: 0, StreamTime: math.MinInt64, WindowStart: 0}, Mark: 4}},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := New[string](tc.prevMark)
			for _, s := range tc.steps {
				s.do(l)
				got, ok := l.Position(s.acked)
				if !ok || got != s.want {
					t.Fatalf("%s: Position(%d) = %+v, %t; want %+v", s.name, s.acked, got, ok, s.want)
				}
			}
		})
	}
}
