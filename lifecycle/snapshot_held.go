package lifecycle

import (
	"fmt"
	"math"

	"github.com/sessiontrace/sessiontrace/schema"
)

// Reorder is the state of the caller's reorder window at the moment of a
// snapshot: the events it holds (decoded, not yet applied to the Machine,
// whose dedup window already remembers their IDs) and the positions the
// caller keeps alongside them. A snapshot of a Machine alone is the state
// before an offset only where the window holds nothing; with events held,
// the Machine has applied events of records above the first held one, so
// the held events and the caller's positions are part of that state too.
// The package stores them and gives them back; it does not interpret the
// positions (package consumer's partition explains them).
type Reorder struct {
	// Latest is the largest ts the window was given (Unix nanoseconds).
	Latest int64
	// Cut, CutStreamTime and CutWindowStart are the caller's latest cut
	// (offset, stream time and dedup window start there); CutLow is the
	// lowest first offset of a session open at that cut, -1 when none;
	// Applied is the highest offset applied to the Machine, -1 before the
	// first.
	Cut, CutStreamTime, CutWindowStart, CutLow, Applied int64
	// Held are the events held, in offset order.
	Held []HeldEvent
}

// HeldEvent is one event a reorder window holds.
type HeldEvent struct {
	// Event is the decoded event, attributes and trace link included
	// (LinkError too: it was counted when the record was read, and is kept
	// so the event is the one the old owner would have applied).
	Event schema.Event
	// Offset is its record's offset; WindowStart the dedup window's start
	// before that record.
	Offset, WindowStart int64
}

// snapshotV2 is the format without a reorder window section, still
// written whenever the window holds nothing, so that a build reading only
// versions 1 and 2 can still restore those snapshots.
const snapshotV2 = 2

// maxHeldEvents bounds the held events a snapshot may claim, so a corrupt
// count cannot make the reader allocate without limit; far above any
// lifecycle.reorder_max_events a partition runs with.
const maxHeldEvents = 1 << 24

// maxHeldAttrs bounds one held event's attributes, likewise.
const maxHeldAttrs = 1 << 16

// Bits of a held event's presence flags: the event's Has fields, then
// which of the fields mostly zero are written (wait and sizeMB as their
// float64 bits, so -0 is kept; the link's 25 bytes).
const (
	heldHasWait = 1 << iota
	heldHasAssets
	heldHasSize
	heldHasScore
	heldWaitBits
	heldSizeBits
	heldLink
	heldHasAll = 1<<iota - 1
)

// heldEventFields is how many fields of schema.Event the held-event
// encoding writes; a test compares it with the struct, so a field added to
// schema.Event cannot be silently dropped from snapshots.
const heldEventFields = 26

// writeReorder writes the version 3 section: the window's positions and
// its held events, in offset order.
func (e *snapEncoder) writeReorder(r *Reorder) {
	for _, v := range [...]int64{r.Latest, r.Cut, r.CutStreamTime, r.CutWindowStart, r.CutLow, r.Applied} {
		e.int(v)
	}
	e.uint(uint64(len(r.Held)))
	for i := range r.Held {
		h := &r.Held[i]
		ev := &h.Event
		e.int(h.Offset)
		e.int(h.WindowStart)
		e.uint(uint64(ev.Type))
		e.str(ev.EventID)
		e.str(ev.PlayerID)
		e.str(ev.SessionID)
		e.int(ev.TS)
		e.str(ev.AuthMethod)
		e.str(ev.ClientVersion)
		e.str(ev.Platform)
		e.str(ev.GameMode)
		e.str(ev.LobbyID)
		e.str(ev.Reason)
		e.str(ev.LoadingType)
		e.int(ev.AssetsLoaded)
		e.str(ev.ServerID)
		e.str(ev.Map)
		e.str(ev.Result)
		e.int(ev.Score)
		wait, size := math.Float64bits(ev.WaitSeconds), math.Float64bits(ev.TotalSizeMB)
		var has uint64
		for bit, ok := range [...]bool{ev.HasWait, ev.HasAssetsLoaded, ev.HasTotalSizeMB, ev.HasScore,
			wait != 0, size != 0, ev.Link != (schema.TraceLink{})} {
			if ok {
				has |= 1 << bit
			}
		}
		e.uint(has)
		if has&heldWaitBits != 0 {
			e.u64(wait)
		}
		if has&heldSizeBits != 0 {
			e.u64(size)
		}
		if has&heldLink != 0 {
			e.raw(ev.Link.TraceID[:])
			e.raw(ev.Link.SpanID[:])
			e.uint(uint64(ev.Link.Flags))
		}
		e.uint(uint64(len(ev.Attributes)))
		for _, a := range ev.Attributes {
			e.str(a.Key)
			e.uint(uint64(a.Value.Kind))
			switch a.Value.Kind {
			case schema.KindString:
				e.str(a.Value.Str)
			case schema.KindInt:
				e.int(a.Value.Int)
			case schema.KindFloat:
				e.u64(math.Float64bits(a.Value.Float))
			case schema.KindBool:
				e.uint(boolBit(a.Value.Bool))
			}
		}
		e.str(ev.LinkError)
	}
}

func boolBit(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

// readReorder reads the version 3 section into r and reports what is wrong
// with it, "" when nothing is.
func (d *snapDecoder) readReorder(r *Reorder) string {
	for _, v := range [...]*int64{&r.Latest, &r.Cut, &r.CutStreamTime, &r.CutWindowStart, &r.CutLow, &r.Applied} {
		*v = d.int()
	}
	n := d.count(maxHeldEvents)
	if d.err != nil {
		return "reorder window"
	}
	if n == 0 {
		// Written only when something is held.
		return "reorder window without held events"
	}
	r.Held = make([]HeldEvent, 0, min(n, 1024))
	prev := int64(math.MinInt64)
	for range n {
		var h HeldEvent
		ev := &h.Event
		h.Offset = d.int()
		h.WindowStart = d.int()
		ev.Type = schema.Type(d.count(math.MaxUint8))
		ev.EventID = d.str()
		ev.PlayerID = d.str()
		ev.SessionID = d.str()
		ev.TS = d.int()
		ev.AuthMethod = d.str()
		ev.ClientVersion = d.str()
		ev.Platform = d.str()
		ev.GameMode = d.str()
		ev.LobbyID = d.str()
		ev.Reason = d.str()
		ev.LoadingType = d.str()
		ev.AssetsLoaded = d.int()
		ev.ServerID = d.str()
		ev.Map = d.str()
		ev.Result = d.str()
		ev.Score = d.int()
		has := d.count(heldHasAll)
		ev.HasWait, ev.HasAssetsLoaded = has&heldHasWait != 0, has&heldHasAssets != 0
		ev.HasTotalSizeMB, ev.HasScore = has&heldHasSize != 0, has&heldHasScore != 0
		if has&heldWaitBits != 0 {
			if ev.WaitSeconds = math.Float64frombits(d.u64()); ev.WaitSeconds == 0 && !math.Signbit(ev.WaitSeconds) {
				return "held event's wait written as zero"
			}
		}
		if has&heldSizeBits != 0 {
			if ev.TotalSizeMB = math.Float64frombits(d.u64()); ev.TotalSizeMB == 0 && !math.Signbit(ev.TotalSizeMB) {
				return "held event's size written as zero"
			}
		}
		if has&heldLink != 0 {
			copy(ev.Link.TraceID[:], d.raw(len(ev.Link.TraceID)))
			copy(ev.Link.SpanID[:], d.raw(len(ev.Link.SpanID)))
			ev.Link.Flags = byte(d.count(math.MaxUint8))
			if ev.Link == (schema.TraceLink{}) {
				return "held event's link written as zero"
			}
		}
		if k := d.count(maxHeldAttrs); k > 0 && d.err == nil {
			ev.Attributes = make([]schema.Attr, k)
			for j := range ev.Attributes {
				a := &ev.Attributes[j]
				a.Key = d.str()
				a.Value.Kind = schema.Kind(d.count(int(schema.KindBool)))
				switch a.Value.Kind {
				case schema.KindString:
					a.Value.Str = d.str()
				case schema.KindInt:
					a.Value.Int = d.int()
				case schema.KindFloat:
					a.Value.Float = math.Float64frombits(d.u64())
				case schema.KindBool:
					a.Value.Bool = d.count(1) == 1
				}
			}
		}
		ev.LinkError = d.str()
		if d.err != nil {
			return "held event"
		}
		if h.Offset <= prev || h.Offset < 0 || h.WindowStart < 0 || h.WindowStart > h.Offset {
			return fmt.Sprintf("held event at offset %d after %d, dedup window start %d", h.Offset, prev, h.WindowStart)
		}
		if t, ok := schema.ParseType(ev.Type.String()); !ok || t != ev.Type {
			return "held event of no type"
		}
		prev = h.Offset
		r.Held = append(r.Held, h)
	}
	return ""
}
