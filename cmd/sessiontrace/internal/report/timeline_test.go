package report_test

import (
	"bytes"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/sessiontrace/sessiontrace/cmd/sessiontrace/internal/report"
	"github.com/sessiontrace/sessiontrace/cmd/sessiontrace/internal/simulate"
	"github.com/sessiontrace/sessiontrace/lifecycle"
	"github.com/sessiontrace/sessiontrace/schema"
)

// simulated runs the simulator's events through a state machine into a
// Collector, as a replay of its output would, and reports on them.
func simulated(t *testing.T, cfg simulate.Config, source string) *report.Report {
	t.Helper()
	gen, err := simulate.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	m, err := lifecycle.New(lifecycle.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	col := report.NewCollector()
	var ev schema.Event
	var spans []lifecycle.Span
	for off := int64(0); gen.Next(&ev); off++ {
		e := ev
		e.Attributes = append([]schema.Attr(nil), ev.Attributes...)
		spans, _ = m.Apply(&e, off, spans[:0])
		if err := col.Write(t.Context(), spans); err != nil {
			t.Fatal(err)
		}
	}
	return col.Report(source, m.Open())
}

// TestTimelineBucketRule: an hour per bucket up to a week of session starts,
// a day beyond, aligned to whole hours and days, with empty buckets kept.
func TestTimelineBucketRule(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 10, 30, 0, 0, time.UTC)
	for _, c := range []struct {
		name        string
		starts      []time.Duration // after t0
		width       time.Duration
		first       time.Time
		buckets     []int // sessions per bucket
		emptyMedian int   // index of an empty bucket, or -1
	}{
		{"one session", []time.Duration{0}, report.Hour, time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC), []int{1}, -1},
		{"a gap stays", []time.Duration{0, 10 * time.Minute, 2*time.Hour + 5*time.Minute}, report.Hour,
			time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC), []int{2, 0, 1}, 1},
		{"exactly a week is hourly", []time.Duration{0, report.MaxHourlySpan}, report.Hour,
			time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC), append(append([]int{1}, make([]int, 167)...), 1), 1},
		{"more than a week is daily", []time.Duration{0, report.MaxHourlySpan + time.Minute}, report.Day,
			time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), []int{1, 0, 0, 0, 0, 0, 0, 1}, 1},
		{"more than 400 days has none", []time.Duration{0, report.MaxDailySpan + time.Hour}, 0, time.Time{}, nil, -1},
		{"centuries apart has none", []time.Duration{0, 200 * 365 * 24 * time.Hour}, 0, time.Time{}, nil, -1},
	} {
		t.Run(c.name, func(t *testing.T) {
			col := report.NewCollector()
			for i, d := range c.starts {
				start := t0.Add(d).UnixNano()
				reason := "client_quit"
				if i == 0 {
					reason = "crash"
				}
				if err := col.Write(t.Context(), []lifecycle.Span{{
					Name: lifecycle.SpanLifecycle, TraceID: trace.TraceID{byte(i + 1)}, SpanID: trace.SpanID{1},
					Start: start, End: start + int64(time.Minute),
					Attrs: []attribute.KeyValue{lifecycle.KeyEndType.String(lifecycle.EndType(reason)),
						lifecycle.KeyMatchesPlayed.Int64(int64(i))},
				}}); err != nil {
					t.Fatal(err)
				}
			}
			r := col.Report("t", 0)
			if r.BucketWidth != c.width {
				t.Errorf("bucket width %s, want %s", r.BucketWidth, c.width)
			}
			if len(r.Timeline) != len(c.buckets) {
				t.Fatalf("%d buckets, want %d", len(r.Timeline), len(c.buckets))
			}
			if !r.FirstStart.Equal(t0) || !r.LastStart.Equal(t0.Add(c.starts[len(c.starts)-1])) {
				t.Errorf("session starts %s to %s, want %s to %s", r.FirstStart, r.LastStart, t0, t0.Add(c.starts[len(c.starts)-1]))
			}
			if c.width == 0 {
				var out bytes.Buffer
				if err := report.WriteText(&out, r); err != nil {
					t.Fatal(err)
				}
				if !strings.Contains(out.String(), "Over time\nleft out: the sessions started from 2026-03-01T10:30:00Z") {
					t.Errorf("the text report does not say why it has no time axis:\n%s", out.String())
				}
				return
			}
			for i, b := range r.Timeline {
				if want := c.first.Add(time.Duration(i) * c.width); !b.Start.Equal(want) {
					t.Errorf("bucket %d starts %s, want %s", i, b.Start, want)
				}
				if b.Sessions != c.buckets[i] {
					t.Errorf("bucket %d has %d sessions, want %d", i, b.Sessions, c.buckets[i])
				}
			}
			if first := r.Timeline[0]; first.Crashes != 1 || first.CrashShare != 1/float64(first.Sessions) || first.Median != 60 {
				t.Errorf("first bucket %+v, want the one crash of %d sessions, median 60 s", first, first.Sessions)
			}
			if i := c.emptyMedian; i >= 0 && (!math.IsNaN(r.Timeline[i].Median) || !math.IsNaN(r.Timeline[i].MatchesPerSession)) {
				t.Errorf("empty bucket %d: %+v, want NaN median and matches", i, r.Timeline[i])
			}
		})
	}
}

// TestTimelineShowsCrashSpike simulates a week in which client 1.5.0 starts
// crashing in 80% of its sessions at a known hour: the time axis is hourly
// and the crash share steps up at exactly that hour, and stays up.
func TestTimelineShowsCrashSpike(t *testing.T) {
	cfg := simulate.DefaultConfig()
	cfg.Players, cfg.Sessions, cfg.Duration = 150, 0, 7*24*time.Hour
	spikeHour := 80 // 2026-01-04T08:00Z
	from := cfg.StartTime.Add(time.Duration(spikeHour) * time.Hour)
	cfg.CrashSpike = simulate.CrashSpike{ClientVersion: "1.5.0", Probability: 0.8, From: from}
	r := simulated(t, cfg, "week")
	if r.BucketWidth != report.Hour || len(r.Timeline) != 168 {
		t.Fatalf("a week of sessions: %d buckets of %s, want 168 hours", len(r.Timeline), r.BucketWidth)
	}
	if got := r.Timeline[spikeHour].Start; !got.Equal(from) {
		t.Fatalf("bucket %d starts at %s, want %s", spikeHour, got, from)
	}
	// Before: 3% of sessions crash (the mix). From the spike: 1.5.0, 30% of
	// sessions, crashes in 80% + 3% of the rest, so 0.7·3% + 0.3·80.6% =
	// 26.3%. With about 200 sessions an hour the two are 9 and 5 standard
	// deviations from 12%.
	const threshold = 0.12
	for i, b := range r.Timeline {
		if b.Sessions < 100 {
			t.Errorf("hour %s has %d sessions, too few to tell", b.Start.Format(time.RFC3339), b.Sessions)
		}
		if before := i < spikeHour; before != (b.CrashShare < threshold) {
			t.Errorf("hour %s (before the spike: %t): crash share %.1f%% of %d sessions", b.Start.Format(time.RFC3339), before, b.CrashShare*100, b.Sessions)
		}
	}
	// The report says when: the largest change of the crash share is at the
	// spike's hour, beyond chance. A week without the spike has none.
	if s := r.CrashStep; !s.Found || !s.At.Equal(from) || s.Z <= 0 {
		t.Errorf("crash step %+v, want one up at %s", s, from)
	}
	calm := cfg
	calm.CrashSpike = simulate.CrashSpike{}
	if s := simulated(t, calm, "calm week").CrashStep; s.Found {
		t.Errorf("a week without a spike has a crash step: %+v", s)
	}
	// The text report shows the step in its heading and its rows.
	var out bytes.Buffer
	if err := report.WriteText(&out, r); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "crash share over time: steps up at 2026-01-04T08:00Z, from ") {
		t.Errorf("the text report does not say when the crash share stepped up:\n%.600s", out.String())
	}
	for _, row := range []int{spikeHour - 1, spikeHour} {
		b := r.Timeline[row]
		want := fmt.Sprintf("%s  %-8d  %-6s  %-5s", b.Start.Format("2006-01-02T15:04Z"), b.Sessions,
			report.FormatDuration(b.Median), fmt.Sprintf("%.1f%%", b.CrashShare*100))
		if !strings.Contains(out.String(), want) {
			t.Errorf("the text report has no row %q", want)
		}
	}
}

// sameFamily is a few hours of default traffic from one seed of the
// simulator.
func sameFamily(seed int64) simulate.Config {
	cfg := simulate.DefaultConfig()
	cfg.Players, cfg.Sessions, cfg.Seed = 400, 6000, seed
	return cfg
}

// intervals lists every interval of a comparison by row name.
func intervals(c *report.Comparison) map[string]report.Interval {
	out := map[string]report.Interval{}
	for _, d := range c.Durations {
		out["median "+d.Platform+" "+d.Version] = d.MedianCI
		out["p90 "+d.Platform+" "+d.Version] = d.P90CI
	}
	for _, rows := range []struct {
		what string
		ds   []report.CountDelta
	}{{"end type", c.EndTypes}, {"end reason", c.EndReasons}, {"matches", c.Matches}, {"phase", c.Phases}} {
		for _, d := range rows.ds {
			out[rows.what+" "+d.Name] = d.CI
		}
	}
	for _, v := range c.EndTypesByVersion {
		for _, d := range v.EndTypes {
			out["end type "+v.Version+" "+d.Name] = d.CI
		}
	}
	return out
}

// TestCompareSameDistribution compares pairs of samples of the same
// simulated traffic that differ only in their seed. At the 95% level about
// one interval in twenty excludes zero by chance: over eight pairs at most
// 8% may (the rows overlap, platform rows hold their versions' sessions, so
// one pair can be unlucky in several rows at once), and in every pair most
// rows must come out not significant.
func TestCompareSameDistribution(t *testing.T) {
	const pairs = 8
	total, significant := 0, 0
	for i := range int64(pairs) {
		c := report.Compare(simulated(t, sameFamily(2*i+1), "a"), simulated(t, sameFamily(2*i+2), "b"))
		with, sig := 0, []string{}
		for name, iv := range intervals(c) {
			if iv.OK {
				with++
				if iv.Significant() {
					sig = append(sig, fmt.Sprintf("%s %+v", name, iv))
				}
			}
		}
		if with < 50 {
			t.Fatalf("seeds %d and %d: only %d rows have an interval", 2*i+1, 2*i+2, with)
		}
		if len(sig)*5 > with {
			t.Errorf("seeds %d and %d: %d of %d rows significant:\n%s", 2*i+1, 2*i+2, len(sig), with, strings.Join(sig, "\n"))
		}
		total += with
		significant += len(sig)
	}
	t.Logf("%d of %d intervals exclude zero between seeds of the same traffic (%.1f%%)", significant, total, 100*float64(significant)/float64(total))
	if float64(significant) > 0.08*float64(total) {
		t.Errorf("%d of %d intervals exclude zero, want at most 8%% at the 95%% level", significant, total)
	}
}

// TestCompareCrashSpike: the same traffic with a crash spike on 1.5.0 (30%
// of its sessions) marks the crash share significant, overall and for 1.5.0.
func TestCompareCrashSpike(t *testing.T) {
	spiked := sameFamily(2)
	spiked.CrashSpike = simulate.CrashSpike{ClientVersion: "1.5.0", Probability: 0.3}
	c := report.Compare(simulated(t, sameFamily(1), "baseline"), simulated(t, spiked, "spike"))
	ivs := intervals(c)
	for _, name := range []string{"end type crash", "end reason crash", "end type 1.5.0 crash"} {
		iv, ok := ivs[name]
		if !ok || !iv.Significant() || iv.Lo <= 0 {
			t.Errorf("%s: interval %+v, want significant and above zero", name, iv)
		}
	}
	var out bytes.Buffer
	if err := report.WriteComparisonText(&out, c); err != nil {
		t.Fatal(err)
	}
	line, _, _ := strings.Cut(strings.SplitN(out.String(), "\n", 4)[2], ";")
	if !strings.HasPrefix(line, "crashes: ") || strings.Contains(line, "n.s.") || !strings.Contains(line, "95% CI [+") {
		t.Errorf("crash line %q: want a positive interval without n.s.", line)
	}
}
