package schema_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sessiontrace/sessiontrace/schema"
)

// arenaMapping maps the "arena" producer shape: category and action name
// the event, the player is nested, timestamps are epoch milliseconds, there
// are no event IDs and disconnect reasons are the producer's codes.
func arenaMapping() schema.Mapping {
	return schema.Mapping{
		Type: schema.TypeRule{
			From: []string{"category", "action"},
			Names: []schema.TypeName{
				{Name: "user.login", Type: "session.login"},
				{Name: "match.queue", Type: "matchmaking.enter"},
				{Name: "match.found", Type: "matchmaking.complete"},
				{Name: "match.leave_queue", Type: "matchmaking.cancel"},
				{Name: "load.begin", Type: "loading.start"},
				{Name: "load.end", Type: "loading.finish"},
				{Name: "game.join", Type: "game.enter"},
				{Name: "game.exit", Type: "game.leave"},
				{Name: "user.logout", Type: "session.disconnect"},
			},
			Ignore: []string{"user.heartbeat"},
		},
		EventID:   schema.Source{From: "hash:value"},
		PlayerID:  schema.Source{From: "payload.player.id"},
		SessionID: schema.Source{From: "payload.sessionRef"},
		TS:        schema.Source{From: "occurredAt", Format: schema.TimeEpochMS},
		Fields: map[string]schema.Source{
			"auth_method":    {From: "payload.auth"},
			"client_version": {From: "payload.build"},
			"platform":       {From: "payload.device", Values: []schema.ValueName{{From: "PC", To: "pc"}, {From: "PS5", To: "playstation"}}},
			"game_mode":      {From: "payload.queue"},
			"lobby_id":       {From: "payload.lobby"},
			"wait_seconds":   {From: "payload.waitSec"},
			"reason": {From: "payload.code", Values: []schema.ValueName{
				{From: "USER_QUIT", To: "client_quit"}, {From: "NETWORK_TIMEOUT", To: "timeout"},
				{From: "KICKED", To: "kicked"}, {From: "CRASH", To: "crash"},
			}},
			"loading_type":  {From: "payload.what"},
			"assets_loaded": {From: "payload.assets"},
			"total_size_mb": {From: "payload.sizeMb"},
			"server_id":     {From: "payload.server.host"},
			"map":           {From: "payload.server.maps[0]"},
			"result":        {From: "payload.outcome", Values: []schema.ValueName{{From: "VICTORY", To: "win"}, {From: "DEFEAT", To: "loss"}}},
			"score":         {From: "payload.points"},
		},
		Attributes: []schema.AttributeRule{
			{From: "region"}, {From: "build"}, {From: "payload.net.ping", Name: "ping_ms"}, {From: "payload.premium"},
		},
	}
}

func mustDecoder(t testing.TB, m schema.Mapping) *schema.MappedDecoder {
	t.Helper()
	cm, err := schema.CompileMapping(m, schema.DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	return cm.NewDecoder()
}

func TestMappedDecodeAccepts(t *testing.T) {
	t0 := time.Date(2026, 11, 20, 18, 0, 3, 120_000_000, time.UTC).UnixNano()
	tests := []struct {
		name    string
		mapping func(m *schema.Mapping)
		key     string
		headers []schema.Header
		input   string
		want    schema.Event // EventID is checked apart
	}{
		{"arena login", nil, "p-1", nil,
			`{"category":"user","action":"login","occurredAt":1795197603120,"region":"eu","payload":{"player":{"id":"p-1"},"sessionRef":"s-1","auth":"steam","build":"1.4.2","device":"PC","net":{"ping":38}}}`,
			schema.Event{Type: schema.SessionLogin, PlayerID: "p-1", SessionID: "s-1", TS: t0, AuthMethod: "steam", ClientVersion: "1.4.2", Platform: "pc",
				Attributes: []schema.Attr{{Key: "region", Value: schema.Value{Kind: schema.KindString, Str: "eu"}}, {Key: "ping_ms", Value: schema.Value{Kind: schema.KindInt, Int: 38}}}}},
		{"unmapped value passes through, numeric player id, epoch as string", nil, "", nil,
			`{"category":"user","action":"login","occurredAt":"1795197603120","payload":{"player":{"id":12345},"device":"Switch"}}`,
			schema.Event{Type: schema.SessionLogin, PlayerID: "12345", TS: t0, Platform: "Switch"}},
		{"producer reason code", nil, "", nil,
			`{"category":"user","action":"logout","occurredAt":1795197603120,"payload":{"player":{"id":"p-1"},"code":"NETWORK_TIMEOUT"}}`,
			schema.Event{Type: schema.SessionDisconnect, PlayerID: "p-1", TS: t0, Reason: "timeout"}},
		{"array index and numbers", nil, "", nil,
			`{"category":"game","action":"join","occurredAt":1795197603120,"payload":{"player":{"id":"p-1"},"server":{"maps":["dust","ice"],"host":"gs-1"}}}`,
			schema.Event{Type: schema.GameEnter, PlayerID: "p-1", TS: t0, ServerID: "gs-1", Map: "dust"}},
		{"loading.finish numbers", nil, "", nil,
			`{"category":"load","action":"end","occurredAt":1795197603120,"payload":{"player":{"id":"p-1"},"assets":"1342","sizeMb":812.5}}`,
			schema.Event{Type: schema.LoadingFinish, PlayerID: "p-1", TS: t0, AssetsLoaded: 1342, HasAssetsLoaded: true, TotalSizeMB: 812.5, HasTotalSizeMB: true}},
		{"escaped keys and values, unknown members skipped", nil, "", nil,
			`{"x":[1,{"a":null}],"c\u0061tegory":"user","action":"login","occurredAt":1795197603120,"payload":{"player":{"id":"p\u002d1"}}}`,
			schema.Event{Type: schema.SessionLogin, PlayerID: "p-1", TS: t0}},
		{"player from a header, type from a constant", func(m *schema.Mapping) {
			m.PlayerID = schema.Source{From: "header:player"}
			m.Type = schema.TypeRule{From: []string{"const:session.login"}}
		}, "", []schema.Header{{Key: "player", Value: []byte("p-9")}},
			`{"occurredAt":1795197603120}`,
			schema.Event{Type: schema.SessionLogin, PlayerID: "p-9", TS: t0}},
		{"key ignored", func(m *schema.Mapping) { m.Key = schema.KeyIgnore }, "someone-else", nil,
			`{"category":"user","action":"login","occurredAt":1795197603120,"payload":{"player":{"id":"p-1"}}}`,
			schema.Event{Type: schema.SessionLogin, PlayerID: "p-1", TS: t0}},
		{"epoch seconds with fraction", func(m *schema.Mapping) { m.TS.Format = schema.TimeEpochS }, "", nil,
			`{"category":"user","action":"login","occurredAt":1795197603.12,"payload":{"player":{"id":"p-1"}}}`,
			schema.Event{Type: schema.SessionLogin, PlayerID: "p-1", TS: t0}},
		{"epoch microseconds", func(m *schema.Mapping) { m.TS.Format = schema.TimeEpochUS }, "", nil,
			`{"category":"user","action":"login","occurredAt":1795197603120000,"payload":{"player":{"id":"p-1"}}}`,
			schema.Event{Type: schema.SessionLogin, PlayerID: "p-1", TS: t0}},
		{"epoch nanoseconds", func(m *schema.Mapping) { m.TS.Format = schema.TimeEpochNS }, "", nil,
			`{"category":"user","action":"login","occurredAt":"1795197603120000000","payload":{"player":{"id":"p-1"}}}`,
			schema.Event{Type: schema.SessionLogin, PlayerID: "p-1", TS: t0}},
		{"layout with a zone", func(m *schema.Mapping) {
			m.TS = schema.Source{From: "occurredAt", Layout: "2006-01-02 15:04:05.000", Zone: "+02:00"}
		}, "", nil,
			`{"category":"user","action":"login","occurredAt":"2026-11-20 20:00:03.120","payload":{"player":{"id":"p-1"}}}`,
			schema.Event{Type: schema.SessionLogin, PlayerID: "p-1", TS: t0}},
		{"rfc3339", func(m *schema.Mapping) { m.TS = schema.Source{From: "occurredAt"} }, "", nil,
			`{"category":"user","action":"login","occurredAt":"2026-11-20T19:00:03.12+01:00","payload":{"player":{"id":"p-1"}}}`,
			schema.Event{Type: schema.SessionLogin, PlayerID: "p-1", TS: t0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := arenaMapping()
			if tt.mapping != nil {
				tt.mapping(&m)
			}
			d := mustDecoder(t, m)
			var ev schema.Event
			if err := d.DecodeRecord(&schema.Record{Key: []byte(tt.key), Value: []byte(tt.input), Headers: tt.headers}, &ev); err != nil {
				t.Fatalf("decode: %v", err)
			}
			if !strings.HasPrefix(ev.EventID, "h") || len(ev.EventID) != 17 {
				t.Errorf("derived event id %q, want h and 16 hex digits", ev.EventID)
			}
			ev.EventID = ""
			if !ev.Equal(&tt.want) {
				t.Errorf("decoded\n got %+v\nwant %+v", ev, tt.want)
			}
		})
	}
}

func TestMappedDecodeRejects(t *testing.T) {
	tests := []struct {
		name   string
		key    string
		input  string
		reason schema.Reason
		field  string
		detail string // a substring of Detail
	}{
		{"unknown name", "", `{"category":"user","action":"fly","occurredAt":1,"payload":{"player":{"id":"p"}}}`, schema.ReasonUnknownType, "type", `"user.fly" is not in the mapping's type table`},
		{"missing nested player", "", `{"category":"user","action":"login","occurredAt":1,"payload":{"player":{}}}`, schema.ReasonMissingField, "player_id", "nothing at payload.player.id"},
		{"missing part of the name", "", `{"category":"user","occurredAt":1}`, schema.ReasonMissingField, "type", "nothing at action"},
		{"object where a string is wanted", "", `{"category":"user","action":"login","occurredAt":1,"payload":{"player":{"id":{"x":1}}}}`, schema.ReasonInvalidField, "player_id", "payload.player.id: must be a string"},
		{"bad epoch", "", `{"category":"user","action":"login","occurredAt":"soon","payload":{"player":{"id":"p"}}}`, schema.ReasonInvalidField, "ts", "not a epoch_ms timestamp"},
		{"negative epoch", "", `{"category":"user","action":"login","occurredAt":-5,"payload":{"player":{"id":"p"}}}`, schema.ReasonInvalidField, "ts", "out of range"},
		{"key mismatch", "other", `{"category":"user","action":"login","occurredAt":1,"payload":{"player":{"id":"p"}}}`, schema.ReasonKeyMismatch, "player_id", `record key "other"`},
		{"duplicate mapped key", "", `{"category":"user","action":"login","occurredAt":1,"payload":{"player":{"id":"p","id":"q"}}}`, schema.ReasonInvalidField, "player_id", "duplicate key"},
		{"malformed elsewhere", "", `{"category":"user","action":"login","occurredAt":1,"payload":{"player":{"id":"p"}},"x":[1,]}`, schema.ReasonMalformed, "", ""},
		{"required field missing", "", `{"category":"game","action":"join","occurredAt":1,"payload":{"player":{"id":"p"},"server":{"host":"gs"}}}`, schema.ReasonMissingField, "map", "nothing at payload.server.maps[0]"},
		{"attribute not a scalar", "", `{"category":"user","action":"login","occurredAt":1,"region":[1],"payload":{"player":{"id":"p"}}}`, schema.ReasonInvalidField, "attributes.region", "must be a string, number or boolean"},
	}
	d := mustDecoder(t, arenaMapping())
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ev schema.Event
			err := d.DecodeRecord(&schema.Record{Key: []byte(tt.key), Value: []byte(tt.input)}, &ev)
			var se *schema.Error
			if !errors.As(err, &se) {
				t.Fatalf("error %v, want a *schema.Error", err)
			}
			if se.Reason != tt.reason || se.Field != tt.field || !strings.Contains(se.Detail, tt.detail) {
				t.Errorf("got %s %q %q, want %s %q containing %q", se.Reason, se.Field, se.Detail, tt.reason, tt.field, tt.detail)
			}
		})
	}
}

func TestMappedDecodeIgnores(t *testing.T) {
	d := mustDecoder(t, arenaMapping())
	var ev schema.Event
	err := d.DecodeRecord(&schema.Record{Value: []byte(`{"category":"user","action":"heartbeat","occurredAt":1}`)}, &ev)
	if !errors.Is(err, schema.ErrIgnored) {
		t.Fatalf("error %v, want ErrIgnored", err)
	}
	if d.Name() != "user.heartbeat" {
		t.Errorf("Name() = %q", d.Name())
	}
}

// TestMappedEventIDDerived: the same value gives the same derived ID (so a
// republished record is a duplicate) and a different value another one.
func TestMappedEventIDDerived(t *testing.T) {
	d := mustDecoder(t, arenaMapping())
	id := func(v string) string {
		t.Helper()
		var ev schema.Event
		if err := d.DecodeRecord(&schema.Record{Value: []byte(v)}, &ev); err != nil {
			t.Fatal(err)
		}
		return ev.EventID
	}
	a := `{"category":"user","action":"login","occurredAt":1,"payload":{"player":{"id":"p"}}}`
	b := `{"category":"user","action":"login","occurredAt":2,"payload":{"player":{"id":"p"}}}`
	if id(a) != id(a) || id(a) == id(b) {
		t.Errorf("ids %q %q %q", id(a), id(a), id(b))
	}
	// Fixed across processes and releases: replays must give the same IDs.
	if got := id(a); got != "he45b77e3896d4244" {
		t.Errorf("derived id %q changed", got)
	}
}

func TestCompileMappingErrors(t *testing.T) {
	tests := []struct {
		name   string
		edit   func(m *schema.Mapping)
		substr string
	}{
		{"format", func(m *schema.Mapping) { m.Format = "xml" }, `format "xml" (want json or cloudevents)`},
		{"key", func(m *schema.Mapping) { m.Key = "session" }, `key "session" (want player or ignore)`},
		{"bad type", func(m *schema.Mapping) { m.Type.Names[0].Type = "session.start" }, `type.names[0].type "session.start": not a v1 type`},
		{"name twice", func(m *schema.Mapping) { m.Type.Names[1].Name = "user.login" }, `type.names[1].name "user.login": listed twice`},
		{"ignored and named", func(m *schema.Mapping) { m.Type.Ignore = []string{"user.login"} }, `type.ignore[0] "user.login": also in type.names`},
		{"bad path", func(m *schema.Mapping) { m.PlayerID.From = "payload..id" }, `player_id.from "payload..id": empty member name`},
		{"bad index", func(m *schema.Mapping) { m.Fields["map"] = schema.Source{From: "maps[x]"} }, `fields.map.from "maps[x]": array index "x"`},
		{"unclosed index", func(m *schema.Mapping) { m.Fields["map"] = schema.Source{From: "maps[0"} }, `fields.map.from "maps[0": unclosed '['`},
		{"unknown field", func(m *schema.Mapping) { m.Fields["mapname"] = schema.Source{From: "x"} }, `fields.mapname: not a type-specific v1 field`},
		{"ts format", func(m *schema.Mapping) { m.TS.Format = "epoch_min" }, `ts.format "epoch_min"`},
		{"layout without layout", func(m *schema.Mapping) { m.TS.Format = schema.TimeLayout }, `ts.layout: required`},
		{"zone without layout", func(m *schema.Mapping) { m.TS.Zone = "UTC" }, `ts.layout and ts.zone: only with ts.format layout`},
		{"bad zone", func(m *schema.Mapping) {
			m.TS = schema.Source{From: "t", Layout: "2006-01-02 15:04:05", Zone: "Mars/Olympus"}
		}, `ts.zone "Mars/Olympus"`},
		{"hash elsewhere", func(m *schema.Mapping) { m.PlayerID.From = "hash:value" }, `player_id.from: hash:value is only for event_id`},
		{"ce without cloudevents", func(m *schema.Mapping) { m.PlayerID.From = "ce:subject" }, `ce: sources need format cloudevents`},
		{"values on a number", func(m *schema.Mapping) {
			m.Fields["score"] = schema.Source{From: "s", Values: []schema.ValueName{{From: "a", To: "b"}}}
		}, `fields.score.values: score is a number`},
		{"value row incomplete", func(m *schema.Mapping) {
			m.Fields["reason"] = schema.Source{From: "c", Values: []schema.ValueName{{From: "a"}}}
		}, `fields.reason.values[0]: from and to are required`},
		{"attribute twice", func(m *schema.Mapping) {
			m.Attributes = append(m.Attributes, schema.AttributeRule{From: "other.region"})
		}, `attributes[4].name "region": used twice`},
		{"too many attributes", func(m *schema.Mapping) {
			for i := range 40 {
				m.Attributes = append(m.Attributes, schema.AttributeRule{From: "a", Name: strings.Repeat("x", i+1)})
			}
		}, `attributes: 44 rules, more than limits.max_attributes 32`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := arenaMapping()
			tt.edit(&m)
			_, err := schema.CompileMapping(m, schema.DefaultLimits())
			if !errors.Is(err, schema.ErrInvalidMapping) || !strings.Contains(err.Error(), tt.substr) {
				t.Errorf("error %v, want ErrInvalidMapping containing %q", err, tt.substr)
			}
		})
	}
}

// TestMappedDefaultsAreV1: an empty mapping reads the v1 shape like the v1
// decoder does.
func TestMappedDefaultsAreV1(t *testing.T) {
	d := mustDecoder(t, schema.Mapping{})
	v1, err := schema.NewDecoder(schema.DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	for _, value := range benchEvents(t) {
		var got, want schema.Event
		if err := v1.Decode(nil, value, &want); err != nil {
			t.Fatal(err)
		}
		// Attributes are read only through the mapping's allow-list.
		want.Attributes = nil
		if err := d.DecodeRecord(&schema.Record{Value: value}, &got); err != nil {
			t.Fatalf("%s: %v", value, err)
		}
		if !got.Equal(&want) {
			t.Errorf("%s:\n got %+v\nwant %+v", value, got, want)
		}
	}
}

// TestShapesDecodeAlike: the same events written in the v1 contract, in the
// arena shape and as CloudEvents in both modes decode to the same events
// (the arena's event IDs are derived).
func TestShapesDecodeAlike(t *testing.T) {
	v1, err := schema.NewDecoder(schema.DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	arena := mustDecoder(t, arenaMapping())
	ce := mustDecoder(t, cloudEventsMapping())
	for _, value := range benchEvents(t) {
		var want schema.Event
		if err := v1.Decode(nil, value, &want); err != nil {
			t.Fatal(err)
		}
		hs, data := cloudEventBinary(t, &want)
		for _, tc := range []struct {
			name string
			d    *schema.MappedDecoder
			rec  schema.Record
		}{
			{"arena", arena, schema.Record{Key: []byte(want.PlayerID), Value: arenaJSON(t, &want)}},
			{"cloudevents structured", ce, schema.Record{Key: []byte(want.PlayerID), Value: cloudEventStructured(t, &want),
				Headers: []schema.Header{{Key: "content-type", Value: []byte("application/cloudevents+json; charset=utf-8")}}}},
			{"cloudevents structured without headers", ce, schema.Record{Value: cloudEventStructured(t, &want)}},
			{"cloudevents binary", ce, schema.Record{Key: []byte(want.PlayerID), Value: data, Headers: hs}},
		} {
			var got schema.Event
			if err := tc.d.DecodeRecord(&tc.rec, &got); err != nil {
				t.Fatalf("%s %s: %v\n%s", tc.name, want.Type, err, tc.rec.Value)
			}
			w := want
			if tc.name == "arena" {
				w.EventID = got.EventID
			}
			if !got.Equal(&w) {
				t.Errorf("%s %s:\n got %+v\nwant %+v\n%s", tc.name, want.Type, got, w, tc.rec.Value)
			}
		}
	}
}

// TestCloudEventsBinaryWithoutData: a binary event may have no data.
func TestCloudEventsBinaryWithoutData(t *testing.T) {
	d := mustDecoder(t, cloudEventsMapping())
	hs := []schema.Header{
		{Key: "ce_specversion", Value: []byte("1.0")}, {Key: "ce_id", Value: []byte("e1")},
		{Key: "ce_type", Value: []byte("com.example.game.session.disconnect")}, {Key: "ce_subject", Value: []byte("p1")},
		{Key: "ce_time", Value: []byte("2026-11-20T18:00:03.12Z")},
	}
	var ev schema.Event
	if err := d.DecodeRecord(&schema.Record{Key: []byte("p1"), Headers: hs}, &ev); err != nil {
		t.Fatal(err)
	}
	want := schema.Event{Type: schema.SessionDisconnect, EventID: "e1", PlayerID: "p1", TS: time.Date(2026, 11, 20, 18, 0, 3, 120_000_000, time.UTC).UnixNano()}
	if !ev.Equal(&want) {
		t.Errorf("got %+v, want %+v", ev, want)
	}
}

func TestCloudEventsRejects(t *testing.T) {
	h := func(kv ...string) []schema.Header {
		var out []schema.Header
		for i := 0; i < len(kv); i += 2 {
			out = append(out, schema.Header{Key: kv[i], Value: []byte(kv[i+1])})
		}
		return out
	}
	structured := h("content-type", "application/cloudevents+json")
	tests := []struct {
		name    string
		headers []schema.Header
		value   string
		reason  schema.Reason
		field   string
		detail  string
	}{
		{"spec version", structured, `{"specversion":"0.3","id":"1","type":"com.example.game.session.login","subject":"p","time":"2026-11-20T18:00:03Z"}`,
			schema.ReasonInvalidField, "specversion", `"0.3", want 1.0`},
		{"not a CloudEvent", nil, `{"id":"1"}`, schema.ReasonMissingField, "specversion", "not a CloudEvent"},
		{"no subject", structured, `{"specversion":"1.0","id":"1","type":"com.example.game.session.login","time":"2026-11-20T18:00:03Z"}`,
			schema.ReasonMissingField, "player_id", "nothing at ce:subject"},
		{"type outside the prefix", structured, `{"specversion":"1.0","id":"1","type":"org.other.login","subject":"p","time":"2026-11-20T18:00:03Z"}`,
			schema.ReasonUnknownType, "type", `"org.other.login"`},
		{"structured xml", h("content-type", "application/cloudevents+xml"), `<e/>`, schema.ReasonInvalidField, "content-type", "only +json"},
		{"binary data not JSON", h("ce_specversion", "1.0", "ce_id", "1", "ce_type", "com.example.game.session.login", "ce_subject", "p",
			"ce_time", "2026-11-20T18:00:03Z", "content-type", "application/avro"), `x`, schema.ReasonInvalidField, "datacontenttype", "the mapping reads JSON data"},
		{"binary header not UTF-8", h("ce_specversion", "1.0", "ce_id", "1", "ce_type", "com.example.game.session.login", "ce_subject", "p\xff",
			"ce_time", "2026-11-20T18:00:03Z"), `{}`, schema.ReasonInvalidField, "player_id", "not valid UTF-8"},
		{"neither mode", h("content-type", "application/json"), `{}`, schema.ReasonInvalidField, "content-type", "neither structured CloudEvents nor binary"},
		{"bad time", structured, `{"specversion":"1.0","id":"1","type":"com.example.game.session.login","subject":"p","time":"yesterday"}`,
			schema.ReasonInvalidField, "ts", "ce:time: not an RFC 3339 timestamp"},
	}
	d := mustDecoder(t, cloudEventsMapping())
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ev schema.Event
			err := d.DecodeRecord(&schema.Record{Value: []byte(tt.value), Headers: tt.headers}, &ev)
			var se *schema.Error
			if !errors.As(err, &se) {
				t.Fatalf("error %v, want a *schema.Error", err)
			}
			if se.Reason != tt.reason || se.Field != tt.field || !strings.Contains(se.Detail, tt.detail) {
				t.Errorf("got %s %q %q, want %s %q containing %q", se.Reason, se.Field, se.Detail, tt.reason, tt.field, tt.detail)
			}
		})
	}
}
