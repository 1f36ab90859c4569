// Package report aggregates the spans of a replay into the four answers a
// producer asks of a build: how long sessions last per platform and client
// version, how many matches a session plays, how sessions end, and where
// session time goes. It renders them, and a comparison of two inputs, as
// aligned text tables or as one self-contained HTML page.
//
// Definitions, so that numbers can be checked by hand:
//
//   - A session is a finished root span (session.lifecycle). Sessions still
//     open at the end of the input have no root span; they are only counted
//     (Report.Open) and their phase spans are left out of every figure.
//   - Duration is session.duration_seconds (the root's own end minus start
//     when the attribute is missing). Median and p90 are exact nearest-rank
//     quantiles: the value at rank ceil(q·n) of the sorted durations.
//   - Matches are session.matches_played (games entered, so a crash during
//     the first match counts 1), bucketed 0, 1, 2, 3, 4 and 5+.
//   - End reasons and end types are session.end_reason and session.end_type;
//     a share is the count over all sessions.
//   - Phase shares divide the summed durations of the phase spans of finished
//     sessions by the summed durations of those sessions (the root spans'
//     end minus start, in nanoseconds, so that both sides have the same
//     precision). Matchmaking and in_game never overlap, so "other" (menu,
//     and any gap between phases) is what is left of the session time after
//     them. Loading runs beside the other phases, so its share is reported on
//     its own line and is not part of that sum. Login spans last no time.
//   - The time axis (Report.Timeline) puts each session in the hour or day
//     of its start; see MaxHourlySpan for which.
//   - A comparison gives every difference a 95% confidence interval and
//     marks the rows whose interval includes zero as not significant; see
//     Level for the methods.
package report

import (
	"cmp"
	"context"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/sessiontrace/sessiontrace/lifecycle"
)

// Phase rows of Report.Phases, in the order they are shown.
const (
	PhaseMatchmaking = lifecycle.PhaseMatchmaking
	PhaseInGame      = lifecycle.PhaseInGame
	PhaseOther       = "other"
	PhaseLoading     = lifecycle.PhaseLoading
)

// MatchBuckets are the labels of Report.Matches, in order; the last one
// holds every session with at least that many matches.
var MatchBuckets = []string{"0", "1", "2", "3", "4", "5+"}

// Unknown labels a session without a platform or version attribute.
const Unknown = "(none)"

// All labels the row of every platform or every version.
const All = "all"

// session is what a root span contributes.
type session struct {
	platform, version   string
	endReason, endType  string
	start               int64 // the root span's start, Unix nanoseconds
	durationSeconds     float64
	matches             int64
	spanNanos           int64
	matchmaking, inGame int64
	loading             int64
}

// phaseNanos sums the phase spans of a session whose root has not come yet.
type phaseNanos struct{ matchmaking, inGame, loading int64 }

// Collector receives the spans of a replay and aggregates them. It has the
// method set of consumer.Sink, so a Replayer can write into it directly.
// It is not safe for concurrent use; a Replayer calls it from one goroutine.
type Collector struct {
	pending  map[trace.TraceID]*phaseNanos
	sessions []session
}

// NewCollector returns an empty Collector.
func NewCollector() *Collector {
	return &Collector{pending: map[trace.TraceID]*phaseNanos{}}
}

// Write takes the spans one record finished. Phase spans come before their
// root, so they are held by trace until the root arrives.
func (c *Collector) Write(_ context.Context, spans []lifecycle.Span) error {
	for i := range spans {
		c.add(&spans[i])
	}
	return nil
}

// Close does nothing: the spans are aggregated as they arrive.
func (c *Collector) Close(context.Context) error { return nil }

func (c *Collector) add(sp *lifecycle.Span) {
	if !sp.IsRoot() {
		p := c.pending[sp.TraceID]
		if p == nil {
			p = &phaseNanos{}
			c.pending[sp.TraceID] = p
		}
		d := sp.End - sp.Start
		switch sp.Name {
		case lifecycle.SpanPhaseMatchmaking:
			p.matchmaking += d
		case lifecycle.SpanPhaseInGame:
			p.inGame += d
		case lifecycle.SpanPhaseLoading:
			p.loading += d
		}
		return
	}
	s := session{
		platform: Unknown, version: Unknown, endReason: Unknown, endType: Unknown,
		start:           sp.Start,
		durationSeconds: float64(sp.End-sp.Start) / 1e9,
		spanNanos:       sp.End - sp.Start,
	}
	for _, kv := range sp.Attrs {
		switch kv.Key {
		case lifecycle.KeyClientPlatform:
			s.platform = nonEmpty(kv.Value.AsString())
		case lifecycle.KeyClientVersion:
			s.version = nonEmpty(kv.Value.AsString())
		case lifecycle.KeyEndReason:
			s.endReason = nonEmpty(kv.Value.AsString())
		case lifecycle.KeyEndType:
			s.endType = nonEmpty(kv.Value.AsString())
		case lifecycle.KeyMatchesPlayed:
			s.matches = kv.Value.AsInt64()
		case lifecycle.KeyDurationSeconds:
			if kv.Value.Type() == attribute.FLOAT64 {
				s.durationSeconds = kv.Value.AsFloat64()
			}
		}
	}
	if p := c.pending[sp.TraceID]; p != nil {
		s.matchmaking, s.inGame, s.loading = p.matchmaking, p.inGame, p.loading
		delete(c.pending, sp.TraceID)
	}
	c.sessions = append(c.sessions, s)
}

// nonEmpty is a producer's value as the report shows it: Unknown when
// empty, and printable (see printable).
func nonEmpty(s string) string {
	if s == "" {
		return Unknown
	}
	return printable(s)
}

// printable returns s unchanged when it is valid UTF-8 of printable
// characters, and otherwise as Go would quote it without the quotes:
// control characters, invalid bytes, line and paragraph separators become
// escapes such as \x1b, \n and \u2028 (and a backslash or quote beside
// them is escaped too). Producers' values reach a terminal and an HTML page
// through the report; an escape sequence must neither act on the terminal
// nor break a table's columns.
func printable(s string) string {
	if utf8.ValidString(s) && strings.IndexFunc(s, func(r rune) bool { return !strconv.IsPrint(r) }) < 0 {
		return s
	}
	q := strconv.Quote(s)
	return q[1 : len(q)-1]
}

// Report is the aggregate of one input.
type Report struct {
	// Source names the input (a file name or a topic range).
	Source string
	// Sessions counts finished sessions; Open those still open at the end
	// of the input, which no other figure includes.
	Sessions, Open int
	// Durations has one row per platform × version, sorted, then a row per
	// platform (version All) and a last row for all sessions.
	Durations []DurationRow
	// Matches has one bucket per MatchBuckets label.
	Matches []Count
	// EndTypes and EndReasons are sorted by count, largest first.
	EndTypes, EndReasons []Count
	// EndTypesByVersion has one row per client version (every platform),
	// sorted by version, each with the end types in the order of EndTypes.
	EndTypesByVersion []VersionEndTypes
	// Phases are the PhaseMatchmaking, PhaseInGame, PhaseOther and
	// PhaseLoading rows, in that order.
	Phases []Count
	// SessionSeconds is the summed duration of the finished sessions, the
	// denominator of the phase shares.
	SessionSeconds float64
	// BucketWidth is Hour or Day (see MaxHourlySpan), and Timeline has one
	// bucket per BucketWidth from the first session start to the last; both
	// are empty without sessions, or when FirstStart and LastStart (of
	// every session) lie more than MaxDailySpan apart.
	BucketWidth           time.Duration
	Timeline              []TimeBucket
	FirstStart, LastStart time.Time
	// CrashStep is where the crash share of Timeline changes most, and
	// whether that change is beyond chance (see Step).
	CrashStep Step

	// sessions are kept for the intervals of a comparison.
	sessions []session
}

// DurationRow is the session duration distribution of one group.
type DurationRow struct {
	Platform, Version string
	Sessions          int
	// Median and P90 are in seconds.
	Median, P90 float64
}

// VersionEndTypes is the end type mix of the sessions of one client version.
type VersionEndTypes struct {
	Version  string
	Sessions int
	// EndTypes has a row per name in Report.EndTypes, zero when absent.
	EndTypes []Count
}

// Count is one labelled number and its share of the whole. Value is a count
// of sessions, or seconds for a phase.
type Count struct {
	Name  string
	Value float64
	Share float64
}

// Report aggregates what was collected. source names the input; open is the
// number of sessions still open at its end (consumer.ReplayStats.Open).
func (c *Collector) Report(source string, open int) *Report {
	r := &Report{Source: printable(source), Sessions: len(c.sessions), Open: open, sessions: c.sessions}
	if w, first, last, ok := bucketWidth(c.sessions); ok {
		r.FirstStart, r.LastStart = time.Unix(0, first).UTC(), time.Unix(0, last).UTC()
		if w > 0 {
			r.BucketWidth, r.Timeline = w, timeline(c.sessions, w, first, last)
			r.CrashStep = crashStep(r.Timeline)
		}
	}
	r.Durations = durationRows(c.sessions)

	buckets := make([]float64, len(MatchBuckets))
	types, reasons := map[string]float64{}, map[string]float64{}
	var total, mm, ig, ld int64
	for _, s := range c.sessions {
		buckets[min(max(s.matches, 0), int64(len(MatchBuckets)-1))]++
		types[s.endType]++
		reasons[s.endReason]++
		total += s.spanNanos
		mm += s.matchmaking
		ig += s.inGame
		ld += s.loading
	}
	n := float64(len(c.sessions))
	for i, label := range MatchBuckets {
		r.Matches = append(r.Matches, Count{Name: label, Value: buckets[i], Share: ratio(buckets[i], n)})
	}
	r.EndTypes = sortedCounts(types, n)
	r.EndReasons = sortedCounts(reasons, n)
	r.EndTypesByVersion = endTypesByVersion(c.sessions, r.EndTypes)
	r.SessionSeconds = float64(total) / 1e9
	other := max(total-mm-ig, 0)
	for _, p := range []struct {
		name  string
		nanos int64
	}{{PhaseMatchmaking, mm}, {PhaseInGame, ig}, {PhaseOther, other}, {PhaseLoading, ld}} {
		r.Phases = append(r.Phases, Count{Name: p.name, Value: float64(p.nanos) / 1e9, Share: ratio(float64(p.nanos), float64(total))})
	}
	return r
}

func endTypesByVersion(sessions []session, order []Count) []VersionEndTypes {
	byVersion := map[string]map[string]float64{}
	sizes := map[string]int{}
	for _, s := range sessions {
		m := byVersion[s.version]
		if m == nil {
			m = map[string]float64{}
			byVersion[s.version] = m
		}
		m[s.endType]++
		sizes[s.version]++
	}
	versions := make([]string, 0, len(byVersion))
	for v := range byVersion {
		versions = append(versions, v)
	}
	slices.Sort(versions)
	out := make([]VersionEndTypes, 0, len(versions))
	for _, v := range versions {
		row := VersionEndTypes{Version: v, Sessions: sizes[v]}
		for _, o := range order {
			n := byVersion[v][o.Name]
			row.EndTypes = append(row.EndTypes, Count{Name: o.Name, Value: n, Share: ratio(n, float64(sizes[v]))})
		}
		out = append(out, row)
	}
	return out
}

func durationRows(sessions []session) []DurationRow {
	groups := durationGroups(sessions)
	keys := make([]groupKey, 0, len(groups))
	for k := range groups {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b groupKey) int { return compareGroups(a.platform, a.version, b.platform, b.version) })
	rows := make([]DurationRow, 0, len(keys))
	for _, k := range keys {
		d := groups[k]
		rows = append(rows, DurationRow{Platform: k.platform, Version: k.version, Sessions: len(d),
			Median: Quantile(d, 0.5), P90: Quantile(d, 0.9)})
	}
	return rows
}

// compareGroups orders duration groups: platforms by name, each with its
// All row after its versions, and the overall row at the very end.
func compareGroups(pa, va, pb, vb string) int {
	if c := cmp.Compare(b2i(pa == All), b2i(pb == All)); c != 0 {
		return c
	}
	if c := cmp.Compare(pa, pb); c != 0 {
		return c
	}
	if c := cmp.Compare(b2i(va == All), b2i(vb == All)); c != 0 {
		return c
	}
	return cmp.Compare(va, vb)
}

var nan = math.NaN()

// Quantile returns the nearest-rank q-quantile of sorted: the value at rank
// ceil(q·n), so that it is always one of the observations. It is NaN for
// no observations.
func Quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return math.NaN()
	}
	rank := int(math.Ceil(q * float64(len(sorted))))
	return sorted[min(max(rank, 1), len(sorted))-1]
}

func sortedCounts(m map[string]float64, total float64) []Count {
	out := make([]Count, 0, len(m))
	for k, v := range m {
		out = append(out, Count{Name: k, Value: v, Share: ratio(v, total)})
	}
	slices.SortFunc(out, func(a, b Count) int {
		if c := cmp.Compare(b.Value, a.Value); c != 0 {
			return c
		}
		return cmp.Compare(a.Name, b.Name)
	})
	return out
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}
