package export

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/sessiontrace/sessiontrace/lifecycle"
)

// TestSpanQueueKeepsOrderAcrossTheRing pushes and takes in uneven steps so
// the ring wraps many times (and, for a bound above initialQueue, grows
// while wrapped), and checks FIFO order and the bound.
func TestSpanQueueKeepsOrderAcrossTheRing(t *testing.T) {
	tests := []struct {
		name        string
		size        int
		push, takes int // steps grow up to these
		rounds      int
	}{
		{name: "small bound", size: 5, push: 4, takes: 3, rounds: 40},
		{name: "bound above the initial ring", size: 3*initialQueue + 7, push: 97, takes: 61, rounds: 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := newSpanQueue(tt.size)
			ctx := t.Context()
			next, want := int64(0), int64(0)
			var got []lifecycle.Span
			for round := range tt.rounds {
				for range round%tt.push + 1 {
					if q.len() == tt.size {
						break
					}
					s := lifecycle.Span{Start: next}
					if err := q.push(ctx, ctx, &s); err != nil {
						t.Fatal(err)
					}
					next++
				}
				got = q.take(got[:0], round%tt.takes+1)
				for _, s := range got {
					if s.Start != want {
						t.Fatalf("round %d: took span %d, want %d", round, s.Start, want)
					}
					want++
				}
				if q.len() > tt.size || len(q.buf) > tt.size {
					t.Fatalf("queue holds %d in a ring of %d, bound %d", q.len(), len(q.buf), tt.size)
				}
			}
			if want < int64(tt.rounds)*3/4 {
				t.Fatalf("only %d spans went through", want)
			}
			if tt.size > initialQueue && len(q.buf) == initialQueue {
				t.Errorf("the ring never grew past %d although up to %d spans were queued", initialQueue, tt.size)
			}
		})
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
	if err := q.push(ctx, aborted, &s); !errors.Is(err, errAborted) {
		t.Fatalf("push into an aborted lane = %v", err)
	}
}
