package report

import (
	"fmt"
	"html"
	"html/template"
	"io"
	"math"
	"slices"
	"strings"
	"time"
	"unicode"
)

// barRow is one labelled group of bars; Values are on the chart's scale,
// Texts are written after each bar.
type barRow struct {
	Label  string
	Values []float64
	Texts  []string
}

// Series colours: the first is the baseline (or the only input), the second
// the candidate; the rest serve the charts with one bar per end type.
var seriesColours = []string{"#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860"}

const (
	chartWidth  = 720
	minBarWidth = 240
	barHeight   = 16
	barGap      = 3
	groupGap    = 10
	chartMargin = 4
	fontSize    = 12 // px, of every chart's text (the page's CSS)
)

// textWidth estimates the width in pixels of s at fontSize in a sans-serif
// font, erring wide (the widths are DejaVu Sans's, one of the widest), so
// that the space kept for a label holds it whatever font the browser picks.
// TestReportChromium measures the real boxes.
func textWidth(s string) float64 {
	em := 0.0
	for _, r := range s {
		switch {
		case strings.ContainsRune(" .,:;!|'()[]ijlft", r):
			em += 0.40
		case strings.ContainsRune("mwMW%", r):
			em += 1.0
		case unicode.IsUpper(r):
			em += 0.75
		case r < 0x80:
			em += 0.64
		default: // symbols such as → and Δ, and other scripts
			em += 1.0
		}
	}
	return em * fontSize
}

// barChart draws rows as horizontal bars scaled to scale (the largest value
// when scale is 0), as an inline SVG element. The label column and the
// space for the texts after the bars are as wide as their longest entry,
// so nothing is cut. Every string is escaped here, since the result is
// trusted by the template.
func barChart(title string, rows []barRow, scale float64) template.HTML {
	if scale <= 0 {
		for _, r := range rows {
			for _, v := range r.Values {
				if !math.IsNaN(v) {
					scale = max(scale, v)
				}
			}
		}
	}
	labelWidth, textW := 40.0, 40.0
	for _, r := range rows {
		labelWidth = max(labelWidth, textWidth(r.Label)+12)
		for _, t := range r.Texts {
			textW = max(textW, textWidth(t)+10)
		}
	}
	labelWidth, textW = math.Ceil(labelWidth), math.Ceil(textW)
	barMax := max(chartWidth-labelWidth-textW, minBarWidth)
	width := int(labelWidth + barMax + textW)
	var b strings.Builder
	y := chartMargin
	for _, r := range rows {
		groupH := len(r.Values)*(barHeight+barGap) - barGap
		fmt.Fprintf(&b, `<text x="%.0f" y="%d" text-anchor="end" dominant-baseline="middle">%s</text>`,
			labelWidth-8, y+groupH/2, html.EscapeString(r.Label))
		for i, v := range r.Values {
			w := 0.0
			if scale > 0 && !math.IsNaN(v) {
				w = max(v/scale*barMax, 0)
			}
			fmt.Fprintf(&b, `<rect x="%.0f" y="%d" width="%.1f" height="%d" fill="%s"/>`,
				labelWidth, y, w, barHeight, seriesColours[i%len(seriesColours)])
			fmt.Fprintf(&b, `<text x="%.1f" y="%d" dominant-baseline="middle">%s</text>`,
				labelWidth+w+6, y+barHeight/2, html.EscapeString(r.Texts[i]))
			y += barHeight + barGap
		}
		y += groupGap - barGap
	}
	height := y + chartMargin
	return template.HTML(fmt.Sprintf( //nolint:gosec // every interpolated string is escaped above
		`<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="%s" width="%d" height="%d" viewBox="0 0 %d %d">%s</svg>`,
		html.EscapeString(title), width, height, width, height, b.String()))
}

const (
	timeChartWidth = 1000 // px: a week of hours gets about 5.8 px a bar
	timePlotHeight = 110
	timeAxisHeight = 22
	timeTop        = 14
)

// timeChart draws one value per bucket and input as columns on a time axis,
// the inputs side by side in each bucket's slot; a NaN value (an empty
// bucket) draws nothing. Labels on the axis mark whole days, or hours when
// there is room; every bar has a tooltip with its bucket and value.
func timeChart(title string, starts []time.Time, width time.Duration, series [][]float64, format func(float64) string, left float64) template.HTML {
	top := 0.0
	for _, vs := range series {
		for _, v := range vs {
			if !math.IsNaN(v) {
				top = max(top, v)
			}
		}
	}
	topLabel, zeroLabel := format(top), format(0)
	plotW := float64(timeChartWidth) - left - 8
	n := max(len(starts), 1)
	slot := plotW / float64(n)
	var b strings.Builder
	base := float64(timeTop + timePlotHeight)
	// The axes and their scale.
	fmt.Fprintf(&b, `<line x1="%.0f" y1="%d" x2="%.0f" y2="%.0f" stroke="#999"/>`, left, timeTop, left, base)
	fmt.Fprintf(&b, `<line x1="%.0f" y1="%.0f" x2="%.1f" y2="%.0f" stroke="#999"/>`, left, base, left+plotW, base)
	fmt.Fprintf(&b, `<text x="%.0f" y="%d" text-anchor="end" dominant-baseline="middle">%s</text>`, left-4, timeTop, html.EscapeString(topLabel))
	fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" text-anchor="end" dominant-baseline="middle">%s</text>`, left-4, base, html.EscapeString(zeroLabel))
	for i, at := range starts {
		for j, vs := range series {
			v := vs[i]
			if math.IsNaN(v) {
				continue
			}
			h := 0.0
			if top > 0 {
				h = v / top * timePlotHeight
			}
			w := slot / float64(len(series))
			x := left + float64(i)*slot + float64(j)*w
			fmt.Fprintf(&b, `<rect x="%.2f" y="%.2f" width="%.2f" height="%.2f" fill="%s"><title>%s %s</title></rect>`,
				x, base-h, max(w-0.3, 0.5), h, seriesColours[j%len(seriesColours)],
				html.EscapeString(bucketLabel(at, width)), html.EscapeString(format(v)))
		}
	}
	// Tick labels: the smallest step (in buckets) that leaves room for a
	// label, on whole days or whole multiples of the step.
	steps := []int{1, 2, 3, 6, 12, 24, 48, 96, 168}
	if width == Day {
		steps = []int{1, 2, 7, 14, 28, 56, 91, 182, 364}
	}
	room := textWidth("Jan 02") + 14
	step := steps[len(steps)-1]
	for _, s := range steps {
		if float64(s)*slot >= room {
			step = s
			break
		}
	}
	for i, at := range starts {
		var label string
		switch {
		case width == Day && i%step == 0:
			label = at.Format("Jan 02")
		case width == Hour && at.Hour()%min(step, 24) == 0 && (step <= 24 || at.YearDay()%(step/24) == 0):
			label = at.Format("15:04")
			if at.Hour() == 0 {
				label = at.Format("Jan 02")
			}
		default:
			continue
		}
		x := left + float64(i)*slot
		if x+textWidth(label) > left+plotW+6 {
			continue // it would run off the chart
		}
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.0f" x2="%.1f" y2="%.0f" stroke="#999"/>`, x, base, x, base+4)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.0f" dominant-baseline="hanging">%s</text>`, x, base+6, html.EscapeString(label))
	}
	height := timeTop + timePlotHeight + timeAxisHeight
	return template.HTML(fmt.Sprintf( //nolint:gosec // every interpolated string is escaped above
		`<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="%s" width="%d" height="%d" viewBox="0 0 %d %d">%s</svg>`,
		html.EscapeString(title), timeChartWidth, height, timeChartWidth, height, b.String()))
}

// timeCharts are the four charts of a time axis, one per measure.
func timeCharts(starts []time.Time, width time.Duration, sides ...[]TimeBucket) template.HTML {
	measure := func(f func(TimeBucket) float64) [][]float64 {
		out := make([][]float64, len(sides))
		for j, bs := range sides {
			for _, b := range bs {
				v := f(b)
				if b.Sessions == 0 {
					v = nan
				}
				out[j] = append(out[j], v)
			}
		}
		return out
	}
	charts := []struct {
		title  string
		f      func(TimeBucket) float64
		format func(float64) string
	}{
		{"Sessions started", func(b TimeBucket) float64 { return float64(b.Sessions) }, count},
		{"Median session duration", func(b TimeBucket) float64 { return b.Median }, FormatDuration},
		{"Crash share", func(b TimeBucket) float64 { return b.CrashShare }, pct},
		{"Matches per session (games entered)", func(b TimeBucket) float64 { return b.MatchesPerSession }, func(v float64) string { return fmt.Sprintf("%.2f", v) }},
	}
	// One left margin for all four, wide enough for every scale label, so
	// that their time axes line up and a step reads across them.
	left := 0.0
	for _, c := range charts {
		for _, vs := range measure(c.f) {
			for _, v := range vs {
				if !math.IsNaN(v) {
					left = max(left, textWidth(c.format(v)))
				}
			}
		}
		left = max(left, textWidth(c.format(0)))
	}
	left = math.Ceil(left + 10)
	var b strings.Builder
	for _, c := range charts {
		fmt.Fprintf(&b, "<h3>%s</h3>\n", html.EscapeString(c.title))
		b.WriteString(string(timeChart(c.title+" per "+widthName(width), starts, width, measure(c.f), c.format, left)))
		b.WriteString("\n")
	}
	return template.HTML(b.String()) //nolint:gosec // built from escaped parts
}

// section is one titled part of the page: a chart and the table behind it.
type section struct {
	Title  string
	Note   string
	Legend []legendItem
	Chart  template.HTML
	Table  table
	// Fold puts the table in a closed <details> element (a long one).
	Fold bool
}

type legendItem struct{ Colour, Label string }

// page is what the template renders.
type page struct {
	Title    string
	Heading  []string
	Sections []section
}

func (t table) Header() []string { return t.header }
func (t table) Rows() [][]string { return t.rows }

var pageTemplate = template.Must(template.New("report").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
<style>
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #222; margin: 2em auto; max-width: 1120px; padding: 0 1em; }
h1 { font-size: 1.5em; margin-bottom: .2em; }
h3 { font-size: 1em; margin: 1em 0 0; font-weight: 600; }
h2 { font-size: 1.15em; margin-top: 2em; border-bottom: 1px solid #ddd; padding-bottom: .2em; }
p.meta { color: #555; margin: .1em 0; }
p.note { color: #555; font-size: .92em; }
svg { display: block; margin: .6em 0; font-size: 12px; }
svg text { fill: #222; }
table { border-collapse: collapse; margin: .6em 0 1em; font-size: .92em; }
th, td { padding: .2em .7em; text-align: right; border-bottom: 1px solid #eee; white-space: nowrap; }
div.table { overflow-x: auto; }
th:first-child, td:first-child { text-align: left; }
th { background: #f4f4f4; }
.legend span { display: inline-block; margin-right: 1.2em; }
.legend i { display: inline-block; width: .9em; height: .9em; margin-right: .35em; vertical-align: -.1em; }
</style>
</head>
<body>
<h1>{{.Title}}</h1>
{{range .Heading}}<p class="meta">{{.}}</p>
{{end}}{{range .Sections}}<section>
<h2>{{.Title}}</h2>
{{if .Note}}<p class="note">{{.Note}}</p>
{{end}}{{if .Legend}}<p class="legend">{{range .Legend}}<span><i style="background: {{.Colour}}"></i>{{.Label}}</span>{{end}}</p>
{{end}}{{.Chart}}
{{if .Table.Rows}}{{if .Fold}}<details><summary>the table ({{len .Table.Rows}} rows)</summary>
{{end}}<div class="table"><table>
<thead><tr>{{range .Table.Header}}<th>{{.}}</th>{{end}}</tr></thead>
<tbody>
{{range .Table.Rows}}<tr>{{range .}}<td>{{.}}</td>{{end}}</tr>
{{end}}</tbody>
</table></div>
{{if .Fold}}</details>
{{end}}{{end}}</section>
{{end}}</body>
</html>
`))

func writePage(w io.Writer, p page) error {
	if err := pageTemplate.Execute(w, p); err != nil {
		return fmt.Errorf("write html report: %w", err)
	}
	return nil
}

func endTypeLegend(types []Count) []legendItem {
	out := make([]legendItem, 0, len(types))
	for i, c := range types {
		out = append(out, legendItem{seriesColours[i%len(seriesColours)], c.Name})
	}
	return out
}

func groupLabel(platform, version string) string {
	if platform == All {
		return "all sessions"
	}
	return platform + " " + version
}

// WriteHTML writes r as one self-contained HTML page: inline CSS and SVG,
// no scripts and no external resources.
func WriteHTML(w io.Writer, r *Report) error {
	tables := reportTables(r)
	var dur []barRow
	for _, d := range r.Durations {
		dur = append(dur, barRow{Label: fmt.Sprintf("%s (%d)", groupLabel(d.Platform, d.Version), d.Sessions),
			Values: []float64{d.Median, d.P90},
			Texts:  []string{"median " + FormatDuration(d.Median), "p90 " + FormatDuration(d.P90)}})
	}
	shares := func(cs []Count, label func(string) string) []barRow {
		rows := make([]barRow, 0, len(cs))
		for _, c := range cs {
			rows = append(rows, barRow{Label: label(c.Name), Values: []float64{c.Share}, Texts: []string{pct(c.Share)}})
		}
		return rows
	}
	same := func(s string) string { return s }
	var byVersion []barRow
	for _, v := range r.EndTypesByVersion {
		row := barRow{Label: fmt.Sprintf("%s (%d)", v.Version, v.Sessions)}
		for _, c := range v.EndTypes {
			row.Values = append(row.Values, c.Share)
			row.Texts = append(row.Texts, c.Name+" "+pct(c.Share))
		}
		byVersion = append(byVersion, row)
	}
	p := page{
		Title:   "Session report: " + r.Source,
		Heading: heading(r)[1:],
		Sections: []section{
			{Title: tables[0].title, Note: "Bars: median and p90 session duration; the number of sessions in brackets.",
				Legend: []legendItem{{seriesColours[0], "median"}, {seriesColours[1], "p90"}},
				Chart:  barChart(tables[0].title, dur, 0), Table: tables[0]},
			{Title: tables[1].title, Note: "Share of sessions by matches played.", Chart: barChart(tables[1].title, shares(r.Matches, same), 0), Table: tables[1]},
			{Title: tables[2].title, Note: "graceful: client_quit, logout; connection_failure: timeout, connection_lost; enforcement: kicked, banned; crash: crash.",
				Chart: barChart(tables[2].title, shares(r.EndTypes, same), 0), Table: tables[2]},
			{Title: tables[3].title, Legend: endTypeLegend(r.EndTypes), Chart: barChart(tables[3].title, byVersion, 0), Table: tables[3]},
			{Title: tables[4].title, Chart: barChart(tables[4].title, shares(r.EndReasons, same), 0), Table: tables[4]},
			{Title: tables[5].title, Note: tables[5].note + ".", Chart: barChart(tables[5].title, shares(r.Phases, phaseLabel), 0), Table: tables[5]},
		},
	}
	if len(r.Timeline) > 0 {
		starts := make([]time.Time, len(r.Timeline))
		for i, b := range r.Timeline {
			starts[i] = b.Start
		}
		// First: when something changed is the first question.
		p.Sections = slices.Insert(p.Sections, 0, section{Title: tables[6].title, Note: tables[6].note + ".",
			Chart: timeCharts(starts, r.BucketWidth, r.Timeline), Table: tables[6], Fold: true})
	} else if r.Sessions > 0 {
		p.Sections = slices.Insert(p.Sections, 0, section{Title: tables[6].title, Note: tables[6].note + "."})
	}
	return writePage(w, p)
}

// WriteComparisonHTML writes c as one self-contained HTML page, each chart
// with the baseline's bar above the candidate's.
func WriteComparisonHTML(w io.Writer, c *Comparison) error {
	tables := comparisonTables(c)
	legend := []legendItem{{seriesColours[0], "baseline: " + c.Baseline.Source}, {seriesColours[1], "candidate: " + c.Candidate.Source}}
	median := make([]barRow, 0, len(c.Durations))
	p90 := make([]barRow, 0, len(c.Durations))
	for _, d := range c.Durations {
		label := fmt.Sprintf("%s (%d -> %d)", groupLabel(d.Platform, d.Version), d.Base.Sessions, d.Cand.Sessions)
		median = append(median, barRow{Label: label, Values: []float64{d.Base.Median, d.Cand.Median},
			Texts: barTexts(d.Base.Median, d.Cand.Median, d.MedianCI)})
		p90 = append(p90, barRow{Label: label, Values: []float64{d.Base.P90, d.Cand.P90},
			Texts: barTexts(d.Base.P90, d.Cand.P90, d.P90CI)})
	}
	pairs := func(ds []CountDelta, label func(string) string) []barRow {
		rows := make([]barRow, 0, len(ds))
		for _, d := range ds {
			rows = append(rows, barRow{Label: label(d.Name), Values: []float64{d.Base.Share, d.Cand.Share},
				Texts: []string{pct(d.Base.Share), pct(d.Cand.Share) + "  " + pp(d.Base.Share, d.Cand.Share) + mark(d.CI)}})
		}
		return rows
	}
	same := func(s string) string { return s }
	var byVersion []barRow
	for _, v := range c.EndTypesByVersion {
		for _, e := range v.EndTypes {
			row := barRow{Label: fmt.Sprintf("%s %s (%d -> %d)", v.Version, e.Name, v.BaseSessions, v.CandSessions),
				Values: []float64{e.Base.Share, e.Cand.Share},
				Texts:  []string{pct(e.Base.Share), pct(e.Cand.Share) + "  " + pp(e.Base.Share, e.Cand.Share) + mark(e.CI)}}
			// A version one side does not have has no share there, and
			// no difference.
			if v.BaseSessions == 0 {
				row.Values[0], row.Texts = nan, []string{"no sessions", pct(e.Cand.Share)}
			}
			if v.CandSessions == 0 {
				row.Values[1], row.Texts = nan, []string{pct(e.Base.Share), "no sessions"}
			}
			byVersion = append(byVersion, row)
		}
	}
	// The scale of every duration chart is the largest p90, so that the
	// median and p90 charts can be read against each other.
	var scale float64
	for _, d := range c.Durations {
		for _, v := range []float64{d.Base.P90, d.Cand.P90} {
			if !math.IsNaN(v) {
				scale = max(scale, v)
			}
		}
	}
	p := page{
		Title:   "Session report: " + c.Baseline.Source + " vs " + c.Candidate.Source,
		Heading: comparisonHeading(c)[1:],
		Sections: []section{
			{Title: "Median session duration", Legend: legend, Chart: barChart("Median session duration", median, scale)},
			{Title: "p90 session duration", Legend: legend, Chart: barChart("p90 session duration", p90, scale), Table: tables[0]},
			{Title: tables[1].title, Legend: legend, Chart: barChart(tables[1].title, pairs(c.EndTypes, same), 0), Table: tables[1]},
			{Title: tables[2].title, Legend: legend, Chart: barChart(tables[2].title, byVersion, 0), Table: tables[2]},
			{Title: tables[3].title, Legend: legend, Chart: barChart(tables[3].title, pairs(c.EndReasons, same), 0), Table: tables[3]},
			{Title: tables[4].title, Legend: legend, Chart: barChart(tables[4].title, pairs(c.Matches, same), 0), Table: tables[4]},
			{Title: tables[5].title, Note: "matchmaking + in_game + other = 100% of session time; loading overlaps them. " + tables[5].note + ".",
				Legend: legend, Chart: barChart(tables[5].title, pairs(c.Phases, phaseLabel), 0), Table: tables[5]},
		},
	}
	// Every table's note says how its intervals are made.
	for i := range p.Sections[1:6] {
		s := &p.Sections[i+1]
		if s.Note == "" {
			s.Note = s.Table.note + "."
		}
	}
	p.Sections[0].Note = tables[0].note + "; the number of sessions of each side in brackets."
	if len(c.Timeline) > 0 {
		starts := make([]time.Time, len(c.Timeline))
		base := make([]TimeBucket, len(c.Timeline))
		cand := make([]TimeBucket, len(c.Timeline))
		for i, d := range c.Timeline {
			starts[i], base[i], cand[i] = d.Start, d.Base, d.Cand
		}
		p.Sections = slices.Insert(p.Sections, 0, section{Title: tables[6].title, Note: tables[6].note + ".", Legend: legend,
			Chart: timeCharts(starts, c.BucketWidth, base, cand), Table: tables[6], Fold: true})
	} else if !c.FirstStart.IsZero() {
		p.Sections = slices.Insert(p.Sections, 0, section{Title: tables[6].title, Note: tables[6].note + "."})
	}
	return writePage(w, p)
}

// barTexts are the texts of a duration's two bars: each side's value
// ("no sessions" when it has none), the candidate's with the difference.
func barTexts(base, cand float64, iv Interval) []string {
	side := func(v float64) string {
		if math.IsNaN(v) {
			return "no sessions"
		}
		return FormatDuration(v)
	}
	c := side(cand)
	if !math.IsNaN(base) && !math.IsNaN(cand) {
		c += "  " + formatDelta(base, cand) + mark(iv)
	}
	return []string{side(base), c}
}

// mark is the n.s. mark of a chart's text, for a difference whose interval
// includes zero.
func mark(iv Interval) string {
	if iv.OK && !iv.Significant() {
		return " " + notSignificant
	}
	return ""
}
