package lifecycle

import (
	"fmt"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"

	"github.com/sessiontrace/sessiontrace/schema"
)

// base is the stream's epoch in the tests: 2026-01-02T03:04:05Z.
var base = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// sec returns base plus s seconds, in Unix nanoseconds.
func sec(s float64) int64 { return base.Add(time.Duration(s * float64(time.Second))).UnixNano() }

// evb builds events with unique event IDs.
type evb struct{ n int }

func (b *evb) ev(typ schema.Type, player string, at float64, mods ...func(*schema.Event)) *schema.Event {
	b.n++
	e := &schema.Event{Type: typ, EventID: fmt.Sprintf("e%04d", b.n), PlayerID: player, TS: sec(at)}
	switch typ {
	case schema.SessionLogin:
		e.AuthMethod, e.ClientVersion, e.Platform = "password", "1.2.3", "pc"
	case schema.MatchmakingEnter:
		e.GameMode = "ranked"
	case schema.MatchmakingComplete:
		e.LobbyID = "lobby-1"
	case schema.LoadingStart:
		e.LoadingType = "map"
	case schema.GameEnter:
		e.ServerID, e.Map = "srv-1", "dust"
	}
	for _, m := range mods {
		m(e)
	}
	return e
}

func withSession(id string) func(*schema.Event) { return func(e *schema.Event) { e.SessionID = id } }
func withReason(r string) func(*schema.Event)   { return func(e *schema.Event) { e.Reason = r } }
func withID(id string) func(*schema.Event)      { return func(e *schema.Event) { e.EventID = id } }
func withAttrs(a ...schema.Attr) func(*schema.Event) {
	return func(e *schema.Event) { e.Attributes = a }
}
func strAttr(k, v string) schema.Attr {
	return schema.Attr{Key: k, Value: schema.Value{Kind: schema.KindString, Str: v}}
}

// run feeds events at offsets 0, 1, ... and returns the spans and outcomes.
func run(t *testing.T, m *Machine, events []*schema.Event) ([]Span, []Outcome) {
	t.Helper()
	var spans []Span
	outcomes := make([]Outcome, len(events))
	for i, e := range events {
		spans, outcomes[i] = m.Apply(e, int64(i), spans)
	}
	return spans, outcomes
}

func newMachine(t testing.TB, mods ...func(*Config)) *Machine {
	t.Helper()
	cfg := DefaultConfig()
	for _, mod := range mods {
		mod(&cfg)
	}
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func attrs(s Span) map[attribute.Key]attribute.Value {
	out := make(map[attribute.Key]attribute.Value, len(s.Attrs))
	for _, kv := range s.Attrs {
		out[kv.Key] = kv.Value
	}
	return out
}

// attr returns the value of k on s as a Go value (string, int64, float64,
// bool), or nil when absent.
func attr(s Span, k attribute.Key) any {
	v, ok := attrs(s)[k]
	if !ok {
		return nil
	}
	return v.AsInterface()
}

func names(spans []Span) []string {
	out := make([]string, len(spans))
	for i, s := range spans {
		out[i] = s.Name
	}
	return out
}

func roots(spans []Span) []Span {
	var out []Span
	for _, s := range spans {
		if s.IsRoot() {
			out = append(out, s)
		}
	}
	return out
}

func find(t *testing.T, spans []Span, name string) Span {
	t.Helper()
	for _, s := range spans {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no %s span in %v", name, names(spans))
	return Span{}
}
