package consumer

import (
	"math"

	"github.com/sessiontrace/sessiontrace/schema"
)

// reorder is one partition's reorder window: it holds decoded events until
// stream time (here: the largest ts it was given) passes their ts by the
// window, and gives them back in (ts, offset) order, so events that arrive
// out of order by less than the window reach the state machine in the
// order they happened. It is pure and deterministic: what it releases is a
// function of the events given to it, in their order.
//
// An event whose ts is already a window behind the largest ts is late: it
// is released at once (after nothing, since everything held is newer).
// When more than max events are held, the one due first is released early.
type reorder[P any] struct {
	window int64 // nanoseconds; > 0
	max    int
	latest int64 // the largest ts given; math.MinInt64 before the first
	heap   []*heldEvent[P]
	// fifo holds the held events in arrival (offset) order; released ones
	// are dropped from its front lazily, so fifo[head] (after dropping) is
	// the first held record.
	fifo []*heldEvent[P]
	head int
	free []*heldEvent[P]
}

// heldEvent is an event waiting in the window and what the partition needs
// of its record when it is released.
type heldEvent[P any] struct {
	ev      schema.Event
	attrs   []schema.Attr // ev.Attributes' own backing array, reused
	offset  int64
	ws      int64 // the dedup window start before the record
	payload P
	done    bool
}

func newReorder[P any](window int64, max int) *reorder[P] {
	return &reorder[P]{window: window, max: max, latest: math.MinInt64}
}

// len returns how many events are held.
func (r *reorder[P]) len() int { return len(r.heap) }

// add holds a copy of ev (the decoder's scratch event), read at offset with
// the dedup window starting at ws before it.
func (r *reorder[P]) add(ev *schema.Event, offset, ws int64, payload P) {
	var h *heldEvent[P]
	if n := len(r.free); n > 0 {
		h, r.free = r.free[n-1], r.free[:n-1]
	} else {
		h = new(heldEvent[P])
	}
	h.ev = *ev
	// The decoder reuses its Attributes slice; the strings it holds are
	// never reused.
	h.attrs = append(h.attrs[:0], ev.Attributes...)
	h.ev.Attributes = h.attrs
	h.offset, h.ws, h.payload, h.done = offset, ws, payload, false
	r.latest = max(r.latest, ev.TS)
	r.heap = append(r.heap, h)
	r.up(len(r.heap) - 1)
	r.fifo = append(r.fifo, h)
}

// due returns the next event to release: the first in (ts, offset) order
// when its ts is a window behind the latest ts, or when more than max are
// held, or any with all; nil when none is due.
func (r *reorder[P]) due(all bool) *heldEvent[P] {
	if len(r.heap) == 0 {
		return nil
	}
	h := r.heap[0]
	// latest is the largest ts given, h's included, so the difference is
	// never negative; in uint64 it cannot overflow.
	if all || len(r.heap) > r.max || uint64(r.latest)-uint64(h.ev.TS) >= uint64(r.window) {
		return h
	}
	return nil
}

// release removes h, the event due returned, from the window. h stays
// valid until the next add.
func (r *reorder[P]) release(h *heldEvent[P]) {
	n := len(r.heap) - 1
	r.heap[0] = r.heap[n]
	r.heap[n] = nil
	r.heap = r.heap[:n]
	if n > 0 {
		r.down(0)
	}
	h.done = true
	for r.head < len(r.fifo) && r.fifo[r.head].done {
		r.free = append(r.free, r.fifo[r.head])
		r.fifo[r.head] = nil
		r.head++
	}
	if r.head == len(r.fifo) {
		r.fifo, r.head = r.fifo[:0], 0
	} else if r.head > 1024 && r.head > len(r.fifo)/2 {
		n := copy(r.fifo, r.fifo[r.head:])
		clear(r.fifo[n:])
		r.fifo, r.head = r.fifo[:n], 0
	}
}

// first returns the held event of the lowest offset, nil when none is held.
func (r *reorder[P]) first() *heldEvent[P] {
	if r.head < len(r.fifo) {
		return r.fifo[r.head]
	}
	return nil
}

func (r *reorder[P]) less(i, j int) bool {
	a, b := r.heap[i], r.heap[j]
	return a.ev.TS < b.ev.TS || a.ev.TS == b.ev.TS && a.offset < b.offset
}

func (r *reorder[P]) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !r.less(i, p) {
			return
		}
		r.heap[i], r.heap[p] = r.heap[p], r.heap[i]
		i = p
	}
}

func (r *reorder[P]) down(i int) {
	n := len(r.heap)
	for {
		c := 2*i + 1
		if c >= n {
			return
		}
		if c+1 < n && r.less(c+1, c) {
			c++
		}
		if !r.less(c, i) {
			return
		}
		r.heap[i], r.heap[c] = r.heap[c], r.heap[i]
		i = c
	}
}
