package simulate

import (
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"time"
)

// mix draws names by weight. Names are sorted so that the same map always
// gives the same draws, whatever Go's map iteration order.
type mix struct {
	names []string
	cum   []float64 // running totals of the weights, in names order
}

func newMix(m map[string]float64) mix {
	var x mix
	for name := range m {
		x.names = append(x.names, name)
	}
	slices.Sort(x.names)
	total := 0.0
	for _, name := range x.names {
		total += m[name]
		x.cum = append(x.cum, total)
	}
	return x
}

func (x mix) draw(r *rand.Rand) string {
	u := r.Float64() * x.cum[len(x.cum)-1]
	i := sort.SearchFloat64s(x.cum, u)
	// u equal to a running total belongs to the next name; skipping
	// zero-weight names keeps them from ever being drawn.
	for i < len(x.cum)-1 && x.cum[i] <= u {
		i++
	}
	return x.names[i]
}

// duration draws from d, rounded to whole milliseconds.
func (d DurationDist) draw(r *rand.Rand) time.Duration {
	v := float64(d.Median)
	if d.Sigma > 0 {
		v *= math.Exp(d.Sigma * r.NormFloat64())
	}
	v = min(max(v, float64(d.Min)), float64(d.Max))
	return time.Duration(v).Round(time.Millisecond)
}

// draw returns Min plus a geometric count with mean Mean−Min, capped at Max.
func (c CountDist) draw(r *rand.Rand) int {
	extra := c.Mean - float64(c.Min)
	if extra <= 0 {
		return c.Min
	}
	// Geometric on {0, 1, …} with success probability p has mean (1−p)/p.
	p := 1 / (1 + extra)
	n := c.Min
	for n < c.Max && r.Float64() >= p {
		n++
	}
	return n
}

// between draws uniformly from [lo, hi), in milliseconds.
func between(r *rand.Rand, lo, hi time.Duration) time.Duration {
	ms := int64((hi - lo) / time.Millisecond)
	if ms <= 0 {
		return lo
	}
	return lo + time.Duration(r.Int64N(ms))*time.Millisecond
}
