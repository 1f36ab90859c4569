package report

import (
	"hash/fnv"
	"math"
	"math/rand/v2"
	"slices"
)

// Confidence intervals of a comparison. Every difference is candidate minus
// baseline, and every interval is at the 95% level:
//
//   - a share of sessions (an end type, an end reason, a matches bucket):
//     the Wilson score interval of each side, combined into an interval of
//     the difference by Newcombe's hybrid score method (Newcombe 1998,
//     method 10);
//   - a median or p90 duration: the percentile bootstrap of the difference,
//     with BootstrapResamples resamples of each side, seeded from the row's
//     name so that the same inputs always print the same interval;
//   - a share of session time (a phase): a normal interval of the
//     difference of two ratio estimators, each with its linearised
//     (delta-method) variance.
//
// A row whose interval includes zero is not significant. Duration and phase
// intervals need MinSessions sessions on each side; with fewer the row has
// no interval.
const (
	// Level is the confidence level of every interval.
	Level = 0.95
	// BootstrapResamples is how many bootstrap resamples of each side a
	// median or p90 interval draws.
	BootstrapResamples = 10000
	// MinSessions is the fewest sessions per side for a bootstrap or a
	// delta-method interval, below which neither is reliable.
	MinSessions = 20
)

// z95 is the standard normal quantile of 0.975.
const z95 = 1.959963984540054

// Interval is a confidence interval of a difference, candidate minus
// baseline. OK is false when there is none (a side without sessions, or
// too few for the method).
type Interval struct {
	Lo, Hi float64
	OK     bool
}

// Significant reports whether the interval excludes zero.
func (iv Interval) Significant() bool { return iv.OK && (iv.Lo > 0 || iv.Hi < 0) }

// Wilson returns the Wilson score interval of the proportion x/n at the 95%
// level; ok is false for n = 0.
func Wilson(x, n float64) (lo, hi float64, ok bool) {
	if n <= 0 {
		return 0, 0, false
	}
	p := x / n
	z2 := z95 * z95
	den := 1 + z2/n
	centre := (p + z2/(2*n)) / den
	half := z95 / den * math.Sqrt(p*(1-p)/n+z2/(4*n*n))
	return max(centre-half, 0), min(centre+half, 1), true
}

// Newcombe returns the 95% interval of p2 − p1, where p1 = x1/n1 (the
// baseline) and p2 = x2/n2 (the candidate), by Newcombe's hybrid score
// method: the Wilson intervals (l1, u1) and (l2, u2) of each side give
// d − sqrt((p2−l2)² + (u1−p1)²) and d + sqrt((u2−p2)² + (p1−l1)²).
func Newcombe(x1, n1, x2, n2 float64) Interval {
	l1, u1, ok1 := Wilson(x1, n1)
	l2, u2, ok2 := Wilson(x2, n2)
	if !ok1 || !ok2 {
		return Interval{}
	}
	p1, p2 := x1/n1, x2/n2
	d := p2 - p1
	return Interval{
		Lo: d - math.Sqrt((p2-l2)*(p2-l2)+(u1-p1)*(u1-p1)),
		Hi: d + math.Sqrt((u2-p2)*(u2-p2)+(p1-l1)*(p1-l1)),
		OK: true,
	}
}

// BootstrapQuantileDiff returns the percentile bootstrap interval of
// Quantile(cand, q) − Quantile(base, q), both sorted, with resamples
// resamples of each side drawn from a generator seeded with seed.
//
// A resample draws n observations with replacement and takes the one at
// rank k = ceil(q·n). Since the data are sorted, that is the observation at
// the k-th smallest of n uniform indexes, and the k-th smallest of n
// uniform numbers on [0, 1) is Beta(k, n−k+1) distributed: so each
// resample's quantile is drawn directly as sorted[floor(n·Beta(k, n−k+1))],
// which has exactly the distribution of the quantile of a resample, in
// constant time instead of O(n).
func BootstrapQuantileDiff(base, cand []float64, q float64, resamples int, seed uint64) Interval {
	if len(base) < MinSessions || len(cand) < MinSessions || resamples < 1 {
		return Interval{}
	}
	r := rand.New(rand.NewPCG(seed, 0x5e55107ace))
	diffs := make([]float64, resamples)
	for i := range diffs {
		diffs[i] = resampledQuantile(r, cand, q) - resampledQuantile(r, base, q)
	}
	slices.Sort(diffs)
	alpha := (1 - Level) / 2
	return Interval{Lo: Quantile(diffs, alpha), Hi: Quantile(diffs, 1-alpha), OK: true}
}

// resampledQuantile draws the nearest-rank q-quantile of one bootstrap
// resample of sorted (see BootstrapQuantileDiff).
func resampledQuantile(r *rand.Rand, sorted []float64, q float64) float64 {
	n := len(sorted)
	k := min(max(int(math.Ceil(q*float64(n))), 1), n)
	u := betaDraw(r, float64(k), float64(n-k+1))
	return sorted[min(int(u*float64(n)), n-1)]
}

// betaDraw draws from Beta(a, b), a, b >= 1, as X/(X+Y) of two gamma draws.
func betaDraw(r *rand.Rand, a, b float64) float64 {
	x := gammaDraw(r, a)
	return x / (x + gammaDraw(r, b))
}

// gammaDraw draws from Gamma(a, 1), a >= 1, by Marsaglia and Tsang's method
// (ACM TOMS 26(3), 2000).
func gammaDraw(r *rand.Rand, a float64) float64 {
	d := a - 1.0/3
	c := 1 / math.Sqrt(9*d)
	for {
		x := r.NormFloat64()
		v := 1 + c*x
		if v <= 0 {
			continue
		}
		v = v * v * v
		u := r.Float64()
		if u < 1-0.0331*x*x*x*x || math.Log(u) < 0.5*x*x+d*(1-v+math.Log(v)) {
			return d * v
		}
	}
}

// seedFor derives a bootstrap seed from a row's name, so that every row has
// its own stream and adding a row changes no other row's interval.
func seedFor(parts ...string) uint64 {
	h := fnv.New64a()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return h.Sum64()
}

// ratioMoments are the sums a ratio estimator Σy/Σx and its linearised
// variance need: over sessions, y is the time in one phase and x the
// session's duration, both in seconds.
type ratioMoments struct {
	n             float64
	sy, sx        float64
	syy, sxx, sxy float64
}

func (m *ratioMoments) add(y, x float64) {
	m.n++
	m.sy += y
	m.sx += x
	m.syy += y * y
	m.sxx += x * x
	m.sxy += x * y
}

// ratioVariance is the linearised variance of R = Σy/Σx over n sessions:
// Σ(y − R·x)² / (n·(n−1)·x̄²) (Cochran, Sampling Techniques, 6.9).
func (m ratioMoments) ratioVariance() (r, v float64, ok bool) {
	if m.n < MinSessions || m.sx <= 0 {
		return 0, 0, false
	}
	r = m.sy / m.sx
	resid := m.syy - 2*r*m.sxy + r*r*m.sxx
	xbar := m.sx / m.n
	return r, max(resid, 0) / (m.n * (m.n - 1) * xbar * xbar), true
}

// ratioDiff is the 95% normal interval of the difference of two ratio
// estimators, candidate minus baseline.
func ratioDiff(base, cand ratioMoments) Interval {
	rb, vb, okb := base.ratioVariance()
	rc, vc, okc := cand.ratioVariance()
	if !okb || !okc {
		return Interval{}
	}
	half := z95 * math.Sqrt(vb+vc)
	return Interval{Lo: rc - rb - half, Hi: rc - rb + half, OK: true}
}
