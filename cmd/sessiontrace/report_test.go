package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sessiontrace/sessiontrace/cmd/sessiontrace/internal/simulate"
	"github.com/sessiontrace/sessiontrace/consumer/kafkatest"
)

// The hand-written report scenarios; internal/report's tests check their
// figures against hand computation, these check what the command prints.
var (
	reportBaseline  = repoFile("testdata", "report", "baseline.jsonl")
	reportCandidate = repoFile("testdata", "report", "candidate.jsonl")
)

func TestReportOutputs(t *testing.T) {
	for _, c := range []struct {
		name   string
		args   []string
		golden string
		stderr []string
	}{
		{"one file", []string{"report", reportBaseline}, "report.golden",
			[]string{"replayed 34 records into 22 spans", "1 sessions still open"}},
		{"close open", []string{"report", "--close-open", reportBaseline}, "report.close-open.golden",
			[]string{"ended as end_of_input"}},
		{"comparison", []string{"report", "--baseline", reportBaseline, "--candidate", reportCandidate}, "compare.golden",
			[]string{"baseline.jsonl: replayed 34 records", "candidate.jsonl: replayed 14 records"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			page := filepath.Join(t.TempDir(), "report.html")
			r := runCLI(t, nil, append(c.args, "--html", page)...)
			mustSucceed(t, r, strings.Join(c.args, " "))
			reportGolden(t, c.golden, []byte(r.stdout))
			for _, w := range c.stderr {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr does not mention %q:\n%s", w, r.stderr)
				}
			}
			html, err := os.ReadFile(page)
			if err != nil {
				t.Fatal(err)
			}
			checkSelfContained(t, html)
		})
	}
}

func TestReportUsageErrors(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		name string
		args []string
		code int
		want []string
	}{
		{"nothing", []string{"report"}, exitUsage, []string{"either a FILE or --topic"}},
		{"file and topic", []string{"report", reportBaseline, "--topic", "t"}, exitUsage, []string{"either a FILE or --topic"}},
		{"baseline alone", []string{"report", "--baseline", reportBaseline}, exitUsage, []string{"--baseline and --candidate go together"}},
		{"candidate alone", []string{"report", "--candidate", reportCandidate}, exitUsage, []string{"--baseline and --candidate go together"}},
		{"comparison and file", []string{"report", "--baseline", reportBaseline, "--candidate", reportCandidate, reportBaseline}, exitUsage, []string{"not several"}},
		{"from without topic", []string{"report", "--from", "3", reportBaseline}, exitUsage, []string{"--from and --to apply to --topic only"}},
		{"bad bound", []string{"report", "--topic", "t", "--brokers", "127.0.0.1:1", "--to", "later"}, exitUsage, []string{"--to", "RFC 3339"}},
		{"two files", []string{"report", reportBaseline, reportCandidate}, exitUsage, []string{"accepts at most 1 arg"}},
		{"missing file", []string{"report", filepath.Join(dir, "missing.jsonl")}, exitFailure, []string{"missing.jsonl", "no such file"}},
		{"missing candidate", []string{"report", "--baseline", reportBaseline, "--candidate", filepath.Join(dir, "gone.jsonl")}, exitFailure, []string{"gone.jsonl", "no such file"}},
		{"html in a missing directory", []string{"report", reportBaseline, "--html", filepath.Join(dir, "no", "r.html")}, exitFailure, []string{"r.html"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := runCLI(t, nil, c.args...)
			if r.code != c.code {
				t.Errorf("exit %d, want %d; stderr:\n%s", r.code, c.code, r.stderr)
			}
			for _, w := range c.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr does not mention %q:\n%s", w, r.stderr)
				}
			}
		})
	}
}

// reportGolden compares got with testdata/report/name, or rewrites it with
// -update.
func reportGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := repoFile("testdata", "report", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (go test ./cmd/sessiontrace -update rewrites it; review the diff)\n%s",
			name, firstDiff(string(want), string(got)))
	}
}

// absURL finds absolute URLs; the SVG namespace is the only one a report
// may contain.
var absURL = regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}[^"'\s<>)]*`)

func checkSelfContained(t *testing.T, html []byte) {
	t.Helper()
	for _, u := range absURL.FindAll(html, -1) {
		if string(u) != "http://www.w3.org/2000/svg" {
			t.Errorf("the page references %s", u)
		}
	}
	if bytes.Contains(bytes.ToLower(html), []byte("<script")) {
		t.Error("the page has a script")
	}
}

// chromiumTimeout bounds one headless Chromium run.
const chromiumTimeout = 90 * time.Second

// spikeHour is the hour of the simulated week at which client 1.5.0 starts
// to crash in TestReportChromium: 2026-01-04T08:00Z.
const spikeHour = 80

// writeWeek writes a simulated week of traffic to path as JSONL; with spike,
// client 1.5.0 crashes in 60% of the sessions that start from spikeHour on.
func writeWeek(t *testing.T, path string, seed int64, spike bool, versions map[string]float64) {
	t.Helper()
	cfg := simulate.DefaultConfig()
	cfg.Players, cfg.Sessions, cfg.Duration, cfg.Seed = 120, 0, 7*24*time.Hour, seed
	if versions != nil {
		cfg.ClientVersions = versions
	}
	if spike {
		cfg.CrashSpike = simulate.CrashSpike{ClientVersion: "1.5.0", Probability: 0.6,
			From: cfg.StartTime.Add(spikeHour * time.Hour)}
	}
	gen, err := simulate.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	fh, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	bw := bufio.NewWriter(fh)
	if _, err := simulate.WriteJSONL(bw, gen); err != nil {
		t.Fatal(err)
	}
	if err := errors.Join(bw.Flush(), fh.Close()); err != nil {
		t.Fatal(err)
	}
}

// measureScript is appended to a copy of a report page (the page itself has
// no script): it measures every text of every chart as laid out and writes
// the result into the DOM, which --dump-dom then prints. A text is clipped
// when its box leaves its chart's box (an SVG clips what overflows it).
const measureScript = `<script>
(function () {
  var out = {charts: []};
  document.querySelectorAll("svg").forEach(function (svg) {
    var box = svg.getBoundingClientRect();
    var chart = {label: svg.getAttribute("aria-label"), texts: 0, clipped: [], overlaps: [], bars: []};
    var texts = Array.prototype.slice.call(svg.querySelectorAll("text"));
    var rects = texts.map(function (t) { return t.getBoundingClientRect(); });
    texts.forEach(function (t, i) {
      var r = rects[i];
      chart.texts++;
      if (r.width === 0 || r.left < box.left - 0.5 || r.right > box.right + 0.5 || r.top < box.top - 0.5 || r.bottom > box.bottom + 0.5) {
        chart.clipped.push({text: t.textContent, left: r.left - box.left, right: r.right - box.left, top: r.top - box.top,
          bottom: r.bottom - box.top, chartWidth: box.width, chartHeight: box.height});
      }
      for (var j = 0; j < i; j++) {
        var q = rects[j];
        if (r.left < q.right - 0.5 && q.left < r.right - 0.5 && r.top < q.bottom - 0.5 && q.top < r.bottom - 0.5) {
          chart.overlaps.push([texts[j].textContent, t.textContent]);
        }
      }
    });
    svg.querySelectorAll("rect").forEach(function (r) { chart.bars.push(r.getBoundingClientRect().height); });
    out.charts.push(chart);
  });
  var pre = document.createElement("pre");
  pre.id = "measurements";
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
})();
</script>`

// chartMeasure is what measureScript writes for one chart.
type chartMeasure struct {
	Label    string      `json:"label"`
	Texts    int         `json:"texts"`
	Clipped  []any       `json:"clipped"`
	Overlaps [][2]string `json:"overlaps"`
	Bars     []float64   `json:"bars"`
}

// TestReportChromium renders, in headless Chromium, the report of a
// simulated week in which client 1.5.0 starts crashing at a known hour, and
// its comparison with a week without the spike. Each page must load with
// no console message and make no network request; every chart must render,
// with no text clipped by its chart or overlapping another; and the hourly
// crash share chart must step up at the spike's hour. Screenshots are
// written to $SESSIONTRACE_REPORT_SCREENSHOT (the report) and the same name
// with -compare before its extension (the comparison) when it is set.
func TestReportChromium(t *testing.T) {
	browser := ""
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			browser = p
			break
		}
	}
	if browser == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("chromium is not installed, and CI must render the HTML report: .ci/run installs Debian's chromium")
		}
		t.Skip("chromium is not installed (apt-get install -y chromium): the HTML report is not rendered")
	}
	dir := t.TempDir()
	spiked, calm := filepath.Join(dir, "spike.jsonl"), filepath.Join(dir, "calm.jsonl")
	writeWeek(t, spiked, 1, true, nil)
	// The calm week has a client version a producer named with markup, a
	// long label the charts must make room for.
	writeWeek(t, calm, 2, false, map[string]float64{"1.4.2": 0.6, "1.5.0": 0.3, `2.0.0-rc.1 "<script>alert(1)</script>"`: 0.1})

	page := filepath.Join(dir, "report.html")
	r := runCLI(t, nil, "report", spiked, "--html", page)
	mustSucceed(t, r, "report")
	if !regexp.MustCompile(`(?m)^1\.5\.0\s+\d+\s+\S+\s+\S+\s+(\d+\.\d)%`).MatchString(r.stdout) {
		t.Errorf("no end type row for the spiked version 1.5.0:\n%s", r.stdout)
	}
	comparePage := filepath.Join(dir, "compare.html")
	mustSucceed(t, runCLI(t, nil, "report", "--baseline", calm, "--candidate", spiked, "--html", comparePage), "report --baseline --candidate")

	shot := filepath.Join(dir, "report.png")
	if p := os.Getenv("SESSIONTRACE_REPORT_SCREENSHOT"); p != "" {
		shot = p
	}
	compareShot := strings.TrimSuffix(shot, filepath.Ext(shot)) + "-compare" + filepath.Ext(shot)
	common := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + filepath.Join(dir, "profile"), "--enable-logging=stderr", "--v=0",
		"--window-size=1200,9000",
		// Any host the page asked for would fail to resolve, offline or not.
		"--host-resolver-rules=MAP * ~NOTFOUND"}
	runBrowser := func(args ...string) (stdout, stderr string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), chromiumTimeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, browser, append(common, args...)...)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil {
			t.Fatalf("chromium %s: %v\n%s", strings.Join(args, " "), err, errb.String())
		}
		return out.String(), errb.String()
	}
	for _, c := range []struct {
		name, page, shot string
		charts           int
		want             []string
	}{
		{"report", page, shot, 10, []string{"End types by client version", "Share of session time by phase", "1.5.0",
			"Over time, per hour of session start (UTC)", "other (menu, between phases)"}},
		{"comparison", comparePage, compareShot, 11, []string{"Over time, per hour of session start (UTC), baseline -&gt; candidate",
			"95% CI", "n.s.", "2.0.0-rc.1 &#34;&lt;script&gt;"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			html, err := os.ReadFile(c.page)
			if err != nil {
				t.Fatal(err)
			}
			checkSelfContained(t, html)
			for _, w := range c.want {
				if !strings.Contains(string(html), w) {
					t.Errorf("the page has no %q", w)
				}
			}
			netlog := filepath.Join(dir, c.name+"-net.json")
			dom, logs := runBrowser("--log-net-log="+netlog, "--dump-dom", "file://"+c.page)
			for _, line := range strings.Split(logs, "\n") {
				if strings.Contains(line, ":CONSOLE") {
					t.Errorf("console message: %s", line)
				}
			}
			if n := strings.Count(dom, "<svg"); n != c.charts {
				t.Errorf("the rendered DOM has %d charts, want %d", n, c.charts)
			}
			for _, u := range pageRequests(t, netlog) {
				t.Errorf("the page requested %s", u)
			}

			// Lay the page out with the measuring script.
			measured := filepath.Join(dir, c.name+"-measured.html")
			withScript := strings.Replace(string(html), "</body>", measureScript+"\n</body>", 1)
			if err := os.WriteFile(measured, []byte(withScript), 0o644); err != nil {
				t.Fatal(err)
			}
			mdom, _ := runBrowser("--dump-dom", "file://"+measured)
			charts := measurements(t, mdom)
			if len(charts) != c.charts {
				t.Fatalf("measured %d charts, want %d", len(charts), c.charts)
			}
			for _, ch := range charts {
				if ch.Texts == 0 || len(ch.Bars) == 0 {
					t.Errorf("chart %q rendered %d texts and %d bars", ch.Label, ch.Texts, len(ch.Bars))
				}
				for _, cl := range ch.Clipped {
					t.Errorf("chart %q clips a text: %+v", ch.Label, cl)
				}
				for _, o := range ch.Overlaps {
					t.Errorf("chart %q: texts %q and %q overlap", ch.Label, o[0], o[1])
				}
			}
			if c.name == "report" {
				checkCrashStep(t, charts)
			}

			runBrowser("--screenshot="+c.shot, "file://"+c.page)
			if st, err := os.Stat(c.shot); err != nil || st.Size() == 0 {
				t.Errorf("no screenshot: %v", err)
			}
		})
	}
}

// measurements reads what measureScript wrote into a dumped DOM.
func measurements(t *testing.T, dom string) []chartMeasure {
	t.Helper()
	_, rest, ok := strings.Cut(dom, `<pre id="measurements">`)
	raw, _, ok2 := strings.Cut(rest, "</pre>")
	if !ok || !ok2 {
		t.Fatalf("the measuring script wrote nothing:\n%.2000s", dom)
	}
	var out struct {
		Charts []chartMeasure `json:"charts"`
	}
	if err := json.Unmarshal([]byte(html.UnescapeString(raw)), &out); err != nil {
		t.Fatalf("measurements %.300s: %v", raw, err)
	}
	return out.Charts
}

// checkCrashStep: in the hourly crash share chart, one bar per hour, every
// bar from the spike's hour on is taller than every bar before it.
func checkCrashStep(t *testing.T, charts []chartMeasure) {
	t.Helper()
	for _, ch := range charts {
		if ch.Label != "Crash share per hour" {
			continue
		}
		if len(ch.Bars) != 168 {
			t.Fatalf("the crash share chart has %d bars, want one per hour of the week", len(ch.Bars))
		}
		before, after := slices.Max(ch.Bars[:spikeHour]), slices.Min(ch.Bars[spikeHour:])
		if before >= after {
			t.Errorf("the crash share chart does not step up at hour %d: tallest bar before %.1f px, shortest from then %.1f px", spikeHour, before, after)
		}
		return
	}
	t.Error("no crash share chart")
}

// pageRequests returns the URLs of the requests a page started, from a
// Chromium net log. The browser's own requests (update checks and the like,
// which no flag turns off completely) have the initiator "not an origin";
// a file:// page's have "null".
func pageRequests(t *testing.T, path string) []string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var log struct {
		Constants struct {
			LogEventTypes map[string]int `json:"logEventTypes"`
		} `json:"constants"`
		Events []struct {
			Type   int `json:"type"`
			Params struct {
				URL       string `json:"url"`
				Initiator string `json:"initiator"`
			} `json:"params"`
		} `json:"events"`
	}
	if err := json.Unmarshal(raw, &log); err != nil {
		t.Fatalf("net log %s: %v", path, err)
	}
	start, ok := log.Constants.LogEventTypes["URL_REQUEST_START_JOB"]
	if !ok {
		t.Fatal("net log has no URL_REQUEST_START_JOB event type")
	}
	var urls []string
	for _, e := range log.Events {
		if e.Type == start && e.Params.URL != "" && e.Params.Initiator != "not an origin" && !strings.HasPrefix(e.Params.URL, "file://") {
			urls = append(urls, e.Params.URL)
		}
	}
	return urls
}

// TestReportCompareTopicRanges puts the baseline and the candidate recording
// one after the other on a one-partition topic and compares the two offset
// ranges: the comparison must be the one of the two files, but for the
// names in its first line.
func TestReportCompareTopicRanges(t *testing.T) {
	fromFiles := runCLI(t, nil, "report", "--baseline", reportBaseline, "--candidate", reportCandidate)
	mustSucceed(t, fromFiles, "report --baseline FILE --candidate FILE")
	kafkatest.Each(t, func(t *testing.T, brokers []string) {
		topic := kafkatest.Topic(t, brokers, 1)
		n := produceFile(t, brokers, topic, reportBaseline)
		produceFile(t, brokers, topic, reportCandidate)
		r := runCLI(t, nil, "report", "--brokers", strings.Join(brokers, ","), "--topic", topic,
			"--baseline", fmt.Sprintf("start..%d", n), "--candidate", fmt.Sprintf("%d..end", n))
		mustSucceed(t, r, "report --topic --baseline RANGE --candidate RANGE")
		header, body, _ := strings.Cut(r.stdout, "\n")
		wantHeader := fmt.Sprintf("sessiontrace report: baseline topic %s [start, %d) vs candidate topic %s [%d, end)", topic, n, topic, n)
		if header != wantHeader {
			t.Errorf("first line %q, want %q", header, wantHeader)
		}
		_, wantBody, _ := strings.Cut(fromFiles.stdout, "\n")
		if body != wantBody {
			t.Errorf("the comparison of the two ranges differs from the one of the two files:\n%s", firstDiff(wantBody, body))
		}

		bad := runCLI(t, nil, "report", "--brokers", strings.Join(brokers, ","), "--topic", topic,
			"--baseline", "start", "--candidate", "0..end")
		if bad.code != exitUsage || !strings.Contains(bad.stderr, "--baseline") || !strings.Contains(bad.stderr, "FROM..TO") {
			t.Errorf("a baseline that is no range: exit %d, stderr %q", bad.code, bad.stderr)
		}
	})
}
