package consumer

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/sessiontrace/sessiontrace/lifecycle"
)

// TestSpanQueueKeepsOrderAcrossTheRing pushes and takes in uneven steps so
// the ring wraps many times, and checks FIFO order and the bound.
func TestSpanQueueKeepsOrderAcrossTheRing(t *testing.T) {
	q := newSpanQueue(5)
	ctx := t.Context()
	next, want := int64(0), int64(0)
	var got []lifecycle.Span
	for round := range 40 {
		for range round%4 + 1 {
			if q.len() == len(q.buf) {
				break
			}
			s := lifecycle.Span{Start: next}
			if err := q.push(ctx, ctx, &s); err != nil {
				t.Fatal(err)
			}
			next++
		}
		got = q.take(got[:0], round%3+1)
		for _, s := range got {
			if s.Start != want {
				t.Fatalf("round %d: took span %d, want %d", round, s.Start, want)
			}
			want++
		}
		if q.len() > len(q.buf) {
			t.Fatalf("queue holds %d, more than its size", q.len())
		}
	}
	if want < 30 {
		t.Fatalf("only %d spans went through", want)
	}
}

// TestSpanQueueBlocksWhenFull checks that a push into a full queue waits
// for a take, and gives up with its context or the abort.
func TestSpanQueueBlocksWhenFull(t *testing.T) {
	q := newSpanQueue(2)
	ctx := t.Context()
	s := lifecycle.Span{}
	for range 2 {
		if err := q.push(ctx, ctx, &s); err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan error, 1)
	go func() { done <- q.push(ctx, ctx, &s) }()
	select {
	case err := <-done:
		t.Fatalf("push into a full queue returned %v", err)
	default: // still waiting, as it must until the take below
	}
	if got := q.take(nil, 1); len(got) != 1 {
		t.Fatalf("took %d spans, want 1", len(got))
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("push did not resume after a take")
	}

	short, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancel()
	if err := q.push(short, ctx, &s); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("push with an expired context = %v", err)
	}
	aborted, abort := context.WithCancel(ctx)
	abort()
	if err := q.push(ctx, aborted, &s); !errors.Is(err, errLaneAborted) {
		t.Fatalf("push into an aborted lane = %v", err)
	}
}
