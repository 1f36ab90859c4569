package report

import (
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"
	"time"
)

// phaseLabel is how a phase row is named in the output.
func phaseLabel(name string) string {
	switch name {
	case PhaseOther:
		return "other (menu, between phases)"
	case PhaseLoading:
		return "loading (overlaps the others)"
	}
	return name
}

// FormatDuration writes seconds as 1h02m03s, 12m05s or 45.3s; "-" for NaN.
func FormatDuration(sec float64) string {
	if math.IsNaN(sec) {
		return "-"
	}
	sign := ""
	if sec < 0 {
		sign, sec = "-", -sec
	}
	if sec < 60 {
		return fmt.Sprintf("%s%.1fs", sign, sec)
	}
	s := int64(math.Round(sec))
	if s >= 3600 {
		return fmt.Sprintf("%s%dh%02dm%02ds", sign, s/3600, s/60%60, s%60)
	}
	return fmt.Sprintf("%s%dm%02ds", sign, s/60, s%60)
}

// formatDelta writes a signed duration change and its relative size.
func formatDelta(base, cand float64) string {
	if math.IsNaN(base) || math.IsNaN(cand) {
		return "-"
	}
	d := cand - base
	s := FormatDuration(d)
	if d >= 0 {
		s = "+" + s
	}
	if base > 0 {
		s += fmt.Sprintf(" (%+.1f%%)", d/base*100)
	}
	return s
}

func pct(share float64) string { return fmt.Sprintf("%.1f%%", share*100) }

// signedDuration writes seconds with a sign: +1m00s, -45.3s, +0.0s.
func signedDuration(sec float64) string {
	s := FormatDuration(sec)
	if sec >= 0 {
		s = "+" + s
	}
	return s
}

// notSignificant marks a difference whose interval includes zero.
const notSignificant = "n.s."

// ciCell writes an interval and, when it includes zero, the n.s. mark; "-"
// when there is none.
func ciCell(iv Interval, format func(float64) string, unit string) string {
	if !iv.OK {
		return "-"
	}
	s := "[" + format(iv.Lo) + ", " + format(iv.Hi) + "]" + unit
	if !iv.Significant() {
		s += " " + notSignificant
	}
	return s
}

func durationCI(iv Interval) string { return ciCell(iv, signedDuration, "") }

// shareCICell writes a share interval in percentage points, with one
// decimal or, for a narrow interval, as many as it takes to show its width
// (at most three), so that a significant one never reads [+0.0, +0.0].
func shareCICell(iv Interval) string {
	digits := 1
	switch w := (iv.Hi - iv.Lo) * 100; {
	case w < 0.05:
		digits = 3
	case w < 0.5:
		digits = 2
	}
	return ciCell(iv, func(v float64) string { return fmt.Sprintf("%+.*f", digits, v*100) }, " pp")
}

// ciNote explains the interval columns of a comparison table.
func ciNote(method string) string {
	return fmt.Sprintf("95%% CI: %s; %s: the interval includes zero, so the difference may be noise", method, notSignificant)
}

// How each table's intervals are made, as its note says.
const shareMethod = "Wilson score interval per side, combined by Newcombe's method"

var (
	durationMethod = fmt.Sprintf("percentile bootstrap of the difference, %d seeded resamples a side, at least %d sessions a side (else -)",
		BootstrapResamples, MinSessions)
	phaseMethod = fmt.Sprintf("normal interval of the difference of two ratio estimators (delta-method variance), at least %d sessions a side (else -)",
		MinSessions)
)

// sides writes "base -> cand".
func sides[T any](base, cand T, format func(T) string) string {
	return format(base) + " -> " + format(cand)
}

// pp writes a change of share in percentage points.
func pp(base, cand float64) string { return fmt.Sprintf("%+.1f pp", (cand-base)*100) }

func count(v float64) string { return fmt.Sprintf("%.0f", v) }

// table is a titled table of cells; the text and HTML outputs share it.
type table struct {
	title  string
	note   string
	header []string
	rows   [][]string
}

func writeTables(w io.Writer, heading []string, tables []table) error {
	var b strings.Builder
	for _, h := range heading {
		b.WriteString(h + "\n")
	}
	for _, t := range tables {
		b.WriteString("\n" + t.title + "\n")
		if t.note != "" {
			b.WriteString(t.note + "\n")
		}
		if len(t.header) == 0 {
			continue
		}
		tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, strings.Join(t.header, "\t"))
		for _, r := range t.rows {
			fmt.Fprintln(tw, strings.Join(r, "\t"))
		}
		tw.Flush()
	}
	_, err := io.WriteString(w, b.String())
	if err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}

func heading(r *Report) []string {
	h := []string{
		"sessiontrace report: " + r.Source,
		fmt.Sprintf("finished sessions: %d; still open at the end of the input (left out of every figure): %d", r.Sessions, r.Open),
		crashLine(r),
	}
	if line := stepLine(r.CrashStep, r.BucketWidth); line != "" {
		h = append(h, line)
	}
	return h
}

// stepLine says when the crash share changed, if it did beyond chance.
func stepLine(s Step, width time.Duration) string {
	if s.Splits == 0 {
		return ""
	}
	if !s.Found {
		return fmt.Sprintf("crash share over time: no step (no split of the %ss passes |z| > %.2f, Bonferroni %.0f%%)",
			widthName(width), s.Threshold, StepAlpha*100)
	}
	dir := "up"
	if s.Z < 0 {
		dir = "down"
	}
	return fmt.Sprintf("crash share over time: steps %s at %s, from %s of %d sessions before to %s of %d from then on (z %.1f, above %.2f: Bonferroni %.0f%% over %d splits)",
		dir, bucketLabel(s.At, width), pct(s.BeforeShare), s.BeforeSessions, pct(s.AfterShare), s.AfterSessions,
		s.Z, s.Threshold, StepAlpha*100, s.Splits)
}

// crashLine is the headline a bad build shows in: the crash share overall
// and per client version.
func crashLine(r *Report) string {
	overall := 0.0
	for _, c := range r.EndTypes {
		if c.Name == endTypeCrash {
			overall = c.Share
		}
	}
	parts := make([]string, 0, len(r.EndTypesByVersion))
	for _, v := range r.EndTypesByVersion {
		for _, c := range v.EndTypes {
			if c.Name == endTypeCrash {
				parts = append(parts, v.Version+" "+pct(c.Share))
			}
		}
	}
	line := "crashes: " + pct(overall) + " of sessions"
	if len(parts) > 0 {
		line += "; by client version: " + strings.Join(parts, ", ")
	}
	return line
}

// endTypeCrash is the session.end_type of a crash (lifecycle.EndType).
const endTypeCrash = "crash"

func reportTables(r *Report) []table {
	dur := table{title: "Session duration by platform × client version", header: []string{"PLATFORM", "VERSION", "SESSIONS", "MEDIAN", "P90"}}
	for _, d := range r.Durations {
		dur.rows = append(dur.rows, []string{d.Platform, d.Version, fmt.Sprint(d.Sessions), FormatDuration(d.Median), FormatDuration(d.P90)})
	}
	counts := func(title, col string, cs []Count) table {
		t := table{title: title, header: []string{col, "SESSIONS", "SHARE"}}
		for _, c := range cs {
			t.rows = append(t.rows, []string{c.Name, count(c.Value), pct(c.Share)})
		}
		return t
	}
	ph := table{title: "Share of session time by phase",
		note:   "total session time " + FormatDuration(r.SessionSeconds) + "; matchmaking + in_game + other = 100%, loading overlaps them",
		header: []string{"PHASE", "TIME", "SHARE"}}
	for _, c := range r.Phases {
		ph.rows = append(ph.rows, []string{phaseLabel(c.Name), FormatDuration(c.Value), pct(c.Share)})
	}
	return []table{
		dur,
		counts("Matches per session (games entered)", "MATCHES", r.Matches),
		counts("End types", "END TYPE", r.EndTypes),
		versionTable(r),
		counts("End reasons", "END REASON", r.EndReasons),
		ph,
		timeTable(r.BucketWidth, r.Timeline, r.FirstStart, r.LastStart),
	}
}

// timeTitle names the time axis and its rule.
func timeTitle(width time.Duration) string {
	return "Over time, per " + widthName(width) + " of session start (UTC)"
}

func timeNote(width time.Duration) string {
	return fmt.Sprintf("per hour when the session starts span at most %d days, else per UTC day (up to %d days); crash: share of the bucket's sessions that ended in a crash; matches: games entered per session",
		int(MaxHourlySpan/Day), int(MaxDailySpan/Day))
}

// timeTable is the time axis; without one (sessions more than MaxDailySpan
// apart), a note of the span instead.
func timeTable(width time.Duration, buckets []TimeBucket, first, last time.Time) table {
	if width == 0 {
		t := table{title: "Over time", note: "no time axis"}
		if !first.IsZero() {
			t.note = fmt.Sprintf("left out: the sessions started from %s to %s, more than %d days apart",
				first.Format(time.RFC3339), last.Format(time.RFC3339), int(MaxDailySpan/Day))
		}
		return t
	}
	t := table{title: timeTitle(width), note: timeNote(width) + bucketRange(width, len(buckets), buckets[0].Start),
		header: []string{strings.ToUpper(widthName(width)), "SESSIONS", "MEDIAN", "CRASH", "MATCHES/SESSION"}}
	for _, b := range buckets {
		t.rows = append(t.rows, []string{bucketLabel(b.Start, width), fmt.Sprint(b.Sessions), FormatDuration(b.Median),
			bucketShare(b), formatMean(b.MatchesPerSession)})
	}
	return t
}

// bucketRange says how many buckets there are and which the first and the
// last are.
func bucketRange(width time.Duration, n int, first time.Time) string {
	unit := widthName(width) + "s"
	if n == 1 {
		unit = widthName(width)
	}
	return fmt.Sprintf("; %d %s, %s to %s", n, unit, bucketLabel(first, width), bucketLabel(first.Add(time.Duration(n-1)*width), width))
}

func bucketShare(b TimeBucket) string {
	if b.Sessions == 0 {
		return "-"
	}
	return pct(b.CrashShare)
}

func formatMean(v float64) string {
	if math.IsNaN(v) {
		return "-"
	}
	return fmt.Sprintf("%.2f", v)
}

// versionTable has the end type shares of each client version.
func versionTable(r *Report) table {
	t := table{title: "End types by client version (share of the version's sessions)", header: []string{"VERSION", "SESSIONS"}}
	for _, c := range r.EndTypes {
		t.header = append(t.header, strings.ToUpper(c.Name))
	}
	for _, v := range r.EndTypesByVersion {
		row := []string{v.Version, fmt.Sprint(v.Sessions)}
		for _, c := range v.EndTypes {
			row = append(row, pct(c.Share))
		}
		t.rows = append(t.rows, row)
	}
	return t
}

// WriteText writes r as aligned text tables.
func WriteText(w io.Writer, r *Report) error {
	return writeTables(w, heading(r), reportTables(r))
}

func comparisonHeading(c *Comparison) []string {
	return []string{
		"sessiontrace report: baseline " + c.Baseline.Source + " vs candidate " + c.Candidate.Source,
		fmt.Sprintf("finished sessions: %d -> %d; still open at the end of the input (left out): %d -> %d",
			c.Baseline.Sessions, c.Candidate.Sessions, c.Baseline.Open, c.Candidate.Open),
		comparisonCrashLine(c),
	}
}

func comparisonCrashLine(c *Comparison) string {
	line := "crashes: "
	for _, e := range c.EndTypes {
		if e.Name == endTypeCrash {
			line += pct(e.Base.Share) + " -> " + pct(e.Cand.Share) + " of sessions (" + pp(e.Base.Share, e.Cand.Share) +
				", 95% CI " + shareCICell(e.CI) + ")"
		}
	}
	if line == "crashes: " {
		return line + "none"
	}
	var parts []string
	for _, v := range c.EndTypesByVersion {
		for _, e := range v.EndTypes {
			if e.Name != endTypeCrash {
				continue
			}
			b, a := "-", "-"
			if v.BaseSessions > 0 {
				b = pct(e.Base.Share)
			}
			if v.CandSessions > 0 {
				a = pct(e.Cand.Share)
			}
			parts = append(parts, v.Version+" "+b+" -> "+a)
		}
	}
	return line + "; by client version: " + strings.Join(parts, ", ")
}

func comparisonTables(c *Comparison) []table {
	dur := table{title: "Session duration by platform × client version (baseline -> candidate)",
		note:   ciNote(durationMethod),
		header: []string{"PLATFORM", "VERSION", "SESSIONS", "MEDIAN", "Δ MEDIAN", "95% CI", "P90", "Δ P90", "95% CI"}}
	for _, d := range c.Durations {
		dur.rows = append(dur.rows, []string{d.Platform, d.Version,
			fmt.Sprintf("%d -> %d", d.Base.Sessions, d.Cand.Sessions),
			sides(d.Base.Median, d.Cand.Median, FormatDuration), formatDelta(d.Base.Median, d.Cand.Median), durationCI(d.MedianCI),
			sides(d.Base.P90, d.Cand.P90, FormatDuration), formatDelta(d.Base.P90, d.Cand.P90), durationCI(d.P90CI)})
	}
	shares := func(title, col, method string, ds []CountDelta, label func(string) string) table {
		t := table{title: title, note: ciNote(method), header: []string{col, "SESSIONS", "BASELINE", "CANDIDATE", "Δ SHARE", "95% CI"}}
		for _, d := range ds {
			t.rows = append(t.rows, []string{label(d.Name), fmt.Sprintf("%d -> %d", d.BaseN, d.CandN),
				pct(d.Base.Share), pct(d.Cand.Share), pp(d.Base.Share, d.Cand.Share), shareCICell(d.CI)})
		}
		return t
	}
	same := func(s string) string { return s }
	byVersion := table{title: "End types by client version (share of the version's sessions, baseline -> candidate)",
		note:   ciNote(shareMethod),
		header: []string{"VERSION", "END TYPE", "SESSIONS", "BASELINE", "CANDIDATE", "Δ SHARE", "95% CI"}}
	for _, v := range c.EndTypesByVersion {
		for _, e := range v.EndTypes {
			b, a, d := "-", "-", "-"
			if v.BaseSessions > 0 {
				b = pct(e.Base.Share)
			}
			if v.CandSessions > 0 {
				a = pct(e.Cand.Share)
			}
			if v.BaseSessions > 0 && v.CandSessions > 0 {
				d = pp(e.Base.Share, e.Cand.Share)
			}
			byVersion.rows = append(byVersion.rows, []string{v.Version, e.Name, fmt.Sprintf("%d -> %d", v.BaseSessions, v.CandSessions),
				b, a, d, shareCICell(e.CI)})
		}
	}
	return []table{
		dur,
		shares("End types (share of sessions)", "END TYPE", shareMethod, c.EndTypes, same),
		byVersion,
		shares("End reasons (share of sessions)", "END REASON", shareMethod, c.EndReasons, same),
		shares("Matches per session (games entered; share of sessions)", "MATCHES", shareMethod, c.Matches, same),
		shares("Share of session time by phase", "PHASE", phaseMethod, c.Phases, phaseLabel),
		comparisonTimeTable(c),
	}
}

func comparisonTimeTable(c *Comparison) table {
	if c.BucketWidth == 0 {
		return timeTable(0, nil, c.FirstStart, c.LastStart)
	}
	t := table{title: timeTitle(c.BucketWidth) + ", baseline -> candidate",
		note:   timeNote(c.BucketWidth) + bucketRange(c.BucketWidth, len(c.Timeline), c.Timeline[0].Start),
		header: []string{strings.ToUpper(widthName(c.BucketWidth)), "SESSIONS", "MEDIAN", "CRASH", "MATCHES/SESSION"}}
	for _, d := range c.Timeline {
		t.rows = append(t.rows, []string{bucketLabel(d.Start, c.BucketWidth),
			fmt.Sprintf("%d -> %d", d.Base.Sessions, d.Cand.Sessions),
			sides(d.Base.Median, d.Cand.Median, FormatDuration),
			sides(d.Base, d.Cand, bucketShare),
			sides(d.Base.MatchesPerSession, d.Cand.MatchesPerSession, formatMean)})
	}
	return t
}

// WriteComparisonText writes c as aligned text tables.
func WriteComparisonText(w io.Writer, c *Comparison) error {
	return writeTables(w, comparisonHeading(c), comparisonTables(c))
}
