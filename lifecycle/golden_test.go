package lifecycle

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"

	"github.com/sessiontrace/sessiontrace/schema"
)

var update = flag.Bool("update", false, "rewrite testdata/lifecycle/*.golden.json from the current output")

const goldenDir = "../testdata/lifecycle"

// goldenFile is what a scenario produces, in a form meant to be read: the
// goldens are the spec of the state machine.
type goldenFile struct {
	Outcomes []string     `json:"outcomes"` // per input line
	Spans    []goldenSpan `json:"spans"`
	Open     []goldenOpen `json:"open_sessions"`
	Stats    Stats        `json:"stats"`
}

type goldenSpan struct {
	Name       string       `json:"name"`
	TraceID    string       `json:"trace_id"`
	SpanID     string       `json:"span_id"`
	Parent     string       `json:"parent_span_id,omitempty"`
	Start      string       `json:"start"`
	End        string       `json:"end"`
	Attributes []goldenAttr `json:"attributes"`
	Links      []string     `json:"links,omitempty"` // trace-span-flags
}

type goldenAttr struct {
	Key   string `json:"key"`
	Type  string `json:"type"`
	Value any    `json:"value"`
}

type goldenOpen struct {
	PlayerID         string `json:"player_id"`
	SessionID        string `json:"session_id,omitempty"`
	TraceID          string `json:"trace_id"`
	Start            string `json:"start"`
	Last             string `json:"last"`
	Phase            string `json:"phase"`
	FirstOffset      int64  `json:"first_offset"`
	StartObserved    bool   `json:"start_observed"`
	MatchesPlayed    int    `json:"matches_played"`
	MatchesCompleted int    `json:"matches_completed"`
}

func rfc3339(ns int64) string { return time.Unix(0, ns).UTC().Format(time.RFC3339Nano) }

func toGoldenSpan(s Span) goldenSpan {
	g := goldenSpan{
		Name: s.Name, TraceID: s.TraceID.String(), SpanID: s.SpanID.String(),
		Start: rfc3339(s.Start), End: rfc3339(s.End),
	}
	if s.ParentSpanID.IsValid() {
		g.Parent = s.ParentSpanID.String()
	}
	for _, kv := range s.Attrs {
		g.Attributes = append(g.Attributes, goldenAttr{Key: string(kv.Key), Type: kv.Value.Type().String(), Value: kv.Value.AsInterface()})
	}
	slices.SortFunc(g.Attributes, func(a, b goldenAttr) int { return strings.Compare(a.Key, b.Key) })
	for _, l := range s.Links {
		g.Links = append(g.Links, l.TraceID.String()+"-"+l.SpanID.String()+"-"+l.Flags.String())
	}
	return g
}

// readScenario decodes a scenario through the real schema decoder; the record
// key is the player ID, as on the topic.
func readScenario(t *testing.T, path string) []*schema.Event {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	dec, err := schema.NewDecoder(schema.DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	var events []*schema.Event
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		var probe struct {
			PlayerID string `json:"player_id"`
		}
		if err := json.Unmarshal(sc.Bytes(), &probe); err != nil {
			t.Fatalf("%s:%d: %v", path, line, err)
		}
		ev := new(schema.Event)
		if err := dec.Decode([]byte(probe.PlayerID), sc.Bytes(), ev); err != nil {
			t.Fatalf("%s:%d: decode: %v", path, line, err)
		}
		events = append(events, ev)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return events
}

func runScenario(t *testing.T, events []*schema.Event) goldenFile {
	t.Helper()
	m := newMachine(t)
	var g goldenFile
	var spans []Span
	for i, ev := range events {
		var o Outcome
		spans, o = m.Apply(ev, int64(i), spans)
		g.Outcomes = append(g.Outcomes, o.String())
	}
	for _, s := range spans {
		g.Spans = append(g.Spans, toGoldenSpan(s))
	}
	m.OpenSessions(func(s OpenSession) {
		g.Open = append(g.Open, goldenOpen{
			PlayerID: s.PlayerID, SessionID: s.SessionID, TraceID: s.TraceID.String(),
			Start: rfc3339(s.Start), Last: rfc3339(s.Last), Phase: s.Phase, FirstOffset: s.FirstOffset,
			StartObserved: s.StartObserved, MatchesPlayed: s.MatchesPlayed, MatchesCompleted: s.MatchesCompleted,
		})
	})
	g.Stats = m.Stats()
	return g
}

func TestGolden(t *testing.T) {
	inputs, err := filepath.Glob(filepath.Join(goldenDir, "*.jsonl"))
	if err != nil || len(inputs) == 0 {
		t.Fatalf("no scenarios in %s: %v", goldenDir, err)
	}
	for _, in := range inputs {
		name := strings.TrimSuffix(filepath.Base(in), ".jsonl")
		t.Run(name, func(t *testing.T) {
			events := readScenario(t, in)
			got, err := json.MarshalIndent(runScenario(t, events), "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			path := filepath.Join(goldenDir, name+".golden.json")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test ./lifecycle -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from the current output; rerun with -update and review the diff:\n%s", path, firstDiff(got, want))
			}
			// Determinism: a second machine fed the same input agrees bit for bit.
			again, _ := json.MarshalIndent(runScenario(t, readScenario(t, in)), "", "  ")
			if !bytes.Equal(append(again, '\n'), got) {
				t.Error("two runs over the same input differ")
			}
		})
	}
}

func firstDiff(got, want []byte) string {
	g, w := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
	for i := range max(len(g), len(w)) {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			return "line " + itoa(i+1) + ":\n got: " + gl + "\nwant: " + wl
		}
	}
	return ""
}

func itoa(i int) string { return attribute.IntValue(i).Emit() }
