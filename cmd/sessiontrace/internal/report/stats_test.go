package report

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// TestWilson checks the Wilson score interval against the published values
// of Newcombe, "Two-sided confidence intervals for the single proportion",
// Statistics in Medicine 17 (1998) 857–872, Table I (method 3).
func TestWilson(t *testing.T) {
	for _, c := range []struct {
		name   string
		x, n   float64
		lo, hi float64
	}{
		{"81 of 263", 81, 263, 0.2553, 0.3662},
		{"15 of 148", 15, 148, 0.0624, 0.1605},
		{"0 of 20", 0, 20, 0, 0.1611},
		{"1 of 29", 1, 29, 0.0061, 0.1718},
	} {
		t.Run(c.name, func(t *testing.T) {
			lo, hi, ok := Wilson(c.x, c.n)
			if !ok || math.Abs(lo-c.lo) > 5e-5 || math.Abs(hi-c.hi) > 5e-5 {
				t.Errorf("Wilson(%v, %v) = %.4f, %.4f, %t; want %.4f, %.4f", c.x, c.n, lo, hi, ok, c.lo, c.hi)
			}
		})
	}
	if _, _, ok := Wilson(0, 0); ok {
		t.Error("Wilson of no observations has an interval")
	}
}

// TestNewcombe checks the interval of a difference of proportions against
// the published values of Newcombe, "Interval estimation for the difference
// between independent proportions: comparison of eleven methods",
// Statistics in Medicine 17 (1998) 873–890, Table II (method 10). Each case
// is the candidate's proportion minus the baseline's.
func TestNewcombe(t *testing.T) {
	for _, c := range []struct {
		name           string
		x1, n1, x2, n2 float64 // baseline, candidate
		lo, hi         float64
	}{
		{"56/70 - 48/80", 48, 80, 56, 70, 0.0524, 0.3339},
		{"9/10 - 3/10", 3, 10, 9, 10, 0.1705, 0.8090},
		{"6/7 - 2/7", 2, 7, 6, 7, 0.0582, 0.8062},
		{"5/56 - 0/29", 0, 29, 5, 56, -0.0381, 0.1926},
		{"0/10 - 0/20", 0, 20, 0, 10, -0.1611, 0.2775},
		{"10/10 - 0/20", 0, 20, 10, 10, 0.6791, 1},
		{"10/10 - 0/10", 0, 10, 10, 10, 0.6075, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			iv := Newcombe(c.x1, c.n1, c.x2, c.n2)
			if !iv.OK || math.Abs(iv.Lo-c.lo) > 5e-5 || math.Abs(iv.Hi-c.hi) > 5e-5 {
				t.Errorf("Newcombe = %+v, want [%.4f, %.4f]", iv, c.lo, c.hi)
			}
		})
	}
	if iv := Newcombe(1, 0, 1, 2); iv.OK {
		t.Errorf("a side without sessions has an interval: %+v", iv)
	}
}

// TestResampledQuantile checks that drawing a resample's quantile as an
// order statistic has the distribution of the quantile of n draws with
// replacement, which for three observations is worked out by hand: the
// median (rank 2) of three draws from {1, 2, 3} is 1 when at least two
// draws are 1, 3·(1/3)²·(2/3) + (1/3)³ = 7/27, likewise 3, and 2 otherwise,
// 13/27; the p90 (rank 3, the largest) is 1 with (1/3)³ = 1/27, at most 2
// with (2/3)³ = 8/27, so 2 with 7/27 and 3 with 19/27.
func TestResampledQuantile(t *testing.T) {
	const draws = 270000
	data := []float64{1, 2, 3}
	for _, c := range []struct {
		name string
		q    float64
		want []float64 // P(1), P(2), P(3)
	}{
		{"median", 0.5, []float64{7.0 / 27, 13.0 / 27, 7.0 / 27}},
		{"p90", 0.9, []float64{1.0 / 27, 7.0 / 27, 19.0 / 27}},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(1, 2))
			got := make([]float64, 3)
			for range draws {
				got[int(resampledQuantile(r, data, c.q))-1]++
			}
			for i, p := range c.want {
				// Within five standard deviations of a binomial count.
				if sd := math.Sqrt(draws * p * (1 - p)); math.Abs(got[i]-draws*p) > 5*sd {
					t.Errorf("P(%d) = %.4f, want %.4f", i+1, got[i]/draws, p)
				}
			}
		})
	}
}

func TestBootstrapQuantileDiff(t *testing.T) {
	fill := func(n int, v float64) []float64 {
		out := make([]float64, n)
		for i := range out {
			out[i] = v
		}
		return out
	}
	normal := func(seed uint64, n int) []float64 {
		r := rand.New(rand.NewPCG(seed, 0))
		out := make([]float64, n)
		for i := range out {
			out[i] = r.NormFloat64()
		}
		slices.Sort(out)
		return out
	}
	t.Run("constant sides give the exact difference", func(t *testing.T) {
		iv := BootstrapQuantileDiff(fill(50, 100), fill(30, 160), 0.5, BootstrapResamples, 1)
		if iv != (Interval{Lo: 60, Hi: 60, OK: true}) || !iv.Significant() {
			t.Errorf("interval %+v, want [60, 60], significant", iv)
		}
	})
	t.Run("the same sample is not significant", func(t *testing.T) {
		d := normal(7, 200)
		iv := BootstrapQuantileDiff(d, d, 0.5, BootstrapResamples, 1)
		if !iv.OK || iv.Significant() || iv.Lo >= 0 || iv.Hi <= 0 {
			t.Errorf("interval %+v, want one around 0", iv)
		}
	})
	t.Run("width matches the median's standard error", func(t *testing.T) {
		// The median of n normal observations has standard error
		// sqrt(pi/2)·sigma/sqrt(n); the difference of two independent
		// ones, sqrt(2) times that: 1.2533·sqrt(2/400) = 0.0886, so a
		// 95% interval is 2·1.96·0.0886 = 0.347 wide.
		iv := BootstrapQuantileDiff(normal(1, 400), normal(2, 400), 0.5, BootstrapResamples, 3)
		if w := iv.Hi - iv.Lo; !iv.OK || math.Abs(w-0.347) > 0.07 {
			t.Errorf("interval %+v is %.3f wide, want about 0.347", iv, iv.Hi-iv.Lo)
		}
	})
	t.Run("seeded", func(t *testing.T) {
		a, b := normal(1, 100), normal(2, 100)
		if x, y := BootstrapQuantileDiff(a, b, 0.9, 500, 9), BootstrapQuantileDiff(a, b, 0.9, 500, 9); x != y {
			t.Errorf("the same seed gave %+v and %+v", x, y)
		}
	})
	t.Run("too few sessions", func(t *testing.T) {
		if iv := BootstrapQuantileDiff(fill(MinSessions-1, 1), fill(100, 2), 0.5, 100, 1); iv.OK {
			t.Errorf("%d sessions gave an interval %+v", MinSessions-1, iv)
		}
	})
}

// TestRatioDiff checks the phase share interval against a hand computation.
// Baseline: 10 sessions of (phase 1 s, session 2 s) and 10 of (3 s, 4 s):
// R = 40/60 = 2/3, the residuals y − R·x are ∓1/3, so Σ(y − R·x)² = 20/9 and
// with x̄ = 3 the variance is (20/9)/(20·19·9) = 1/1539. Candidate: 20 of
// (1 s, 2 s), R = 1/2 with no variance. The difference is 1/2 − 2/3 =
// −0.16667 ± 1.96·sqrt(1/1539) = ±0.04996.
func TestRatioDiff(t *testing.T) {
	var base, cand ratioMoments
	for range 10 {
		base.add(1, 2)
		base.add(3, 4)
		cand.add(1, 2)
		cand.add(1, 2)
	}
	iv := ratioDiff(base, cand)
	half := z95 * math.Sqrt(1.0/1539)
	if !iv.OK || math.Abs(iv.Lo-(-1.0/6-half)) > 1e-12 || math.Abs(iv.Hi-(-1.0/6+half)) > 1e-12 {
		t.Errorf("interval %+v, want [%.5f, %.5f]", iv, -1.0/6-half, -1.0/6+half)
	}
	if math.Abs(half-0.04996) > 1e-5 || !iv.Significant() {
		t.Errorf("half width %.5f, want 0.04996, significant", half)
	}
	var few ratioMoments
	few.add(1, 2)
	if iv := ratioDiff(few, cand); iv.OK {
		t.Errorf("one session gave an interval %+v", iv)
	}
}

// TestCICell: the interval cells of the text tables, and the n.s. mark on
// exactly the intervals that include zero.
func TestCICell(t *testing.T) {
	for _, c := range []struct {
		name     string
		iv       Interval
		duration bool
		want     string
	}{
		{"share above zero", Interval{Lo: 0.089, Hi: 0.097, OK: true}, false, "[+8.9, +9.7] pp"},
		{"share across zero", Interval{Lo: -0.25, Hi: 0.686, OK: true}, false, "[-25.0, +68.6] pp n.s."},
		{"share below zero", Interval{Lo: -0.2, Hi: -0.01, OK: true}, false, "[-20.0, -1.0] pp"},
		{"zero is an end", Interval{Lo: 0, Hi: 0.1, OK: true}, false, "[+0.0, +10.0] pp n.s."},
		{"narrow share", Interval{Lo: 0.00011, Hi: 0.00042, OK: true}, false, "[+0.011, +0.042] pp"},
		{"a little narrow", Interval{Lo: 0.0004, Hi: 0.0021, OK: true}, false, "[+0.04, +0.21] pp"},
		{"duration below zero", Interval{Lo: -650, Hi: -24.5, OK: true}, true, "[-10m50s, -24.5s]"},
		{"duration across zero", Interval{Lo: -176, Hi: 317, OK: true}, true, "[-2m56s, +5m17s] n.s."},
		{"none", Interval{}, true, "-"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := shareCICell(c.iv)
			if c.duration {
				got = durationCI(c.iv)
			}
			if got != c.want {
				t.Errorf("cell %q, want %q", got, c.want)
			}
		})
	}
}

// TestCrashStep checks the change point against a hand computation. Four
// hours of 100 sessions with 3, 3, 30 and 30 crashes: splitting after the
// second gives 6/200 = 3% before and 60/200 = 30% after, pooled p = 66/400
// = 0.165, se = sqrt(0.165·0.835·(1/200 + 1/200)) = 0.037118 and z = 0.27 /
// 0.037118 = 7.2741; the other two splits give z = 4.1997. Three splits
// make the Bonferroni threshold Φ⁻¹(1 − 0.05/6) = 2.39398.
func TestCrashStep(t *testing.T) {
	hour := func(i, crashes int) TimeBucket {
		return TimeBucket{Start: time.Date(2026, 1, 1, i, 0, 0, 0, time.UTC), Sessions: 100, Crashes: crashes}
	}
	s := crashStep([]TimeBucket{hour(0, 3), hour(1, 3), hour(2, 30), hour(3, 30)})
	if !s.Found || !s.At.Equal(time.Date(2026, 1, 1, 2, 0, 0, 0, time.UTC)) || s.Splits != 3 ||
		math.Abs(s.Z-7.2741) > 1e-4 || math.Abs(s.Threshold-2.39398) > 1e-5 ||
		s.BeforeSessions != 200 || s.AfterSessions != 200 || s.BeforeShare != 0.03 || s.AfterShare != 0.3 {
		t.Errorf("step %+v, want at 02:00, z 7.2741 over threshold 2.39398 of 3 splits, 3%% of 200 then 30%% of 200", s)
	}
	// The same crash share every hour has no step; neither has one hour.
	if s := crashStep([]TimeBucket{hour(0, 5), hour(1, 5), hour(2, 5), hour(3, 5)}); s.Found || s.Z != 0 {
		t.Errorf("a flat share: step %+v, want none", s)
	}
	if s := crashStep([]TimeBucket{hour(0, 5)}); s.Splits != 0 || s.Found {
		t.Errorf("one hour: step %+v, want no split", s)
	}
}
