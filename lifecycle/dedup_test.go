package lifecycle

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// TestDedupModel checks the dedup set against a plain map and slice over a
// random stream with many repeats, so that probing runs and deletions that
// wrap around the table are exercised.
func TestDedupModel(t *testing.T) {
	for _, window := range []int{1, 3, 64, 1000} {
		t.Run(fmt.Sprint(window), func(t *testing.T) {
			d := newDedup(window)
			r := rand.New(rand.NewPCG(uint64(window), 3))
			var order []string
			in := map[string]bool{}
			for i := range 50_000 {
				id := fmt.Sprint(r.IntN(3 * window))
				want := in[id]
				if got := d.seen(id); got != want {
					t.Fatalf("step %d: seen(%s) = %t, want %t", i, id, got, want)
				}
				if want {
					continue
				}
				order = append(order, id)
				in[id] = true
				if len(order) > window {
					delete(in, order[0])
					order = order[1:]
				}
			}
		})
	}
}
