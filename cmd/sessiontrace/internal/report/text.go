package report

import (
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"
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
	return []string{
		"sessiontrace report: " + r.Source,
		fmt.Sprintf("finished sessions: %d; still open at the end of the input (left out of every figure): %d", r.Sessions, r.Open),
		crashLine(r),
	}
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
		counts("Matches per session", "MATCHES", r.Matches),
		counts("End types", "END TYPE", r.EndTypes),
		versionTable(r),
		counts("End reasons", "END REASON", r.EndReasons),
		ph,
	}
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
			line += pct(e.Base.Share) + " -> " + pct(e.Cand.Share) + " of sessions (" + pp(e.Base.Share, e.Cand.Share) + ")"
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
		header: []string{"PLATFORM", "VERSION", "SESSIONS", "MEDIAN", "Δ MEDIAN", "P90", "Δ P90"}}
	for _, d := range c.Durations {
		dur.rows = append(dur.rows, []string{d.Platform, d.Version,
			fmt.Sprintf("%d -> %d", d.Base.Sessions, d.Cand.Sessions),
			FormatDuration(d.Base.Median) + " -> " + FormatDuration(d.Cand.Median), formatDelta(d.Base.Median, d.Cand.Median),
			FormatDuration(d.Base.P90) + " -> " + FormatDuration(d.Cand.P90), formatDelta(d.Base.P90, d.Cand.P90)})
	}
	shares := func(title, col string, ds []CountDelta, label func(string) string) table {
		t := table{title: title, header: []string{col, "BASELINE", "CANDIDATE", "Δ SHARE"}}
		for _, d := range ds {
			t.rows = append(t.rows, []string{label(d.Name), pct(d.Base.Share), pct(d.Cand.Share), pp(d.Base.Share, d.Cand.Share)})
		}
		return t
	}
	same := func(s string) string { return s }
	byVersion := table{title: "End types by client version (share of the version's sessions, baseline -> candidate)",
		header: []string{"VERSION", "SESSIONS"}}
	for _, e := range c.EndTypes {
		byVersion.header = append(byVersion.header, strings.ToUpper(e.Name))
	}
	for _, v := range c.EndTypesByVersion {
		row := []string{v.Version, fmt.Sprintf("%d -> %d", v.BaseSessions, v.CandSessions)}
		for _, e := range v.EndTypes {
			switch {
			case v.BaseSessions == 0:
				row = append(row, "- -> "+pct(e.Cand.Share))
			case v.CandSessions == 0:
				row = append(row, pct(e.Base.Share)+" -> -")
			default:
				row = append(row, pct(e.Base.Share)+" -> "+pct(e.Cand.Share)+" ("+pp(e.Base.Share, e.Cand.Share)+")")
			}
		}
		byVersion.rows = append(byVersion.rows, row)
	}
	return []table{
		dur,
		shares("End types (share of sessions)", "END TYPE", c.EndTypes, same),
		byVersion,
		shares("End reasons (share of sessions)", "END REASON", c.EndReasons, same),
		shares("Matches per session (share of sessions)", "MATCHES", c.Matches, same),
		shares("Share of session time by phase", "PHASE", c.Phases, phaseLabel),
	}
}

// WriteComparisonText writes c as aligned text tables.
func WriteComparisonText(w io.Writer, c *Comparison) error {
	return writeTables(w, comparisonHeading(c), comparisonTables(c))
}
