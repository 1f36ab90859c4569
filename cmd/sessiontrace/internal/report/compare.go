package report

import (
	"cmp"
	"slices"
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
}

// VersionDelta pairs the end type mix of one client version.
type VersionDelta struct {
	Version                    string
	BaseSessions, CandSessions int
	EndTypes                   []CountDelta
}

// DurationDelta pairs the duration rows of one group.
type DurationDelta struct {
	Platform, Version string
	Base, Cand        DurationRow
}

// CountDelta pairs the counts of one row.
type CountDelta struct {
	Name       string
	Base, Cand Count
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
	for _, k := range keys {
		c.Durations = append(c.Durations, *rows[k])
	}
	c.EndTypes = pairCounts(base.EndTypes, cand.EndTypes, true)
	c.EndReasons = pairCounts(base.EndReasons, cand.EndReasons, true)
	c.Matches = pairCounts(base.Matches, cand.Matches, false)
	c.Phases = pairCounts(base.Phases, cand.Phases, false)
	c.EndTypesByVersion = pairVersions(base.EndTypesByVersion, cand.EndTypesByVersion, c.EndTypes)
	return c
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
			d.EndTypes = append(d.EndTypes, CountDelta{Name: o.Name, Base: share(b, o.Name), Cand: share(c, o.Name)})
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
