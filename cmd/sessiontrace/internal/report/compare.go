package report

import (
	"cmp"
	"slices"
	"time"
)

// Comparison sets a candidate input beside a baseline, row by row.
type Comparison struct {
	Baseline, Candidate *Report
	// Durations has a row for every platform × version group in either
	// input, in the order of Report.Durations; a group missing from one
	// side has zero sessions and NaN quantiles there.
	Durations []DurationDelta
	// EndTypes, EndReasons, Matches and Phases pair the rows of the same
	// name; a row missing from one side is zero there.
	EndTypes, EndReasons, Matches, Phases []CountDelta
	// EndTypesByVersion has a row per client version in either input, each
	// with the end types in the order of EndTypes.
	EndTypesByVersion []VersionDelta
	// BucketWidth and Timeline are the time axis of both inputs together:
	// the width follows from the span of all session starts, FirstStart to
	// LastStart (MaxHourlySpan, MaxDailySpan), and each bucket holds what
	// each side has in it.
	BucketWidth           time.Duration
	Timeline              []TimeDelta
	FirstStart, LastStart time.Time
}

// TimeDelta pairs the sessions of both inputs that started in one bucket.
type TimeDelta struct {
	Start      time.Time
	Base, Cand TimeBucket
}

// VersionDelta pairs the end type mix of one client version.
type VersionDelta struct {
	Version                    string
	BaseSessions, CandSessions int
	EndTypes                   []CountDelta
}

// DurationDelta pairs the duration rows of one group. MedianCI and P90CI
// are bootstrap intervals of the candidate's quantile minus the baseline's,
// in seconds (see Level).
type DurationDelta struct {
	Platform, Version string
	Base, Cand        DurationRow
	MedianCI, P90CI   Interval
}

// CountDelta pairs the counts of one row. BaseN and CandN are the sample
// sizes behind the shares: the sessions of each side (of the version, in
// VersionDelta). CI is the interval of the candidate's share minus the
// baseline's (see Level).
type CountDelta struct {
	Name         string
	Base, Cand   Count
	BaseN, CandN int
	CI           Interval
}

// Compare pairs the rows of base and cand.
func Compare(base, cand *Report) *Comparison {
	c := &Comparison{Baseline: base, Candidate: cand}
	type key struct{ platform, version string }
	rows := map[key]*DurationDelta{}
	var keys []key
	for side, r := range []*Report{base, cand} {
		for _, d := range r.Durations {
			k := key{d.Platform, d.Version}
			dd := rows[k]
			if dd == nil {
				dd = &DurationDelta{Platform: d.Platform, Version: d.Version, Base: emptyRow(d), Cand: emptyRow(d)}
				rows[k] = dd
				keys = append(keys, k)
			}
			if side == 0 {
				dd.Base = d
			} else {
				dd.Cand = d
			}
		}
	}
	slices.SortFunc(keys, func(a, b key) int { return compareGroups(a.platform, a.version, b.platform, b.version) })
	baseGroups, candGroups := durationGroups(base.sessions), durationGroups(cand.sessions)
	for _, k := range keys {
		d := *rows[k]
		bg, cg := baseGroups[groupKey{k.platform, k.version}], candGroups[groupKey{k.platform, k.version}]
		d.MedianCI = BootstrapQuantileDiff(bg, cg, 0.5, BootstrapResamples, seedFor("median", k.platform, k.version))
		d.P90CI = BootstrapQuantileDiff(bg, cg, 0.9, BootstrapResamples, seedFor("p90", k.platform, k.version))
		c.Durations = append(c.Durations, d)
	}
	c.EndTypes = pairCounts(base.EndTypes, cand.EndTypes, true)
	c.EndReasons = pairCounts(base.EndReasons, cand.EndReasons, true)
	c.Matches = pairCounts(base.Matches, cand.Matches, false)
	for _, ds := range [][]CountDelta{c.EndTypes, c.EndReasons, c.Matches} {
		for i := range ds {
			shareCI(&ds[i], base.Sessions, cand.Sessions)
		}
	}
	c.Phases = pairCounts(base.Phases, cand.Phases, false)
	bm, cm := phaseMoments(base.sessions), phaseMoments(cand.sessions)
	for i := range c.Phases {
		p := &c.Phases[i]
		p.BaseN, p.CandN = base.Sessions, cand.Sessions
		p.CI = ratioDiff(bm[p.Name], cm[p.Name])
	}
	c.EndTypesByVersion = pairVersions(base.EndTypesByVersion, cand.EndTypesByVersion, c.EndTypes)
	if w, first, last, ok := bucketWidth(base.sessions, cand.sessions); ok {
		c.FirstStart, c.LastStart = time.Unix(0, first).UTC(), time.Unix(0, last).UTC()
		if w > 0 {
			c.BucketWidth = w
			bt, ct := timeline(base.sessions, w, first, last), timeline(cand.sessions, w, first, last)
			for i := range bt {
				c.Timeline = append(c.Timeline, TimeDelta{Start: bt[i].Start, Base: bt[i], Cand: ct[i]})
			}
		}
	}
	return c
}

// shareCI sets the sample sizes and the Newcombe interval of a share of
// sessions.
func shareCI(d *CountDelta, baseN, candN int) {
	d.BaseN, d.CandN = baseN, candN
	d.CI = Newcombe(d.Base.Value, float64(baseN), d.Cand.Value, float64(candN))
}

type groupKey struct{ platform, version string }

// durationGroups returns the sorted durations of every duration row's group.
func durationGroups(sessions []session) map[groupKey][]float64 {
	groups := map[groupKey][]float64{}
	for _, s := range sessions {
		for _, k := range []groupKey{{s.platform, s.version}, {s.platform, All}, {All, All}} {
			groups[k] = append(groups[k], s.durationSeconds)
		}
	}
	for _, d := range groups {
		slices.Sort(d)
	}
	return groups
}

// phaseMoments returns, per phase row, the sums of its ratio estimator: the
// phase's seconds over the session's, per session.
func phaseMoments(sessions []session) map[string]ratioMoments {
	var mm, ig, other, ld ratioMoments
	for _, s := range sessions {
		x := float64(s.spanNanos) / 1e9
		mm.add(float64(s.matchmaking)/1e9, x)
		ig.add(float64(s.inGame)/1e9, x)
		other.add(float64(max(s.spanNanos-s.matchmaking-s.inGame, 0))/1e9, x)
		ld.add(float64(s.loading)/1e9, x)
	}
	return map[string]ratioMoments{PhaseMatchmaking: mm, PhaseInGame: ig, PhaseOther: other, PhaseLoading: ld}
}

func pairVersions(base, cand []VersionEndTypes, order []CountDelta) []VersionDelta {
	find := func(rows []VersionEndTypes, v string) VersionEndTypes {
		for _, r := range rows {
			if r.Version == v {
				return r
			}
		}
		return VersionEndTypes{Version: v}
	}
	share := func(r VersionEndTypes, name string) Count {
		for _, c := range r.EndTypes {
			if c.Name == name {
				return c
			}
		}
		return Count{Name: name}
	}
	var versions []string
	for _, rows := range [][]VersionEndTypes{base, cand} {
		for _, r := range rows {
			if !slices.Contains(versions, r.Version) {
				versions = append(versions, r.Version)
			}
		}
	}
	slices.Sort(versions)
	out := make([]VersionDelta, 0, len(versions))
	for _, v := range versions {
		b, c := find(base, v), find(cand, v)
		d := VersionDelta{Version: v, BaseSessions: b.Sessions, CandSessions: c.Sessions}
		for _, o := range order {
			e := CountDelta{Name: o.Name, Base: share(b, o.Name), Cand: share(c, o.Name)}
			shareCI(&e, b.Sessions, c.Sessions)
			d.EndTypes = append(d.EndTypes, e)
		}
		out = append(out, d)
	}
	return out
}

func emptyRow(d DurationRow) DurationRow {
	return DurationRow{Platform: d.Platform, Version: d.Version, Median: nan, P90: nan}
}

// pairCounts pairs rows by name: in the baseline's order then the
// candidate's new rows, or, with byShare, by the larger of the two shares.
func pairCounts(base, cand []Count, byShare bool) []CountDelta {
	idx := map[string]int{}
	var out []CountDelta
	for side, cs := range [][]Count{base, cand} {
		for _, c := range cs {
			i, ok := idx[c.Name]
			if !ok {
				i = len(out)
				idx[c.Name] = i
				out = append(out, CountDelta{Name: c.Name, Base: Count{Name: c.Name}, Cand: Count{Name: c.Name}})
			}
			if side == 0 {
				out[i].Base = c
			} else {
				out[i].Cand = c
			}
		}
	}
	if byShare {
		slices.SortStableFunc(out, func(a, b CountDelta) int {
			if c := cmp.Compare(max(b.Base.Share, b.Cand.Share), max(a.Base.Share, a.Cand.Share)); c != 0 {
				return c
			}
			return cmp.Compare(a.Name, b.Name)
		})
	}
	return out
}
