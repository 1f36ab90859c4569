package consumer

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/sessiontrace/sessiontrace/consumer/kafkatest"
	"github.com/sessiontrace/sessiontrace/consumer/receiver"
	"github.com/sessiontrace/sessiontrace/lifecycle"
	"github.com/sessiontrace/sessiontrace/schema"
)

// linkEvent is one event of the trace-link sessions and the traceparent it
// carries ("" for none); inEvent says whether the traceparent is in the
// event itself (the v1 field, the mapped path, the CloudEvents extension)
// or in the record's traceparent header.
type linkEvent struct {
	ev      schema.Event
	tp      string
	inEvent bool
}

// linkSessions are three sessions whose login carries a traceparent in the
// record header (root link), whose game.enter carries the match server's in
// the event (in_game link) and whose game.leave carries another span of the
// match server's trace in the header (the in_game span's second link),
// except player 0's, which is invalid (upper-case hex): counted, ignored.
func linkSessions(base time.Time) [][]linkEvent {
	var out [][]linkEvent
	for p := range 3 {
		player := fmt.Sprintf("link-player-%d", p)
		ts := base.Add(time.Duration(p) * time.Second)
		n := 0
		var evs []linkEvent
		add := func(ev schema.Event, tp string, inEvent bool) {
			ts = ts.Add(3 * time.Second)
			ev.PlayerID, ev.EventID, ev.TS = player, fmt.Sprintf("%s-%d", player, n), ts.UnixNano()
			n++
			evs = append(evs, linkEvent{ev: ev, tp: tp, inEvent: inEvent})
		}
		leave := tpOf(p, 0xb)
		if p == 0 {
			leave = strings.ToUpper(leave)
		}
		add(schema.Event{Type: schema.SessionLogin, AuthMethod: "password", ClientVersion: "1.4.2", Platform: "pc"}, tpOf(p, 0xa), false)
		add(schema.Event{Type: schema.MatchmakingEnter, GameMode: "ranked"}, "", false)
		add(schema.Event{Type: schema.MatchmakingComplete, LobbyID: "lobby-" + player}, "", false)
		add(schema.Event{Type: schema.GameEnter, ServerID: "gs-1", Map: "dust"}, tpOf(p, 0xe), true)
		add(schema.Event{Type: schema.GameLeave, Result: "win"}, leave, false)
		add(schema.Event{Type: schema.SessionDisconnect, Reason: "client_quit"}, "", false)
		out = append(out, evs)
	}
	return out
}

// tpOf is player p's traceparent for span kind k: the login's trace of its
// own, and the match server's trace for the game events.
func tpOf(p, k int) string {
	trace := fmt.Sprintf("%031x%x", 0xabc0+p, k>>3) // a and b, e: two traces per player
	if k == 0xa {
		trace = fmt.Sprintf("%032x", 0xa0000+p)
	}
	return fmt.Sprintf("00-%s-%016x-01", trace, 0x5000+16*p+k)
}

// linkFormat produces the trace-link sessions in one shape, with the
// mapping that reads it (nil for the v1 contract).
type linkFormat struct {
	name    string
	mapping *schema.Mapping
	record  func(topic string, e linkEvent) *kgo.Record
}

func linkFormats() []linkFormat {
	header := func(r *kgo.Record, e linkEvent, name string) *kgo.Record {
		if e.tp != "" && !e.inEvent {
			r.Headers = append(r.Headers, kgo.RecordHeader{Key: "traceparent", Value: []byte(e.tp)})
		} else if e.tp != "" && name != "" {
			r.Headers = append(r.Headers, kgo.RecordHeader{Key: name, Value: []byte(e.tp)})
		}
		return r
	}
	record := func(topic string, e linkEvent, value []byte) *kgo.Record {
		return &kgo.Record{Topic: topic, Key: []byte(e.ev.PlayerID), Value: value, Timestamp: time.Unix(0, e.ev.TS)}
	}
	ceType := func(e linkEvent) string { return "com.example.game." + e.ev.Type.String() }
	ceTime := func(e linkEvent) string { return time.Unix(0, e.ev.TS).UTC().Format(time.RFC3339Nano) }
	return []linkFormat{
		{"v1", nil, func(topic string, e linkEvent) *kgo.Record {
			ev := e.ev
			if e.inEvent {
				ev.Link, _ = schema.ParseTraceparent([]byte(e.tp))
			}
			return header(record(topic, e, schema.AppendJSON(nil, &ev)), e, "")
		}},
		{"mapped", &schema.Mapping{Traceparent: schema.Source{From: "meta.trace"}}, func(topic string, e linkEvent) *kgo.Record {
			v := schema.AppendJSON(nil, &e.ev)
			if e.inEvent {
				v = fmt.Appendf(v[:len(v)-1], `,"meta":{"trace":%q}}`, e.tp)
			}
			return header(record(topic, e, v), e, "")
		}},
		{"cloudevents-structured", &schema.Mapping{Format: schema.FormatCloudEvents, Type: schema.TypeRule{StripPrefix: "com.example.game."}},
			func(topic string, e linkEvent) *kgo.Record {
				ext := ""
				if e.inEvent {
					ext = fmt.Sprintf(`,"traceparent":%q`, e.tp)
				}
				v := fmt.Appendf(nil, `{"specversion":"1.0","id":%q,"source":"/test","type":%q,"subject":%q,"time":%q%s,"data":%s}`,
					e.ev.EventID, ceType(e), e.ev.PlayerID, ceTime(e), ext, schema.AppendJSON(nil, &e.ev))
				r := record(topic, e, v)
				r.Headers = []kgo.RecordHeader{{Key: "content-type", Value: []byte("application/cloudevents+json")}}
				return header(r, e, "")
			}},
		{"cloudevents-binary", &schema.Mapping{Format: schema.FormatCloudEvents, Type: schema.TypeRule{StripPrefix: "com.example.game."}},
			func(topic string, e linkEvent) *kgo.Record {
				r := record(topic, e, schema.AppendJSON(nil, &e.ev))
				for _, kv := range [][2]string{{"ce_specversion", "1.0"}, {"ce_id", e.ev.EventID}, {"ce_source", "/test"},
					{"ce_type", ceType(e)}, {"ce_subject", e.ev.PlayerID}, {"ce_time", ceTime(e)}, {"content-type", "application/json"}} {
					r.Headers = append(r.Headers, kgo.RecordHeader{Key: kv[0], Value: []byte(kv[1])})
				}
				return header(r, e, "ce_traceparent")
			}},
	}
}

// TestTraceLinksReachTheReceiver consumes sessions whose events carry W3C
// traceparents, in the v1 contract, a mapped JSON shape and CloudEvents in
// both Kafka modes, on both export paths and every broker kind, and checks
// at the real OTLP receiver that each span carries exactly the links its
// events named: the root the login's, the in_game span the game.enter's
// and game.leave's, no other span any; that a link is to a remote span
// context with the traceparent's flags; and that the invalid traceparent
// is counted and changes nothing else.
func TestTraceLinksReachTheReceiver(t *testing.T) {
	t.Parallel() // minutes of waiting on brokers and children: run beside the other long ones
	eachPath(t, func(t *testing.T, brokers []string, path string) {
		for _, f := range linkFormats() {
			t.Run(f.name, func(t *testing.T) {
				sessions := linkSessions(time.Now().Add(-time.Hour).Truncate(time.Millisecond))
				topic := kafkatest.Topic(t, brokers, 2)
				var recs []*kgo.Record
				for _, evs := range sessions {
					for _, e := range evs {
						recs = append(recs, f.record(topic, e))
					}
				}
				kafkatest.Produce(t, brokers, recs...)
				rcv := startReceiver(t)
				cfg := pathConfig(brokers, topic, kafkatest.Group(t), path)
				cfg.Mapping = f.mapping
				reader := sdkmetric.NewManualReader()
				r := startConsumer(t, cfg, exporter(t, rcv.Addr()), WithMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))))
				const spansPerSession = 4 // login, matchmaking, in_game, root
				waitSpans(t, rcv, spansPerSession*len(sessions), 60*time.Second)
				r.shutdown(t)

				got := map[string][]receiver.Link{} // player/span name
				for _, sp := range rcv.Spans() {
					got[fmt.Sprint(sp.Attrs["player.id"])+"/"+sp.Name] = sp.Links
				}
				if len(got) != spansPerSession*len(sessions) {
					t.Fatalf("%d distinct spans received, want %d", len(got), spansPerSession*len(sessions))
				}
				for p, evs := range sessions {
					player := evs[0].ev.PlayerID
					want := map[string][]string{
						lifecycle.SpanLifecycle:   {evs[0].tp},
						lifecycle.SpanPhaseInGame: {evs[3].tp, evs[4].tp},
					}
					if p == 0 {
						want[lifecycle.SpanPhaseInGame] = want[lifecycle.SpanPhaseInGame][:1] // the invalid one is ignored
					}
					for _, name := range []string{lifecycle.SpanLifecycle, lifecycle.SpanPhaseLogin, lifecycle.SpanPhaseMatchmaking, lifecycle.SpanPhaseInGame} {
						links, ok := got[player+"/"+name]
						if !ok {
							t.Errorf("%s: no %s span", player, name)
							continue
						}
						var have []string
						for _, l := range links {
							if l.Flags != 0x301 || l.TraceState != "" || len(l.Attrs) != 0 {
								t.Errorf("%s %s: link flags %#x, trace state %q, %d attributes; want 0x301 (sampled, remote), none, none",
									player, name, l.Flags, l.TraceState, len(l.Attrs))
							}
							have = append(have, fmt.Sprintf("00-%s-%s-%02x", l.TraceID, l.SpanID, l.Flags&0xff))
						}
						if !slices.Equal(have, want[name]) {
							t.Errorf("%s %s: links %v, want %v", player, name, have, want[name])
						}
					}
				}
				var rm metricdata.ResourceMetrics
				if err := reader.Collect(t.Context(), &rm); err != nil {
					t.Fatal(err)
				}
				if n := sumByAttr(rm, "sessiontrace.traceparent.invalid", "")[""]; n != 1 {
					t.Errorf("sessiontrace.traceparent.invalid = %d, want 1", n)
				}
				if rej := sumByAttr(rm, "sessiontrace.records.rejected", "reason"); len(rej) != 0 {
					t.Errorf("records rejected: %v; an invalid traceparent must not dead-letter its record", rej)
				}
			})
		}
	})
}
