package report

import (
	"math"
	"slices"
	"time"
)

// The time axis. Sessions are placed in the bucket of their start (the root
// span's start, UTC). The bucket is an hour when the first and the last
// session start lie at most MaxHourlySpan apart, so that a week of traffic
// still shows the hour a build went bad, and a UTC day otherwise. Buckets
// are aligned to whole hours or days and run without gaps from the first
// session's to the last one's, empty ones included, so that a step stays
// where it happened. Session starts more than MaxDailySpan apart (a
// producer's clock far off) get no time axis, only a note of their span.
const (
	// MaxHourlySpan is the longest span of session starts shown per hour.
	MaxHourlySpan = 7 * 24 * time.Hour
	// MaxDailySpan is the longest span of session starts shown at all.
	MaxDailySpan = 400 * 24 * time.Hour
	// Hour and Day are the two bucket widths.
	Hour = time.Hour
	Day  = 24 * time.Hour
)

// TimeBucket is what the sessions that started in one bucket add up to.
type TimeBucket struct {
	// Start is the bucket's first instant (UTC).
	Start time.Time
	// Sessions counts the finished sessions that started in the bucket.
	Sessions int
	// Median is their nearest-rank median duration in seconds; NaN when
	// the bucket is empty.
	Median float64
	// Crashes counts those whose session.end_type is crash; CrashShare is
	// Crashes over Sessions (0 when empty).
	Crashes    int
	CrashShare float64
	// MatchesPerSession is the mean session.matches_played (games
	// entered); NaN when empty.
	MatchesPerSession float64
}

// bucketWidth applies the rule above to the session starts of every input;
// width is 0 when they span more than MaxDailySpan, and ok false without
// sessions.
func bucketWidth(inputs ...[]session) (width time.Duration, first, last int64, ok bool) {
	for _, ss := range inputs {
		for _, s := range ss {
			if !ok || s.start < first {
				first = s.start
			}
			if !ok || s.start > last {
				last = s.start
			}
			ok = true
		}
	}
	if !ok {
		return 0, 0, 0, false
	}
	span := uint64(last - first) // overflows int64 for starts centuries apart
	switch {
	case span <= uint64(MaxHourlySpan):
		width = Hour
	case span <= uint64(MaxDailySpan):
		width = Day
	}
	return width, first, last, true
}

// timeline buckets sessions by start over [first, last] with width.
func timeline(sessions []session, width time.Duration, first, last int64) []TimeBucket {
	from := time.Unix(0, first).UTC().Truncate(width)
	n := int(time.Unix(0, last).UTC().Sub(from)/width) + 1
	out := make([]TimeBucket, n)
	durations := make([][]float64, n)
	matches := make([]int64, n)
	for i := range out {
		out[i].Start = from.Add(time.Duration(i) * width)
	}
	for _, s := range sessions {
		i := int(time.Unix(0, s.start).UTC().Sub(from) / width)
		if i < 0 || i >= n {
			continue // outside the range asked for; never for its own input
		}
		out[i].Sessions++
		durations[i] = append(durations[i], s.durationSeconds)
		matches[i] += s.matches
		if s.endType == endTypeCrash {
			out[i].Crashes++
		}
	}
	for i := range out {
		b := &out[i]
		slices.Sort(durations[i])
		b.Median = Quantile(durations[i], 0.5)
		b.CrashShare = ratio(float64(b.Crashes), float64(b.Sessions))
		b.MatchesPerSession = nan
		if b.Sessions > 0 {
			b.MatchesPerSession = float64(matches[i]) / float64(b.Sessions)
		}
	}
	return out
}

// widthName is how the bucket width is named in the output.
func widthName(width time.Duration) string {
	if width == Day {
		return "day"
	}
	return "hour"
}

// bucketLabel writes a bucket's start as the text output shows it.
func bucketLabel(t time.Time, width time.Duration) string {
	if width == Day {
		return t.Format("2006-01-02")
	}
	return t.Format("2006-01-02T15:04Z")
}

// StepAlpha is the family-wise significance level of CrashStep: the
// threshold of each of the m possible splits is Bonferroni's, alpha/m.
const StepAlpha = 0.05

// Step is where a time axis's crash share changes most: the split of the
// buckets into before and from-then-on whose two shares differ by the
// largest two-proportion z statistic (pooled standard error). Found says
// whether that z passes the Bonferroni threshold for testing every split,
// so that noise alone reports a step in at most StepAlpha of inputs.
type Step struct {
	At                            time.Time // the first bucket after the split
	BeforeShare, AfterShare       float64
	BeforeSessions, AfterSessions int
	Z, Threshold                  float64
	Splits                        int // how many splits were tried
	Found                         bool
}

// crashStep finds the Step of buckets' crash share; Splits is 0 when there
// are fewer than two buckets with sessions.
func crashStep(buckets []TimeBucket) Step {
	var total, crashes int
	for _, b := range buckets {
		total += b.Sessions
		crashes += b.Crashes
	}
	var best Step
	n1, x1 := 0, 0
	for k := 1; k < len(buckets); k++ {
		n1 += buckets[k-1].Sessions
		x1 += buckets[k-1].Crashes
		n2, x2 := total-n1, crashes-x1
		if n1 == 0 || n2 == 0 {
			continue
		}
		best.Splits++
		p := float64(x1+x2) / float64(total)
		se := math.Sqrt(p * (1 - p) * (1/float64(n1) + 1/float64(n2)))
		if se == 0 {
			continue
		}
		p1, p2 := float64(x1)/float64(n1), float64(x2)/float64(n2)
		if z := (p2 - p1) / se; math.Abs(z) > math.Abs(best.Z) {
			best.At, best.Z = buckets[k].Start, z
			best.BeforeShare, best.AfterShare, best.BeforeSessions, best.AfterSessions = p1, p2, n1, n2
		}
	}
	if best.Splits > 0 {
		// The two-sided normal quantile of alpha/m: Φ⁻¹(1 − alpha/(2m)).
		best.Threshold = math.Sqrt2 * math.Erfinv(1-StepAlpha/float64(best.Splits))
		best.Found = math.Abs(best.Z) > best.Threshold
	}
	return best
}
