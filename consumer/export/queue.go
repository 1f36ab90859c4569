package export

import (
	"context"
	"sync"

	"github.com/sessiontrace/sessiontrace/lifecycle"
)

// spanQueue is the bounded FIFO between a direct lane's one producer (the
// partition worker or the replay) and its export goroutine. It is a ring
// under a mutex rather than a channel because the export goroutine takes a
// whole batch at once: one lock per batch instead of a channel operation
// and a select per span, which was a tenth of the direct path's CPU.
//
// Waiting uses two one-slot signal channels: the producer signals notEmpty
// when it fills an empty queue, the consumer signals notFull when it takes
// from a full one. A waiter always re-checks under the lock, so a stale
// signal only costs a loop.
//
// The ring starts small and doubles up to its bound, so a partition that
// never has many spans in flight (most of them, with many partitions) does
// not hold the whole bound's memory.
type spanQueue struct {
	mu    sync.Mutex
	buf   []lifecycle.Span
	limit int // most spans queued: the bound
	head  int // index of the oldest span
	n     int // spans queued

	notEmpty chan struct{}
	notFull  chan struct{}
}

// initialQueue is a new queue's ring size, before it grows.
const initialQueue = 256

func newSpanQueue(size int) *spanQueue {
	return &spanQueue{
		buf:      make([]lifecycle.Span, min(size, initialQueue)),
		limit:    size,
		notEmpty: make(chan struct{}, 1),
		notFull:  make(chan struct{}, 1),
	}
}

// push appends a copy of s, waiting while the queue is full until ctx or
// abort is done; it then returns the context's cause (abort's error for
// abort).
func (q *spanQueue) push(ctx, abort context.Context, s *lifecycle.Span) error {
	for {
		q.mu.Lock()
		if q.n == len(q.buf) && len(q.buf) < q.limit {
			q.grow()
		}
		if q.n < len(q.buf) {
			i := q.head + q.n
			if i >= len(q.buf) {
				i -= len(q.buf)
			}
			q.buf[i] = *s
			q.n++
			wake := q.n == 1
			q.mu.Unlock()
			if wake {
				signal(q.notEmpty)
			}
			return nil
		}
		q.mu.Unlock()
		select {
		case <-q.notFull:
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-abort.Done():
			return errAborted
		}
	}
}

// take moves up to max queued spans, oldest first, to the end of dst.
func (q *spanQueue) take(dst []lifecycle.Span, max int) []lifecycle.Span {
	q.mu.Lock()
	k := min(max, q.n)
	wasFull := q.n == q.limit
	for k > 0 {
		end := min(q.head+k, len(q.buf))
		dst = append(dst, q.buf[q.head:end]...)
		clear(q.buf[q.head:end]) // the spans' attributes can be collected
		k -= end - q.head
		q.n -= end - q.head
		q.head = end
		if q.head == len(q.buf) {
			q.head = 0
		}
	}
	if q.n == 0 {
		q.head = 0
	}
	q.mu.Unlock()
	if wasFull && len(dst) > 0 {
		signal(q.notFull)
	}
	return dst
}

// grow doubles the ring, up to limit, keeping the spans in order from
// index 0. The caller holds mu.
func (q *spanQueue) grow() {
	buf := make([]lifecycle.Span, min(2*len(q.buf), q.limit))
	n := copy(buf, q.buf[q.head:])
	copy(buf[n:], q.buf[:q.head])
	q.buf, q.head = buf, 0
}

// len returns how many spans are queued.
func (q *spanQueue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.n
}

// signal wakes the waiter of c, if any, without blocking.
func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}
