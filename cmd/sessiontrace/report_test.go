package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

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
const chromiumTimeout = 60 * time.Second

// TestReportChromium renders the report of a simulated crash spike in
// headless Chromium: the page must load with no console message and make
// no network request, and its DOM must hold the charts. The screenshot is
// written to $SESSIONTRACE_REPORT_SCREENSHOT when set.
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
	events := filepath.Join(dir, "spike.jsonl")
	mustSucceed(t, runCLI(t, nil, "simulate", "--output", events, "--sessions", "3000",
		"--crash-version", "1.5.0", "--crash-probability", "0.3"), "simulate")
	page := filepath.Join(dir, "report.html")
	r := runCLI(t, nil, "report", events, "--html", page)
	mustSucceed(t, r, "report")
	if !regexp.MustCompile(`(?m)^1\.5\.0\s+\d+\s+\S+\s+\S+\s+(\d+\.\d)%`).MatchString(r.stdout) {
		t.Errorf("no end type row for the spiked version 1.5.0:\n%s", r.stdout)
	}
	html, err := os.ReadFile(page)
	if err != nil {
		t.Fatal(err)
	}
	checkSelfContained(t, html)

	netlog := filepath.Join(dir, "net.json")
	shot := filepath.Join(dir, "report.png")
	if p := os.Getenv("SESSIONTRACE_REPORT_SCREENSHOT"); p != "" {
		shot = p
	}
	common := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + filepath.Join(dir, "profile"), "--enable-logging=stderr", "--v=0",
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
	dom, logs := runBrowser("--log-net-log="+netlog, "--dump-dom", "file://"+page)
	for _, line := range strings.Split(logs, "\n") {
		if strings.Contains(line, ":CONSOLE") {
			t.Errorf("console message: %s", line)
		}
	}
	for _, w := range []string{"<svg", "End types by client version", "Share of session time by phase", "1.5.0"} {
		if !strings.Contains(dom, w) {
			t.Errorf("the rendered DOM has no %q", w)
		}
	}
	// Six charts of the four answers, four of the time axis.
	if n := strings.Count(dom, "<svg"); n != 10 {
		t.Errorf("the rendered DOM has %d charts, want 10", n)
	}
	for _, u := range pageRequests(t, netlog) {
		t.Errorf("the page requested %s", u)
	}

	runBrowser("--screenshot="+shot, "--window-size=1200,2000", "file://"+page)
	if st, err := os.Stat(shot); err != nil || st.Size() == 0 {
		t.Errorf("no screenshot: %v", err)
	}
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
