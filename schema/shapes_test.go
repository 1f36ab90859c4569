package schema_test

import (
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/sessiontrace/sessiontrace/schema"
)

// The producer shapes the mapping tests and benchmarks use: the same events
// as the v1 fixtures, written the way other producers write them.

// arenaNames is the arena producer's category and action per v1 type.
var arenaNames = map[schema.Type][2]string{
	schema.SessionLogin:        {"user", "login"},
	schema.MatchmakingEnter:    {"match", "queue"},
	schema.MatchmakingComplete: {"match", "found"},
	schema.MatchmakingCancel:   {"match", "leave_queue"},
	schema.LoadingStart:        {"load", "begin"},
	schema.LoadingFinish:       {"load", "end"},
	schema.GameEnter:           {"game", "join"},
	schema.GameLeave:           {"game", "exit"},
	schema.SessionDisconnect:   {"user", "logout"},
}

// arenaCodes reverses the value tables of arenaMapping.
var arenaCodes = map[string]string{
	"pc": "PC", "playstation": "PS5", "client_quit": "USER_QUIT", "timeout": "NETWORK_TIMEOUT",
	"kicked": "KICKED", "crash": "CRASH", "win": "VICTORY", "loss": "DEFEAT",
}

func code(s string) string {
	if c, ok := arenaCodes[s]; ok {
		return c
	}
	return s
}

// obj builds a JSON object in member order.
type obj []any // name, value, name, value...

func (o obj) MarshalJSON() ([]byte, error) {
	b := []byte{'{'}
	for i := 0; i < len(o); i += 2 {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendQuote(b, o[i].(string))
		b = append(b, ':')
		v, err := json.Marshal(o[i+1])
		if err != nil {
			return nil, err
		}
		b = append(b, v...)
	}
	return append(b, '}'), nil
}

func attrValue(v schema.Value) any {
	switch v.Kind {
	case schema.KindInt:
		return v.Int
	case schema.KindFloat:
		return v.Float
	case schema.KindBool:
		return v.Bool
	}
	return v.Str
}

// fieldsOf lists the type-specific fields of ev under their v1 names, with
// the arena codes when arena is set.
func fieldsOf(ev *schema.Event, arena bool) obj {
	c := func(s string) string {
		if arena {
			return code(s)
		}
		return s
	}
	var o obj
	add := func(name string, v any, ok bool) {
		if ok {
			o = append(o, name, v)
		}
	}
	add("auth_method", ev.AuthMethod, ev.AuthMethod != "")
	add("client_version", ev.ClientVersion, ev.ClientVersion != "")
	add("platform", c(ev.Platform), ev.Platform != "")
	add("game_mode", ev.GameMode, ev.GameMode != "")
	add("lobby_id", ev.LobbyID, ev.LobbyID != "")
	add("wait_seconds", ev.WaitSeconds, ev.HasWait)
	add("reason", c(ev.Reason), ev.Reason != "")
	add("loading_type", ev.LoadingType, ev.LoadingType != "")
	add("assets_loaded", ev.AssetsLoaded, ev.HasAssetsLoaded)
	add("total_size_mb", ev.TotalSizeMB, ev.HasTotalSizeMB)
	add("server_id", ev.ServerID, ev.ServerID != "")
	add("map", ev.Map, ev.Map != "")
	add("result", c(ev.Result), ev.Result != "")
	add("score", ev.Score, ev.HasScore)
	return o
}

// arenaFieldPaths are the arena member names of the v1 fields (under
// payload; map is payload.server.maps[0] and server_id payload.server.host).
var arenaFieldPaths = map[string]string{
	"auth_method": "auth", "client_version": "build", "platform": "device", "game_mode": "queue",
	"lobby_id": "lobby", "wait_seconds": "waitSec", "reason": "code", "loading_type": "what",
	"assets_loaded": "assets", "total_size_mb": "sizeMb", "result": "outcome", "score": "points",
}

// arenaJSON writes ev in the arena shape: no event ID, nested player,
// epoch-millisecond timestamps, producer codes.
func arenaJSON(tb testing.TB, ev *schema.Event) []byte {
	tb.Helper()
	names := arenaNames[ev.Type]
	payload := obj{"player", obj{"id", ev.PlayerID}}
	if ev.SessionID != "" {
		payload = append(payload, "sessionRef", ev.SessionID)
	}
	f := fieldsOf(ev, true)
	var server obj
	for i := 0; i < len(f); i += 2 {
		switch f[i] {
		case "server_id":
			server = append(server, "host", f[i+1])
		case "map":
			server = append(server, "maps", []any{f[i+1], "fallback"})
		default:
			payload = append(payload, arenaFieldPaths[f[i].(string)], f[i+1])
		}
	}
	if server != nil {
		payload = append(payload, "server", server)
	}
	top := obj{"category", names[0], "action", names[1], "occurredAt", ev.TS / 1e6}
	for _, a := range ev.Attributes {
		switch a.Key {
		case "ping_ms":
			payload = append(payload, "net", obj{"ping", attrValue(a.Value)})
		case "premium":
			payload = append(payload, "premium", attrValue(a.Value))
		default:
			top = append(top, a.Key, attrValue(a.Value))
		}
	}
	top = append(top, "payload", payload)
	b, err := json.Marshal(top)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// cePrefix is the type prefix of the CloudEvents fixtures.
const cePrefix = "com.example.game."

// ceData is the data of ev as a CloudEvent: the session, the type-specific
// fields under their v1 names, the attributes in an object.
func ceData(ev *schema.Event) obj {
	data := obj{}
	if ev.SessionID != "" {
		data = append(data, "session", ev.SessionID)
	}
	data = append(data, fieldsOf(ev, false)...)
	var attrs obj
	for _, a := range ev.Attributes {
		attrs = append(attrs, a.Key, attrValue(a.Value))
	}
	if attrs != nil {
		data = append(data, "attributes", attrs)
	}
	return data
}

func ceTime(ev *schema.Event) string {
	return time.Unix(0, ev.TS).UTC().Format(time.RFC3339Nano)
}

// cloudEventStructured writes ev as a structured-mode CloudEvent value.
func cloudEventStructured(tb testing.TB, ev *schema.Event) []byte {
	tb.Helper()
	b, err := json.Marshal(obj{
		"specversion", "1.0", "id", ev.EventID, "source", "/game-servers/eu-west-1",
		"type", cePrefix + ev.Type.String(), "subject", ev.PlayerID, "time", ceTime(ev),
		"datacontenttype", "application/json", "data", ceData(ev),
	})
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// cloudEventBinary writes ev as a binary-mode CloudEvent: ce_ headers and
// the data as the value.
func cloudEventBinary(tb testing.TB, ev *schema.Event) ([]schema.Header, []byte) {
	tb.Helper()
	b, err := json.Marshal(ceData(ev))
	if err != nil {
		tb.Fatal(err)
	}
	h := func(k, v string) schema.Header { return schema.Header{Key: k, Value: []byte(v)} }
	return []schema.Header{
		h("ce_specversion", "1.0"), h("ce_id", ev.EventID), h("ce_source", "/game-servers/eu-west-1"),
		h("ce_type", cePrefix+ev.Type.String()), h("ce_subject", ev.PlayerID), h("ce_time", ceTime(ev)),
		h("content-type", "application/json"),
	}, b
}

// cloudEventsMapping reads the CloudEvents fixtures: the v1 type names
// behind a prefix, the player as the subject, the data in v1 field names.
func cloudEventsMapping() schema.Mapping {
	return schema.Mapping{
		Format:    schema.FormatCloudEvents,
		Type:      schema.TypeRule{StripPrefix: cePrefix, Ignore: []string{"heartbeat"}},
		SessionID: schema.Source{From: "session"},
		Attributes: []schema.AttributeRule{
			{From: "attributes.region"}, {From: "attributes.build"}, {From: "attributes.ping_ms"}, {From: "attributes.premium"},
		},
	}
}
