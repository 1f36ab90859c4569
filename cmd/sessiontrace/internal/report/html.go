package report

import (
	"fmt"
	"html"
	"html/template"
	"io"
	"math"
	"strings"
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
	labelWidth  = 190
	textWidth   = 150
	barHeight   = 16
	barGap      = 3
	groupGap    = 10
	chartMargin = 4
)

// barChart draws rows as horizontal bars scaled to scale (the largest value
// when scale is 0), as an inline SVG element. Every string is escaped here,
// since the result is trusted by the template.
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
	barMax := float64(chartWidth - labelWidth - textWidth)
	var b strings.Builder
	y := chartMargin
	for _, r := range rows {
		groupH := len(r.Values)*(barHeight+barGap) - barGap
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end" dominant-baseline="middle">%s</text>`,
			labelWidth-8, y+groupH/2, html.EscapeString(r.Label))
		for i, v := range r.Values {
			w := 0.0
			if scale > 0 && !math.IsNaN(v) {
				w = max(v/scale*barMax, 0)
			}
			fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.1f" height="%d" fill="%s"/>`,
				labelWidth, y, w, barHeight, seriesColours[i%len(seriesColours)])
			fmt.Fprintf(&b, `<text x="%.1f" y="%d" dominant-baseline="middle">%s</text>`,
				float64(labelWidth)+w+6, y+barHeight/2, html.EscapeString(r.Texts[i]))
			y += barHeight + barGap
		}
		y += groupGap - barGap
	}
	height := y + chartMargin
	return template.HTML(fmt.Sprintf( //nolint:gosec // every interpolated string is escaped above
		`<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="%s" width="%d" height="%d" viewBox="0 0 %d %d">%s</svg>`,
		html.EscapeString(title), chartWidth, height, chartWidth, height, b.String()))
}

// section is one titled part of the page: a chart and the table behind it.
type section struct {
	Title  string
	Note   string
	Legend []legendItem
	Chart  template.HTML
	Table  table
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
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #222; margin: 2em auto; max-width: 900px; padding: 0 1em; }
h1 { font-size: 1.5em; margin-bottom: .2em; }
h2 { font-size: 1.15em; margin-top: 2em; border-bottom: 1px solid #ddd; padding-bottom: .2em; }
p.meta { color: #555; margin: .1em 0; }
p.note { color: #555; font-size: .92em; }
svg { display: block; margin: .6em 0; font-size: 12px; }
svg text { fill: #222; }
table { border-collapse: collapse; margin: .6em 0 1em; font-size: .92em; }
th, td { padding: .2em .7em; text-align: right; border-bottom: 1px solid #eee; }
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
{{if .Table.Rows}}<table>
<thead><tr>{{range .Table.Header}}<th>{{.}}</th>{{end}}</tr></thead>
<tbody>
{{range .Table.Rows}}<tr>{{range .}}<td>{{.}}</td>{{end}}</tr>
{{end}}</tbody>
</table>
{{end}}</section>
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
		label := groupLabel(d.Platform, d.Version)
		median = append(median, barRow{Label: label, Values: []float64{d.Base.Median, d.Cand.Median},
			Texts: []string{FormatDuration(d.Base.Median), FormatDuration(d.Cand.Median) + "  " + formatDelta(d.Base.Median, d.Cand.Median)}})
		p90 = append(p90, barRow{Label: label, Values: []float64{d.Base.P90, d.Cand.P90},
			Texts: []string{FormatDuration(d.Base.P90), FormatDuration(d.Cand.P90) + "  " + formatDelta(d.Base.P90, d.Cand.P90)}})
	}
	pairs := func(ds []CountDelta, label func(string) string) []barRow {
		rows := make([]barRow, 0, len(ds))
		for _, d := range ds {
			rows = append(rows, barRow{Label: label(d.Name), Values: []float64{d.Base.Share, d.Cand.Share},
				Texts: []string{pct(d.Base.Share), pct(d.Cand.Share) + "  " + pp(d.Base.Share, d.Cand.Share)}})
		}
		return rows
	}
	same := func(s string) string { return s }
	var byVersion []barRow
	for _, v := range c.EndTypesByVersion {
		for _, e := range v.EndTypes {
			byVersion = append(byVersion, barRow{Label: v.Version + " " + e.Name, Values: []float64{e.Base.Share, e.Cand.Share},
				Texts: []string{pct(e.Base.Share), pct(e.Cand.Share) + "  " + pp(e.Base.Share, e.Cand.Share)}})
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
			{Title: tables[5].title, Note: "matchmaking + in_game + other = 100% of session time; loading overlaps them.",
				Legend: legend, Chart: barChart(tables[5].title, pairs(c.Phases, phaseLabel), 0), Table: tables[5]},
		},
	}
	return writePage(w, p)
}
