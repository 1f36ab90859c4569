package schema_test

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/sessiontrace/sessiontrace/schema"
)

func validEvent() schema.Event {
	return schema.Event{
		Type: schema.MatchmakingComplete, EventID: "e1", PlayerID: "p1", SessionID: "s1", TS: 1_795_600_800_123_000_000,
		LobbyID: "l1", WaitSeconds: 3.5, HasWait: true,
		Attributes: []schema.Attr{
			{Key: "region", Value: schema.Value{Kind: schema.KindString, Str: "eu"}},
			{Key: "n", Value: schema.Value{Kind: schema.KindInt, Int: -4}},
			{Key: "f", Value: schema.Value{Kind: schema.KindFloat, Float: 3}},
			{Key: "b", Value: schema.Value{Kind: schema.KindBool, Bool: true}},
		},
	}
}

func TestValidate(t *testing.T) {
	long := strings.Repeat("x", 257)
	tests := []struct {
		name   string
		edit   func(ev *schema.Event)
		reason schema.Reason // "" means valid
		field  string
	}{
		{"valid", func(ev *schema.Event) {}, "", ""},
		{"no attributes", func(ev *schema.Event) { ev.Attributes = nil }, "", ""},
		{"zero TS is 1970", func(ev *schema.Event) { ev.TS = 0 }, "", ""},
		{"extreme TS", func(ev *schema.Event) { ev.TS = math.MinInt64 }, "", ""},
		{"invalid type", func(ev *schema.Event) { ev.Type = schema.TypeInvalid }, schema.ReasonUnknownType, "type"},
		{"out of range type", func(ev *schema.Event) { ev.Type = 200 }, schema.ReasonUnknownType, "type"},
		{"no event_id", func(ev *schema.Event) { ev.EventID = "" }, schema.ReasonMissingField, "event_id"},
		{"no player_id", func(ev *schema.Event) { ev.PlayerID = "" }, schema.ReasonMissingField, "player_id"},
		{"no lobby_id", func(ev *schema.Event) { ev.LobbyID = "" }, schema.ReasonMissingField, "lobby_id"},
		{"long session_id", func(ev *schema.Event) { ev.SessionID = long }, schema.ReasonFieldTooLong, "session_id"},
		{"invalid UTF-8 player_id", func(ev *schema.Event) { ev.PlayerID = "p\xff" }, schema.ReasonInvalidField, "player_id"},
		{"negative wait", func(ev *schema.Event) { ev.WaitSeconds = -1 }, schema.ReasonInvalidField, "wait_seconds"},
		{"NaN wait", func(ev *schema.Event) { ev.WaitSeconds = math.NaN() }, schema.ReasonInvalidField, "wait_seconds"},
		{"wait without HasWait", func(ev *schema.Event) { ev.HasWait = false }, schema.ReasonInvalidField, "wait_seconds"},
		{"field of another type", func(ev *schema.Event) { ev.Platform = "pc" }, schema.ReasonInvalidField, "platform"},
		{"score on matchmaking", func(ev *schema.Event) { ev.HasScore = true }, schema.ReasonInvalidField, "score"},
		{"too many attributes", func(ev *schema.Event) {
			for i := range 29 {
				ev.Attributes = append(ev.Attributes, schema.Attr{Key: attrKey(i), Value: schema.Value{Kind: schema.KindBool}})
			}
		}, schema.ReasonTooManyAttrs, "attributes"},
		{"empty attribute key", func(ev *schema.Event) { ev.Attributes[1].Key = "" }, schema.ReasonInvalidField, "attributes"},
		{"duplicate attribute key", func(ev *schema.Event) { ev.Attributes[2].Key = "region" }, schema.ReasonInvalidField, "attributes"},
		{"long attribute key", func(ev *schema.Event) { ev.Attributes[0].Key = strings.Repeat("k", 129) }, schema.ReasonFieldTooLong, "attributes"},
		{"long attribute value", func(ev *schema.Event) { ev.Attributes[0].Value.Str = strings.Repeat("v", 1025) }, schema.ReasonFieldTooLong, "attributes.region"},
		{"infinite attribute", func(ev *schema.Event) { ev.Attributes[2].Value.Float = math.Inf(1) }, schema.ReasonInvalidField, "attributes.f"},
		{"unknown kind", func(ev *schema.Event) { ev.Attributes[3].Value.Kind = 9 }, schema.ReasonInvalidField, "attributes.b"},
	}
	d := newDecoder(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := validEvent()
			tt.edit(&ev)
			err := ev.Validate(schema.DefaultLimits())
			if tt.reason == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				// What Validate accepts survives the wire.
				var back schema.Event
				if err := d.Decode([]byte(ev.PlayerID), schema.AppendJSON(nil, &ev), &back); err != nil {
					t.Fatalf("Decode(AppendJSON): %v", err)
				}
				if !back.Equal(&ev) {
					t.Errorf("round trip\n got %+v\nwant %+v", back, ev)
				}
				return
			}
			var se *schema.Error
			if !errors.As(err, &se) {
				t.Fatalf("got %v (%T), want a *schema.Error", err, err)
			}
			if se.Reason != tt.reason || se.Field != tt.field {
				t.Errorf("got %s %q (%v), want %s %q", se.Reason, se.Field, err, tt.reason, tt.field)
			}
		})
	}
}

func TestAppendJSON(t *testing.T) {
	tests := []struct {
		name string
		ev   schema.Event
		want string
	}{
		{"escaping", schema.Event{Type: schema.SessionLogin, EventID: "e\"\\\n\r\t\x01\x7f", PlayerID: "p<>&\u2028é", TS: 0},
			`{"type":"session.login","event_id":"e\"\\\n\r\t\u0001` + "\x7f" + `","player_id":"p<>&` + "\u2028é" + `","ts":"1970-01-01T00:00:00.000000000Z"}`},
		{"invalid UTF-8 is replaced", schema.Event{Type: schema.SessionLogin, EventID: "a\xffb", PlayerID: "p", TS: -1},
			`{"type":"session.login","event_id":"a\ufffdb","player_id":"p","ts":"1969-12-31T23:59:59.999999999Z"}`},
		{"foreign fields and unset numbers are left out", schema.Event{Type: schema.GameLeave, EventID: "e", PlayerID: "p", Platform: "pc", Score: 0, HasScore: true},
			`{"type":"game.leave","event_id":"e","player_id":"p","ts":"1970-01-01T00:00:00.000000000Z","score":0}`},
		{"floats", schema.Event{Type: schema.LoadingFinish, EventID: "e", PlayerID: "p", TotalSizeMB: 1e21, HasTotalSizeMB: true,
			Attributes: []schema.Attr{
				{Key: "a", Value: schema.Value{Kind: schema.KindFloat, Float: 2}},
				{Key: "b", Value: schema.Value{Kind: schema.KindFloat, Float: 1e21}},
				{Key: "c", Value: schema.Value{Kind: schema.KindFloat, Float: math.Copysign(0, -1)}},
				{Key: "d", Value: schema.Value{Kind: schema.KindFloat, Float: math.NaN()}},
			}},
			`{"type":"loading.finish","event_id":"e","player_id":"p","ts":"1970-01-01T00:00:00.000000000Z","total_size_mb":1e+21,"attributes":{"a":2.0,"b":1e+21,"c":-0.0,"d":null}}`},
		{"invalid type does not panic", schema.Event{Type: 77},
			`{"type":"Type(77)","event_id":"","player_id":"","ts":"1970-01-01T00:00:00.000000000Z"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(schema.AppendJSON([]byte("prefix:"), &tt.ev)); got != "prefix:"+tt.want {
				t.Errorf("got  %s\nwant prefix:%s", got, tt.want)
			}
		})
	}
}

func TestLimitsValidate(t *testing.T) {
	tests := []struct {
		name  string
		edit  func(l *schema.Limits)
		wants []string // substrings of the error; none means valid
	}{
		{"defaults", func(l *schema.Limits) {}, nil},
		{"zero value", func(l *schema.Limits) { *l = schema.Limits{} }, []string{
			"max_record_bytes", "max_attributes", "max_attr_key_len", "max_attr_value_len", "max_field_len"}},
		{"negative", func(l *schema.Limits) { l.MaxAttributes = -1 }, []string{"max_attributes must be positive, got -1"}},
		{"record ceiling", func(l *schema.Limits) { l.MaxRecordBytes = 2 << 30 }, []string{"max_record_bytes must be at most"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := schema.DefaultLimits()
			tt.edit(&l)
			err := l.Validate()
			_, derr := schema.NewDecoder(l)
			if len(tt.wants) == 0 {
				if err != nil || derr != nil {
					t.Fatalf("Validate: %v, NewDecoder: %v", err, derr)
				}
				return
			}
			if err == nil || derr == nil {
				t.Fatalf("Validate: %v, NewDecoder: %v; want errors", err, derr)
			}
			for _, w := range tt.wants {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestErrorString(t *testing.T) {
	tests := []struct {
		err  schema.Error
		want string
	}{
		{schema.Error{Reason: schema.ReasonInvalidField, Field: "ts", Detail: "not an RFC 3339 timestamp"},
			`schema: invalid_field "ts": not an RFC 3339 timestamp`},
		{schema.Error{Reason: schema.ReasonMissingField, Field: "player_id"}, `schema: missing_field "player_id"`},
		{schema.Error{Reason: schema.ReasonMalformed, Detail: "unexpected end of input at offset 3"},
			`schema: malformed_json: unexpected end of input at offset 3`},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("got %s", got)
			}
		})
	}
}
