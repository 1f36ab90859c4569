package lifecycle

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestDedupModel checks the dedup set against a plain slice of the last
// window IDs (duplicates included) over a random stream with many repeats,
// so that probing runs, counts above one and deletions that wrap around the
// table are exercised.
func TestDedupModel(t *testing.T) {
	for _, window := range []int{1, 3, 64, 1000} {
		t.Run(fmt.Sprint(window), func(t *testing.T) {
			d := newDedup(window)
			r := rand.New(rand.NewPCG(uint64(window), 3))
			var last []string
			for i := range 50_000 {
				id := fmt.Sprint(r.IntN(3 * window))
				want := slices.Contains(last, id)
				if got := d.seen(id, int64(i)); got != want {
					t.Fatalf("step %d: seen(%s) = %t, want %t", i, id, got, want)
				}
				last = append(last, id)
				if len(last) > window {
					last = last[1:]
				}
				if off, ok := d.oldest(); !ok || off != int64(i+1-len(last)) {
					t.Fatalf("step %d: oldest = %d, %t; want %d", i, off, ok, i+1-len(last))
				}
			}
		})
	}
}

// TestDedupIsAFunctionOfTheLastWindowEvents feeds two windows different
// histories that end with the same window events: they must then answer
// alike. A window that counted only first sightings would not.
func TestDedupIsAFunctionOfTheLastWindowEvents(t *testing.T) {
	const window = 2
	a, b := newDedup(window), newDedup(window)
	for i, id := range []string{"x", "y", "y", "y"} {
		a.seen(id, int64(i))
	}
	// b sees only the last two of a's events.
	for i, id := range []string{"y", "y"} {
		b.seen(id, int64(i+2))
	}
	for _, id := range []string{"x", "y", "w", "x", "w"} {
		if ga, gb := a.seen(id, 0), b.seen(id, 0); ga != gb {
			t.Fatalf("seen(%s): %t after the longer history, %t after the last %d events", id, ga, gb, window)
		}
	}
}
