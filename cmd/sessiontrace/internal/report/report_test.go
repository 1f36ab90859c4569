package report_test

import (
	"bytes"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/sessiontrace/sessiontrace/cmd/sessiontrace/internal/recordio"
	"github.com/sessiontrace/sessiontrace/cmd/sessiontrace/internal/report"
	"github.com/sessiontrace/sessiontrace/consumer"
	"github.com/sessiontrace/sessiontrace/lifecycle"
)

// The scenarios are written by hand (testdata/report/*.jsonl); the
// expectations below are computed from their timestamps, not from a run.
var (
	baselineFile  = filepath.Join("..", "..", "..", "..", "testdata", "report", "baseline.jsonl")
	candidateFile = filepath.Join("..", "..", "..", "..", "testdata", "report", "candidate.jsonl")
)

// replayFile runs path through a Replayer into a Collector, as the report
// command does.
func replayFile(t *testing.T, path string, closeOpen bool) *report.Report {
	t.Helper()
	fh, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fh.Close() })
	col := report.NewCollector()
	rp, err := consumer.NewReplayer(consumer.DefaultConfig(), col)
	if err != nil {
		t.Fatal(err)
	}
	rd := recordio.NewReader(fh, path)
	for {
		rec, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := rp.Process(t.Context(), consumer.Record{Topic: rec.Topic, Partition: rec.Partition, Offset: rec.Offset, Key: rec.Key, Value: rec.Value}); err != nil {
			t.Fatal(err)
		}
	}
	stats, err := rp.Finish(t.Context(), closeOpen)
	if err != nil {
		t.Fatal(err)
	}
	open := len(stats.Open)
	if closeOpen {
		open = 0
	}
	return col.Report(filepath.Base(path), open)
}

func TestReportBaseline(t *testing.T) {
	r := replayFile(t, baselineFile, false)
	if r.Sessions != 5 || r.Open != 1 {
		t.Fatalf("sessions %d open %d, want 5 and 1", r.Sessions, r.Open)
	}
	// pc 1.0: 300, 1200, 1800 s; ps5 2.0: 600, 1500 s. Nearest rank:
	// median = rank ceil(n/2), p90 = rank ceil(0.9n).
	wantDur := []report.DurationRow{
		{Platform: "pc", Version: "1.0", Sessions: 3, Median: 1200, P90: 1800},
		{Platform: "pc", Version: report.All, Sessions: 3, Median: 1200, P90: 1800},
		{Platform: "ps5", Version: "2.0", Sessions: 2, Median: 600, P90: 1500},
		{Platform: "ps5", Version: report.All, Sessions: 2, Median: 600, P90: 1500},
		{Platform: report.All, Version: report.All, Sessions: 5, Median: 1200, P90: 1800},
	}
	checkRows(t, "durations", r.Durations, wantDur)
	checkCounts(t, "matches", r.Matches, []report.Count{
		{Name: "0", Value: 2, Share: 0.4}, {Name: "1", Value: 1, Share: 0.2}, {Name: "2", Value: 1, Share: 0.2},
		{Name: "3"}, {Name: "4"}, {Name: "5+", Value: 1, Share: 0.2},
	})
	checkCounts(t, "end types", r.EndTypes, []report.Count{
		{Name: "graceful", Value: 2, Share: 0.4}, {Name: "connection_failure", Value: 1, Share: 0.2},
		{Name: "crash", Value: 1, Share: 0.2}, {Name: "enforcement", Value: 1, Share: 0.2},
	})
	checkCounts(t, "end reasons", r.EndReasons, []report.Count{
		{Name: "client_quit", Value: 1, Share: 0.2}, {Name: "connection_lost", Value: 1, Share: 0.2},
		{Name: "crash", Value: 1, Share: 0.2}, {Name: "kicked", Value: 1, Share: 0.2}, {Name: "logout", Value: 1, Share: 0.2},
	})
	// Version 1.0: client_quit, crash, logout; 2.0: connection_lost, kicked.
	if got := len(r.EndTypesByVersion); got != 2 {
		t.Fatalf("%d versions, want 2", got)
	}
	checkCounts(t, "end types of 1.0", r.EndTypesByVersion[0].EndTypes, []report.Count{
		{Name: "graceful", Value: 2, Share: 2.0 / 3}, {Name: "connection_failure"}, {Name: "crash", Value: 1, Share: 1.0 / 3}, {Name: "enforcement"},
	})
	checkCounts(t, "end types of 2.0", r.EndTypesByVersion[1].EndTypes, []report.Count{
		{Name: "graceful"}, {Name: "connection_failure", Value: 1, Share: 0.5}, {Name: "crash"}, {Name: "enforcement", Value: 1, Share: 0.5},
	})
	// 5400 s of sessions; matchmaking 60+60, in game 600 + 1200 + 1180,
	// loading 30. The open session's matchmaking is not counted.
	if r.SessionSeconds != 5400 {
		t.Errorf("session seconds %v, want 5400", r.SessionSeconds)
	}
	checkCounts(t, "phases", r.Phases, []report.Count{
		{Name: report.PhaseMatchmaking, Value: 120, Share: 120.0 / 5400},
		{Name: report.PhaseInGame, Value: 2980, Share: 2980.0 / 5400},
		{Name: report.PhaseOther, Value: 2300, Share: 2300.0 / 5400},
		{Name: report.PhaseLoading, Value: 30, Share: 30.0 / 5400},
	})
}

func TestReportCloseOpen(t *testing.T) {
	r := replayFile(t, baselineFile, true)
	if r.Sessions != 6 || r.Open != 0 {
		t.Fatalf("sessions %d open %d, want 6 and 0", r.Sessions, r.Open)
	}
	for _, c := range r.EndReasons {
		if c.Name == lifecycle.EndOfInput {
			if c.Value != 1 {
				t.Errorf("end_of_input %v times, want once", c.Value)
			}
			return
		}
	}
	t.Errorf("no end_of_input among the end reasons %+v", r.EndReasons)
}

func TestCompare(t *testing.T) {
	c := report.Compare(replayFile(t, baselineFile, false), replayFile(t, candidateFile, false))
	nan := math.NaN()
	// Candidate: pc 1.0 600 s; pc 1.1 300, 900 s; ps5 2.0 1200 s.
	want := []report.DurationDelta{
		{Platform: "pc", Version: "1.0", Base: report.DurationRow{Sessions: 3, Median: 1200, P90: 1800}, Cand: report.DurationRow{Sessions: 1, Median: 600, P90: 600}},
		{Platform: "pc", Version: "1.1", Base: report.DurationRow{Median: nan, P90: nan}, Cand: report.DurationRow{Sessions: 2, Median: 300, P90: 900}},
		{Platform: "pc", Version: report.All, Base: report.DurationRow{Sessions: 3, Median: 1200, P90: 1800}, Cand: report.DurationRow{Sessions: 3, Median: 600, P90: 900}},
		{Platform: "ps5", Version: "2.0", Base: report.DurationRow{Sessions: 2, Median: 600, P90: 1500}, Cand: report.DurationRow{Sessions: 1, Median: 1200, P90: 1200}},
		{Platform: "ps5", Version: report.All, Base: report.DurationRow{Sessions: 2, Median: 600, P90: 1500}, Cand: report.DurationRow{Sessions: 1, Median: 1200, P90: 1200}},
		{Platform: report.All, Version: report.All, Base: report.DurationRow{Sessions: 5, Median: 1200, P90: 1800}, Cand: report.DurationRow{Sessions: 4, Median: 600, P90: 1200}},
	}
	if len(c.Durations) != len(want) {
		t.Fatalf("%d duration rows, want %d: %+v", len(c.Durations), len(want), c.Durations)
	}
	for i, w := range want {
		g := c.Durations[i]
		if g.Platform != w.Platform || g.Version != w.Version ||
			!sameRow(g.Base, w.Base) || !sameRow(g.Cand, w.Cand) {
			t.Errorf("row %d: got %+v, want %+v", i, g, w)
		}
	}
	crash := c.EndTypes[0]
	if crash.Name != "crash" || crash.Base.Share != 0.2 || crash.Cand.Share != 0.5 {
		t.Errorf("first end type %+v, want crash 20%% -> 50%%", crash)
	}
	if got := c.Phases[1]; got.Name != report.PhaseInGame || got.Cand.Share != 0.4 {
		t.Errorf("in_game %+v, want candidate share 0.4 (1200 of 3000 s)", got)
	}
}

func sameRow(a, b report.DurationRow) bool {
	eq := func(x, y float64) bool { return x == y || (math.IsNaN(x) && math.IsNaN(y)) }
	return a.Sessions == b.Sessions && eq(a.Median, b.Median) && eq(a.P90, b.P90)
}

func TestQuantile(t *testing.T) {
	for _, c := range []struct {
		name string
		data []float64
		q    float64
		want float64
	}{
		{"one value", []float64{7}, 0.9, 7},
		{"median of even count is the lower", []float64{1, 2, 3, 4}, 0.5, 2},
		{"median of odd count", []float64{1, 2, 3}, 0.5, 2},
		{"p90 of ten", []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 0.9, 9},
		{"p90 of eleven", []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}, 0.9, 10},
		{"q zero is the minimum", []float64{3, 4}, 0, 3},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := report.Quantile(c.data, c.q); got != c.want {
				t.Errorf("Quantile(%v, %v) = %v, want %v", c.data, c.q, got, c.want)
			}
		})
	}
	if got := report.Quantile(nil, 0.5); !math.IsNaN(got) {
		t.Errorf("Quantile of nothing = %v, want NaN", got)
	}
}

func TestFormatDuration(t *testing.T) {
	for _, c := range []struct {
		sec  float64
		want string
	}{{0, "0.0s"}, {45.34, "45.3s"}, {60, "1m00s"}, {725.4, "12m05s"}, {3723, "1h02m03s"}, {-600, "-10m00s"}, {math.NaN(), "-"}} {
		if got := report.FormatDuration(c.sec); got != c.want {
			t.Errorf("FormatDuration(%v) = %q, want %q", c.sec, got, c.want)
		}
	}
}

// urlPattern finds absolute URLs; the SVG namespace is the only one allowed.
var urlPattern = regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}[^"'\s<>)]*`)

// TestHTMLSelfContained checks that the pages load nothing: no script, no
// external reference, and attribute values from the data are escaped.
func TestHTMLSelfContained(t *testing.T) {
	col := report.NewCollector()
	tid := trace.TraceID{1}
	if err := col.Write(t.Context(), []lifecycle.Span{{
		Name: lifecycle.SpanLifecycle, TraceID: tid, SpanID: trace.SpanID{1}, Start: 0, End: 60e9,
		Attrs: []attribute.KeyValue{
			lifecycle.KeyClientPlatform.String(`<script>alert(1)</script>`),
			lifecycle.KeyClientVersion.String("1.0\"><img src=x>\x00\x85\u2028\xff"),
			lifecycle.KeyEndReason.String("crash\x1b[2J\r\nlevel=ERROR msg=forged\t"), lifecycle.KeyEndType.String("crash"),
		},
	}}); err != nil {
		t.Fatal(err)
	}
	hostile := col.Report("hostile <input>\x1b]0;title\x07", 0)
	base := replayFile(t, baselineFile, false)
	for _, c := range []struct {
		name  string
		write func(io.Writer) error
	}{
		{"report", func(w io.Writer) error { return report.WriteHTML(w, base) }},
		{"hostile labels", func(w io.Writer) error { return report.WriteHTML(w, hostile) }},
		{"comparison", func(w io.Writer) error { return report.WriteComparisonHTML(w, report.Compare(base, hostile)) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := c.write(&b); err != nil {
				t.Fatal(err)
			}
			page := b.String()
			checkPrintable(t, page)
			for _, bad := range []string{"<script", "<img", "<link", "<iframe", "@import", "url("} {
				if strings.Contains(strings.ToLower(page), bad) {
					t.Errorf("page contains %q", bad)
				}
			}
			for _, u := range urlPattern.FindAllString(page, -1) {
				if u != "http://www.w3.org/2000/svg" {
					t.Errorf("page references %q", u)
				}
			}
			// The hostile candidate has no version 1.0, whose baseline
			// sessions are 66.7% graceful: no 0.0% and no -66.7 pp for it.
			if c.name == "comparison" && (strings.Contains(page, "0.0%  -66.7 pp") || !strings.Contains(page, "no sessions")) {
				t.Error("a version the candidate does not have shows a share and a difference")
			}
			if !strings.Contains(page, "<svg") || !strings.HasPrefix(page, "<!DOCTYPE html>") {
				t.Errorf("page has no chart or no doctype:\n%.300s", page)
			}
		})
	}
}

func checkRows(t *testing.T, what string, got, want []report.DurationRow) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d rows, want %d: %+v", what, len(got), len(want), got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("%s row %d: got %+v, want %+v", what, i, got[i], want[i])
		}
	}
}

func checkCounts(t *testing.T, what string, got, want []report.Count) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d rows, want %d: %+v", what, len(got), len(want), got)
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Name != w.Name || math.Abs(g.Value-w.Value) > 1e-9 || math.Abs(g.Share-w.Share) > 1e-12 {
			t.Errorf("%s row %d: got %+v, want %+v", what, i, g, w)
		}
	}
}

// checkPrintable fails when out holds a control character other than a
// newline or tab, invalid UTF-8, or a line a producer's value forged.
func checkPrintable(t *testing.T, out string) {
	t.Helper()
	if !utf8.ValidString(out) {
		t.Error("the output is not valid UTF-8")
	}
	for i, r := range out {
		if r != '\n' && r != '\t' && !strconv.IsPrint(r) {
			t.Errorf("the output has %U at byte %d: %q", r, i, out[max(i-40, 0):min(i+40, len(out))])
			return
		}
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "level=ERROR") {
			t.Errorf("a producer's value forged the line %q", line)
		}
	}
}

// TestTextEscapesProducerValues: the text reports print producers' values
// with their control characters escaped, in every table.
func TestTextEscapesProducerValues(t *testing.T) {
	col := report.NewCollector()
	for i, v := range []string{"1.0\x1b[2J", "2.0\nlevel=ERROR msg=forged", "3.0\xff\u2028"} {
		if err := col.Write(t.Context(), []lifecycle.Span{{
			Name: lifecycle.SpanLifecycle, TraceID: trace.TraceID{byte(i + 1)}, SpanID: trace.SpanID{1}, Start: 0, End: 60e9,
			Attrs: []attribute.KeyValue{
				lifecycle.KeyClientPlatform.String("pc\t\r"), lifecycle.KeyClientVersion.String(v),
				lifecycle.KeyEndReason.String("kicked\x07"), lifecycle.KeyEndType.String("enforcement"),
			},
		}}); err != nil {
			t.Fatal(err)
		}
	}
	hostile := col.Report("stdin\x1b[31m", 0)
	base := replayFile(t, baselineFile, false)
	for _, c := range []struct {
		name  string
		write func(io.Writer) error
	}{
		{"report", func(w io.Writer) error { return report.WriteText(w, hostile) }},
		{"comparison", func(w io.Writer) error { return report.WriteComparisonText(w, report.Compare(base, hostile)) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := c.write(&b); err != nil {
				t.Fatal(err)
			}
			checkPrintable(t, strings.ReplaceAll(b.String(), "\t", "")) // tabwriter pads with spaces
			for _, want := range []string{`1.0\x1b[2J`, `2.0\nlevel=ERROR`, `3.0\xff\u2028`, `pc\t\r`, `kicked\a`} {
				if !strings.Contains(b.String(), want) {
					t.Errorf("the output does not show %q escaped", want)
				}
			}
			if strings.Contains(b.String(), "\t") {
				t.Error("a raw tab in the output")
			}
		})
	}
}
