package main

import (
	"bytes"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"go.opentelemetry.io/otel/attribute"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/sessiontrace/sessiontrace/consumer"
	"github.com/sessiontrace/sessiontrace/lifecycle"
)

// adversarialFile has sessions whose producer text carries terminal escape
// sequences, newlines that would forge a log line, NUL, C1 controls, bidi
// overrides and quotes, and a session whose login was not observed (a false
// boolean attribute).
var adversarialFile = repoFile("testdata", "cli", "adversarial.jsonl")

// adversarialStrings are producer texts no output may print raw.
var adversarialStrings = []string{
	"evil\x1b[2J\x1b]0;pwned\x07",
	"p\nlevel=ERROR msg=\"forged line\"",
	"a\rb",
	"x\x00y",
	"\x7f\u0085\u009b2J",
	"\u202egnp.exe",
	"\u2028line separator",
	"bad utf-8 \xff\xfe",
	`"q" \ end`,
	"with space",
	strings.Repeat("long ", 2000),
	"",
}

// checkPrintable fails t if out has anything besides printable text and
// line breaks: no control character, no invalid UTF-8, no invisible
// format character, and no line that starts like a forged log line.
func checkPrintable(t *testing.T, what string, out []byte) {
	t.Helper()
	if !utf8.Valid(out) {
		t.Errorf("%s: invalid UTF-8 in the output", what)
	}
	for _, r := range string(out) {
		if r == '\n' {
			continue
		}
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == '\u2028' || r == '\u2029' || r == utf8.RuneError {
			t.Errorf("%s: raw %U in the output:\n%s", what, r, out)
			return
		}
	}
	for line := range strings.SplitSeq(string(out), "\n") {
		if strings.HasPrefix(line, "level=") {
			t.Errorf("%s: a producer's text starts a line of its own: %q", what, line)
		}
	}
}

func TestSafeText(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"player-000001", "player-000001"},
		{"é🎮", "é🎮"},
		{"", ""},
		{"evil\x1b[2J", `"evil\x1b[2J"`},
		{"p\nlevel=ERROR", `"p\nlevel=ERROR"`},
		{"a b", `"a b"`},
		{"\xff", `"\xff"`},
		{"\u202e", `"\u202e"`},
		{"\u0085", `"\u0085"`},
		{`\`, `"\\"`},
	} {
		if got := safeText(c.in); got != c.want {
			t.Errorf("safeText(%q) = %s, want %s", c.in, got, c.want)
		}
	}
}

func TestErrorText(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"replay: topic t: EOF", "replay: topic t: EOF"},
		{"a\nb", "a\n  b"},
		{"key \x1b[2J\r\x00 é\u202e \xff", `key \x1b[2J\r\x00 é\u202e \xff`},
		{"tab\tkept", "tab\tkept"},
	} {
		if got := errorText(c.in); got != c.want {
			t.Errorf("errorText(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// adversarialSpans are a root and a phase with every attribute type the
// lifecycle writes, and the adversarial strings as keys and values.
func adversarialSpans() []lifecycle.Span {
	var attrs []attribute.KeyValue
	for _, s := range adversarialStrings {
		attrs = append(attrs, attribute.String(s, s))
	}
	attrs = append(attrs,
		attribute.Bool("session.start_observed", false), attribute.Bool("b.true", true),
		attribute.Int64("i.min", math.MinInt64), attribute.Int64("i.max", math.MaxInt64),
		attribute.Float64("f", 0.1), attribute.Float64("f.nan", math.NaN()),
		attribute.Float64("f.inf", math.Inf(1)), attribute.Float64("f.-inf", math.Inf(-1)),
	)
	root := lifecycle.Span{Name: lifecycle.SpanLifecycle, Start: 1e18, End: 1e18 + 5e9,
		Attrs: append([]attribute.KeyValue{lifecycle.KeyPlayerID.String(adversarialStrings[0]),
			lifecycle.KeyEndReason.String(adversarialStrings[1]), lifecycle.KeyMatchesPlayed.Int64(1)}, attrs...)}
	root.TraceID[0], root.SpanID[0] = 1, 1
	root.Links = []lifecycle.Link{{TraceID: [16]byte{0xab, 15: 1}, SpanID: [8]byte{0xcd, 7: 2}, Flags: 1}}
	phase := lifecycle.Span{Name: "session.phase.\x1b[2J", TraceID: root.TraceID, ParentSpanID: root.SpanID,
		Start: 1e18, End: 1e18 + 1e9, Attrs: attrs, Links: []lifecycle.Link{root.Links[0], {TraceID: [16]byte{0xff}, SpanID: [8]byte{7: 0xff}, Flags: 0xff}}}
	phase.SpanID[0] = 2
	return []lifecycle.Span{phase, root}
}

// TestSpanJSONEveryAttributeType: every line is valid JSON and OTLP JSON,
// and every attribute comes back with its type and value.
func TestSpanJSONEveryAttributeType(t *testing.T) {
	for _, sp := range adversarialSpans() {
		line := appendSpanJSON(nil, &sp)
		if !json.Valid(line) || bytes.Count(line, []byte("\n")) != 1 || line[len(line)-1] != '\n' {
			t.Fatalf("not one valid JSON line: %s", line)
		}
		checkPrintable(t, "json", line)
		var got tracepb.Span
		if err := protojson.Unmarshal(line, &got); err != nil {
			t.Fatalf("not an OTLP JSON span: %v\n%s", err, line)
		}
		if len(got.Attributes) != len(sp.Attrs) {
			t.Fatalf("%d attributes, want %d", len(got.Attributes), len(sp.Attrs))
		}
		// OTLP JSON writes IDs in hex, which protojson reads as base64:
		// the links' IDs are read back as hex.
		var ids struct {
			Links []struct{ TraceID, SpanID string }
		}
		if err := json.Unmarshal(line, &ids); err != nil || len(ids.Links) != len(sp.Links) || len(got.Links) != len(sp.Links) {
			t.Fatalf("%d links (%v), want %d:\n%s", len(ids.Links), err, len(sp.Links), line)
		}
		for i, l := range sp.Links {
			if ids.Links[i].TraceID != l.TraceID.String() || ids.Links[i].SpanID != l.SpanID.String() ||
				got.Links[i].Flags != uint32(l.Flags)|0x300 {
				t.Errorf("link %d: %s/%s flags %#x, want %s", i, ids.Links[i].TraceID, ids.Links[i].SpanID, got.Links[i].Flags, l)
			}
		}
		for i, kv := range spanFromOTLP(&got).Attrs {
			want := sp.Attrs[i]
			wantKey, wantVal := string(want.Key), want.Value
			if want.Value.Type() == attribute.STRING {
				// JSON carries only UTF-8: invalid bytes arrive as U+FFFD.
				wantKey = replaceInvalid(wantKey)
				wantVal = attribute.StringValue(replaceInvalid(want.Value.AsString()))
			}
			if string(kv.Key) != wantKey || kv.Value.Type() != wantVal.Type() || kv.Value.String() != wantVal.String() {
				t.Errorf("attribute %d: %q=%v (%v), want %q=%v (%v)", i, kv.Key, kv.Value.String(), kv.Value.Type(),
					wantKey, wantVal.String(), wantVal.Type())
			}
		}
	}
}

// replaceInvalid replaces every byte of s that is not part of valid UTF-8
// with U+FFFD, as JSON output does.
func replaceInvalid(s string) string {
	var b strings.Builder
	for _, r := range s { // ranging yields U+FFFD once per invalid byte
		b.WriteRune(r)
	}
	return b.String()
}

// TestTextOutputsEscapeProducerText feeds the adversarial strings through
// every text a person reads: the tree (with its root and as an open
// session) and the replay summary with its open-session list.
func TestTextOutputsEscapeProducerText(t *testing.T) {
	spans := adversarialSpans()
	var tree bytes.Buffer
	renderTree(&tree, spans)
	renderTree(&tree, spans[:1]) // an open session: no root yet
	checkPrintable(t, "tree", tree.Bytes())
	if !strings.Contains(tree.String(), " link=00-ab000000000000000000000000000001-cd00000000000002-01") ||
		!strings.Contains(tree.String(), " link=00-ff000000000000000000000000000000-00000000000000ff-ff") {
		t.Errorf("the tree does not show the links:\n%s", tree.String())
	}
	if !strings.Contains(tree.String(), safeText(adversarialStrings[0])) {
		t.Errorf("the tree does not show the player ID escaped:\n%s", tree.String())
	}

	var open []lifecycle.OpenSession
	for _, s := range adversarialStrings {
		open = append(open, lifecycle.OpenSession{PlayerID: s, SessionID: s, Phase: s})
	}
	var summary bytes.Buffer
	reportReplay(&summary, consumer.ReplayStats{Records: 1, Open: open[:maxOpenListed], InvalidTraceparents: 2,
		Rejected: map[string]int{adversarialStrings[1]: 1}, Anomalies: map[string]int{adversarialStrings[0]: 1}}, false)
	checkPrintable(t, "replay summary", summary.Bytes())
	if got, want := strings.Count(summary.String(), "\n"), 5+maxOpenListed; got != want {
		t.Errorf("summary has %d lines, want %d:\n%s", got, want, summary.String())
	}
}

// TestReplayAdversarialInput replays producer text meant to attack a
// terminal or forge log lines through every output of the binary.
func TestReplayAdversarialInput(t *testing.T) {
	for _, c := range []struct {
		name   string
		args   []string
		golden string
	}{
		{"tree", []string{"replay", adversarialFile}, "adversarial.tree.golden"},
		{"json", []string{"replay", "-o", "json", "--close-open", adversarialFile}, "adversarial.json.golden"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := runCLI(t, nil, c.args...)
			mustSucceed(t, r, "replay")
			checkPrintable(t, "stdout", []byte(r.stdout))
			checkPrintable(t, "stderr", []byte(r.stderr))
			golden(t, c.golden, []byte(r.stdout))
			if c.name != "json" {
				return
			}
			lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
			for i, line := range lines {
				var sp tracepb.Span
				if err := protojson.Unmarshal([]byte(line), &sp); err != nil {
					t.Errorf("line %d is not an OTLP JSON span: %v\n%s", i+1, err, line)
				}
			}
			if !strings.Contains(r.stdout, `{"key":"session.start_observed","value":{"boolValue":false}}`) {
				t.Errorf("no session.start_observed=false attribute in:\n%s", r.stdout)
			}
			// Two valid traceparents become links, two adversarial ones are
			// ignored, counted, and printed nowhere.
			if n := strings.Count(r.stdout, `"links":[`); n != 2 {
				t.Errorf("%d spans with links, want 2:\n%s", n, r.stdout)
			}
			if !strings.Contains(r.stderr, "invalid traceparents ignored (the events were applied without a trace link): 2") {
				t.Errorf("the summary does not count the invalid traceparents:\n%s", r.stderr)
			}
		})
	}
}
