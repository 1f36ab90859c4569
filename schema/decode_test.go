package schema_test

import (
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/sessiontrace/sessiontrace/schema"
)

// login is a valid record that the cases below edit.
const login = `{"type":"session.login","event_id":"e1","player_id":"p1","ts":"2026-11-25T10:00:00.123Z"`

func rec(fields string) string { return login + fields + "}" }

func ts(t *testing.T, s string) int64 {
	t.Helper()
	tm, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatal(err)
	}
	return tm.UnixNano()
}

func TestDecodeAccepts(t *testing.T) {
	t0 := ts(t, "2026-11-25T10:00:00.123Z")
	base := func(typ schema.Type) schema.Event {
		return schema.Event{Type: typ, EventID: "e1", PlayerID: "p1", TS: t0}
	}
	tests := []struct {
		name  string
		key   string
		input string
		want  func(ev *schema.Event)
	}{
		{"login minimal", "", rec(""), func(ev *schema.Event) {}},
		{"login with key", "p1", rec(""), func(ev *schema.Event) {}},
		{"login full", "", rec(`,"session_id":"s1","auth_method":"password","client_version":"1.4.2","platform":"pc"`),
			func(ev *schema.Event) {
				ev.SessionID, ev.AuthMethod, ev.ClientVersion, ev.Platform = "s1", "password", "1.4.2", "pc"
			}},
		{"matchmaking.enter", "", `{"type":"matchmaking.enter","event_id":"e1","player_id":"p1","ts":"2026-11-25T10:00:00.123Z","game_mode":"duo"}`,
			func(ev *schema.Event) { ev.Type, ev.GameMode = schema.MatchmakingEnter, "duo" }},
		{"matchmaking.complete", "", `{"type":"matchmaking.complete","event_id":"e1","player_id":"p1","ts":"2026-11-25T10:00:00.123Z","lobby_id":"l1","wait_seconds":12.5}`,
			func(ev *schema.Event) {
				ev.Type, ev.LobbyID, ev.WaitSeconds, ev.HasWait = schema.MatchmakingComplete, "l1", 12.5, true
			}},
		{"matchmaking.complete zero wait is present", "", `{"type":"matchmaking.complete","event_id":"e1","player_id":"p1","ts":"2026-11-25T10:00:00.123Z","lobby_id":"l1","wait_seconds":0}`,
			func(ev *schema.Event) { ev.Type, ev.LobbyID, ev.HasWait = schema.MatchmakingComplete, "l1", true }},
		{"matchmaking.cancel", "", `{"type":"matchmaking.cancel","event_id":"e1","player_id":"p1","ts":"2026-11-25T10:00:00.123Z","reason":"timeout"}`,
			func(ev *schema.Event) { ev.Type, ev.Reason = schema.MatchmakingCancel, "timeout" }},
		{"loading.start", "", `{"type":"loading.start","event_id":"e1","player_id":"p1","ts":"2026-11-25T10:00:00.123Z","loading_type":"map"}`,
			func(ev *schema.Event) { ev.Type, ev.LoadingType = schema.LoadingStart, "map" }},
		{"loading.finish", "", `{"type":"loading.finish","event_id":"e1","player_id":"p1","ts":"2026-11-25T10:00:00.123Z","assets_loaded":10,"total_size_mb":1.5}`,
			func(ev *schema.Event) {
				ev.Type = schema.LoadingFinish
				ev.AssetsLoaded, ev.HasAssetsLoaded, ev.TotalSizeMB, ev.HasTotalSizeMB = 10, true, 1.5, true
			}},
		{"game.enter", "", `{"type":"game.enter","event_id":"e1","player_id":"p1","ts":"2026-11-25T10:00:00.123Z","server_id":"gs","map":"m"}`,
			func(ev *schema.Event) { ev.Type, ev.ServerID, ev.Map = schema.GameEnter, "gs", "m" }},
		{"game.leave", "", `{"type":"game.leave","event_id":"e1","player_id":"p1","ts":"2026-11-25T10:00:00.123Z","result":"win","score":-9223372036854775808}`,
			func(ev *schema.Event) {
				ev.Type, ev.Result, ev.Score, ev.HasScore = schema.GameLeave, "win", math.MinInt64, true
			}},
		{"session.disconnect", "", `{"type":"session.disconnect","event_id":"e1","player_id":"p1","ts":"2026-11-25T10:00:00.123Z","reason":"crash"}`,
			func(ev *schema.Event) { ev.Type, ev.Reason = schema.SessionDisconnect, "crash" }},
		{"keys in any order", "", `{"ts":"2026-11-25T10:00:00.123Z","player_id":"p1","event_id":"e1","type":"session.login"}`,
			func(ev *schema.Event) {}},
		{"integral forms of an integer field", "", `{"type":"game.leave","event_id":"e1","player_id":"p1","ts":"2026-11-25T10:00:00.123Z","score":-12.50e1}`,
			func(ev *schema.Event) { ev.Type, ev.Score, ev.HasScore = schema.GameLeave, -125, true }},
		{"integer with many zero digits", "", `{"type":"game.leave","event_id":"e1","player_id":"p1","ts":"2026-11-25T10:00:00.123Z","score":100000000000000000000000000000000000000e-38}`,
			func(ev *schema.Event) { ev.Type, ev.Score, ev.HasScore = schema.GameLeave, 1, true }},
		{"empty optional string is absent", "", rec(`,"platform":"","session_id":""`), func(ev *schema.Event) {}},
		{"null is absent", "", rec(`,"platform":null,"session_id":null,"attributes":null`), func(ev *schema.Event) {}},
		{"foreign fields are not checked", "", rec(`,"score":"high","map":{},"wait_seconds":-1`), func(ev *schema.Event) {}},
		{"unknown nested fields are skipped", "", rec(`,"x":{"a":[1,{"b":[[],{}]},"}]"],"c":null},"y":[]`), func(ev *schema.Event) {}},
		{"escapes", "", rec(`,"platform":"\"\\\/\b\f\n\r\t\u00e9\ud83c\udfae\ud800x"`),
			func(ev *schema.Event) { ev.Platform = "\"\\/\b\f\n\r\té🎮\ufffdx" }},
		{"escaped key", "", rec(`,"plat\u0066orm":"pc"`), func(ev *schema.Event) { ev.Platform = "pc" }},
		{"escaped player_id matches key", "p1", `{"type":"session.login","event_id":"e1","player_id":"\u00701","ts":"2026-11-25T10:00:00.123Z"}`,
			func(ev *schema.Event) {}},
		{"whitespace everywhere", "", " \t\r\n{ \"type\" :\n\"session.login\" , \"event_id\":\"e1\",\"player_id\":\"p1\",\"ts\":\"2026-11-25T10:00:00.123Z\" , \"attributes\" : { \"a\" : 1 , \"b\" : true\n} } \n",
			func(ev *schema.Event) {
				ev.Attributes = []schema.Attr{
					{Key: "a", Value: schema.Value{Kind: schema.KindInt, Int: 1}},
					{Key: "b", Value: schema.Value{Kind: schema.KindBool, Bool: true}},
				}
			}},
		{"ts with offset", "", `{"type":"session.login","event_id":"e1","player_id":"p1","ts":"2026-11-25T11:30:00.123+01:30"}`, func(ev *schema.Event) {}},
		{"ts lower case", "", `{"type":"session.login","event_id":"e1","player_id":"p1","ts":"2026-11-25t10:00:00.123z"}`, func(ev *schema.Event) {}},
		{"ts long fraction truncates", "", `{"type":"session.login","event_id":"e1","player_id":"p1","ts":"2026-11-25T10:00:00.1230000009999Z"}`, func(ev *schema.Event) {}},
		{"attribute kinds", "", rec(`,"attributes":{"s":"x","i":-3,"f":2.5,"fi":2.0,"e":1e2,"big":9223372036854775808,"t":true,"n":null,"b":false}`),
			func(ev *schema.Event) {
				ev.Attributes = []schema.Attr{
					{Key: "s", Value: schema.Value{Kind: schema.KindString, Str: "x"}},
					{Key: "i", Value: schema.Value{Kind: schema.KindInt, Int: -3}},
					{Key: "f", Value: schema.Value{Kind: schema.KindFloat, Float: 2.5}},
					{Key: "fi", Value: schema.Value{Kind: schema.KindFloat, Float: 2}},
					{Key: "e", Value: schema.Value{Kind: schema.KindFloat, Float: 100}},
					{Key: "big", Value: schema.Value{Kind: schema.KindFloat, Float: 9223372036854775808}},
					{Key: "t", Value: schema.Value{Kind: schema.KindBool, Bool: true}},
					{Key: "b", Value: schema.Value{Kind: schema.KindBool}},
				}
			}},
		{"32 attributes", "", rec(`,"attributes":{` + attrs(32) + `}`), func(ev *schema.Event) {
			for i := range 32 {
				ev.Attributes = append(ev.Attributes, schema.Attr{Key: attrKey(i), Value: schema.Value{Kind: schema.KindInt, Int: int64(i)}})
			}
		}},
		{"field at the length limit", "", rec(`,"platform":"` + strings.Repeat("x", 256) + `"`),
			func(ev *schema.Event) { ev.Platform = strings.Repeat("x", 256) }},
		{"escapes count after unescaping", "", rec(`,"platform":"` + strings.Repeat(`\u0078`, 256) + `"`),
			func(ev *schema.Event) { ev.Platform = strings.Repeat("x", 256) }},
	}
	d := newDecoder(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got schema.Event
			if err := d.Decode([]byte(tt.key), []byte(tt.input), &got); err != nil {
				t.Fatalf("Decode: %v", err)
			}
			want := base(schema.SessionLogin)
			tt.want(&want)
			if !got.Equal(&want) {
				t.Errorf("got  %+v\nwant %+v", got, want)
			}
		})
	}
}

func attrKey(i int) string { return "k" + string(rune('a'+i/26)) + string(rune('a'+i%26)) }

func attrs(n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`"` + attrKey(i) + `":` + itoa(i))
	}
	return b.String()
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}

func TestDecodeRejects(t *testing.T) {
	long := strings.Repeat("x", 257)
	tests := []struct {
		name   string
		key    string
		input  string
		reason schema.Reason
		field  string
	}{
		// malformed_json
		{"empty", "", "", schema.ReasonMalformed, ""},
		{"whitespace only", "", " \n", schema.ReasonMalformed, ""},
		{"not an object: array", "", `[]`, schema.ReasonMalformed, ""},
		{"not an object: string", "", `"session.login"`, schema.ReasonMalformed, ""},
		{"not an object: null", "", `null`, schema.ReasonMalformed, ""},
		{"truncated after brace", "", `{`, schema.ReasonMalformed, ""},
		{"truncated in key", "", `{"ty`, schema.ReasonMalformed, ""},
		{"truncated after colon", "", `{"type":`, schema.ReasonMalformed, ""},
		{"truncated in value", "", rec("")[:40], schema.ReasonMalformed, ""},
		{"truncated before closing brace", "", login, schema.ReasonMalformed, ""},
		{"truncated in escape", "", `{"type":"\u00`, schema.ReasonMalformed, ""},
		{"truncated nested", "", rec(`,"x":{"a":[1,2`)[:len(rec(`,"x":{"a":[1,2`))-1], schema.ReasonMalformed, ""},
		{"missing colon", "", `{"type" "session.login"}`, schema.ReasonMalformed, ""},
		{"missing comma", "", `{"type":"session.login" "event_id":"e1"}`, schema.ReasonMalformed, ""},
		{"trailing comma", "", rec(`,`), schema.ReasonMalformed, ""},
		{"trailing comma in nested array", "", rec(`,"x":[1,]`), schema.ReasonMalformed, ""},
		{"trailing comma in nested object", "", rec(`,"x":{"a":1,}`), schema.ReasonMalformed, ""},
		{"trailing comma in attributes", "", rec(`,"attributes":{"a":1,}`), schema.ReasonMalformed, ""},
		{"mismatched brackets", "", rec(`,"x":[1}`), schema.ReasonMalformed, ""},
		{"unquoted key", "", `{type:"session.login"}`, schema.ReasonMalformed, ""},
		{"non-string key in nested object", "", rec(`,"x":{1:2}`), schema.ReasonMalformed, ""},
		{"data after object", "", rec("") + "{}", schema.ReasonMalformed, ""},
		{"two objects", "", rec("") + "\n" + rec(""), schema.ReasonMalformed, ""},
		{"bad literal", "", rec(`,"x":tru`), schema.ReasonMalformed, ""},
		{"capitalised literal", "", rec(`,"x":True`), schema.ReasonMalformed, ""},
		{"NaN", "", rec(`,"x":NaN`), schema.ReasonMalformed, ""},
		{"leading plus", "", rec(`,"x":+1`), schema.ReasonMalformed, ""},
		{"leading zero", "", rec(`,"x":01`), schema.ReasonMalformed, ""},
		{"bare fraction", "", rec(`,"x":.5`), schema.ReasonMalformed, ""},
		{"empty fraction", "", rec(`,"x":1.`), schema.ReasonMalformed, ""},
		{"empty exponent", "", rec(`,"x":1e`), schema.ReasonMalformed, ""},
		{"hex number", "", rec(`,"x":0x10`), schema.ReasonMalformed, ""},
		{"lone minus", "", rec(`,"x":-`), schema.ReasonMalformed, ""},
		{"bad escape", "", rec(`,"x":"\q"`), schema.ReasonMalformed, ""},
		{"bad unicode escape", "", rec(`,"x":"\u12g4"`), schema.ReasonMalformed, ""},
		{"raw control character", "", rec(",\"x\":\"a\x01b\""), schema.ReasonMalformed, ""},
		{"raw unit separator", "", rec(",\"platform\":\"a\x1fb\""), schema.ReasonMalformed, ""},
		{"raw newline in key", "", "{\"ty\npe\":1}", schema.ReasonMalformed, ""},
		{"invalid UTF-8", "", rec(",\"x\":\"\xc3\x28\""), schema.ReasonMalformed, ""},
		{"UTF-8 surrogate bytes", "", rec(",\"x\":\"\xed\xa0\x80\""), schema.ReasonMalformed, ""},
		{"byte order mark", "", "\xef\xbb\xbf" + rec(""), schema.ReasonMalformed, ""},
		{"single quotes", "", `{'type':'session.login'}`, schema.ReasonMalformed, ""},
		{"comment", "", `{/* c */` + rec("")[1:], schema.ReasonMalformed, ""},
		{"syntax error beats unknown type", "", `{"type":"nope","x":[}`, schema.ReasonMalformed, ""},

		// unknown_type
		{"unknown type", "", `{"type":"chat.message","event_id":"e1","player_id":"p1","ts":"2026-11-25T10:00:00Z"}`, schema.ReasonUnknownType, "type"},
		{"type case matters", "", `{"type":"SESSION.LOGIN","event_id":"e1","player_id":"p1","ts":"2026-11-25T10:00:00Z"}`, schema.ReasonUnknownType, "type"},
		{"type with spaces", "", `{"type":" session.login","event_id":"e1","player_id":"p1","ts":"2026-11-25T10:00:00Z"}`, schema.ReasonUnknownType, "type"},
		{"unknown type beats missing fields", "", `{"type":"x"}`, schema.ReasonUnknownType, "type"},

		// missing_field
		{"empty object", "", `{}`, schema.ReasonMissingField, "type"},
		{"missing type", "", `{"event_id":"e1","player_id":"p1","ts":"2026-11-25T10:00:00Z"}`, schema.ReasonMissingField, "type"},
		{"null type", "", `{"type":null,"event_id":"e1","player_id":"p1","ts":"2026-11-25T10:00:00Z"}`, schema.ReasonMissingField, "type"},
		{"empty type", "", `{"type":"","event_id":"e1","player_id":"p1","ts":"2026-11-25T10:00:00Z"}`, schema.ReasonMissingField, "type"},
		{"missing event_id", "", `{"type":"session.login","player_id":"p1","ts":"2026-11-25T10:00:00Z"}`, schema.ReasonMissingField, "event_id"},
		{"empty event_id", "", `{"type":"session.login","event_id":"","player_id":"p1","ts":"2026-11-25T10:00:00Z"}`, schema.ReasonMissingField, "event_id"},
		{"missing player_id", "", `{"type":"session.login","event_id":"e1","ts":"2026-11-25T10:00:00Z"}`, schema.ReasonMissingField, "player_id"},
		{"missing player_id with key", "p1", `{"type":"session.login","event_id":"e1","ts":"2026-11-25T10:00:00Z"}`, schema.ReasonMissingField, "player_id"},
		{"missing ts", "", `{"type":"session.login","event_id":"e1","player_id":"p1"}`, schema.ReasonMissingField, "ts"},
		{"null ts", "", `{"type":"session.login","event_id":"e1","player_id":"p1","ts":null}`, schema.ReasonMissingField, "ts"},
		{"missing game_mode", "", `{"type":"matchmaking.enter","event_id":"e1","player_id":"p1","ts":"2026-11-25T10:00:00Z"}`, schema.ReasonMissingField, "game_mode"},
		{"missing lobby_id", "", `{"type":"matchmaking.complete","event_id":"e1","player_id":"p1","ts":"2026-11-25T10:00:00Z","wait_seconds":1}`, schema.ReasonMissingField, "lobby_id"},
		{"missing loading_type", "", `{"type":"loading.start","event_id":"e1","player_id":"p1","ts":"2026-11-25T10:00:00Z"}`, schema.ReasonMissingField, "loading_type"},
		{"missing server_id", "", `{"type":"game.enter","event_id":"e1","player_id":"p1","ts":"2026-11-25T10:00:00Z","map":"m"}`, schema.ReasonMissingField, "server_id"},
		{"missing map", "", `{"type":"game.enter","event_id":"e1","player_id":"p1","ts":"2026-11-25T10:00:00Z","server_id":"s"}`, schema.ReasonMissingField, "map"},

		// invalid_field: wrong JSON types
		{"type is a number", "", `{"type":1,"event_id":"e1","player_id":"p1","ts":"2026-11-25T10:00:00Z"}`, schema.ReasonInvalidField, "type"},
		{"event_id is a number", "", `{"type":"session.login","event_id":1,"player_id":"p1","ts":"2026-11-25T10:00:00Z"}`, schema.ReasonInvalidField, "event_id"},
		{"player_id is an object", "", `{"type":"session.login","event_id":"e1","player_id":{},"ts":"2026-11-25T10:00:00Z"}`, schema.ReasonInvalidField, "player_id"},
		{"session_id is a bool", "", rec(`,"session_id":true`), schema.ReasonInvalidField, "session_id"},
		{"ts is a number", "", `{"type":"session.login","event_id":"e1","player_id":"p1","ts":1795600800}`, schema.ReasonInvalidField, "ts"},
		{"attributes is an array", "", rec(`,"attributes":[]`), schema.ReasonInvalidField, "attributes"},
		{"attributes is a string", "", rec(`,"attributes":"a=b"`), schema.ReasonInvalidField, "attributes"},
		{"platform is a number", "", rec(`,"platform":5`), schema.ReasonInvalidField, "platform"},
		{"wait_seconds is a string", "", `{"type":"matchmaking.complete","event_id":"e1","player_id":"p1","ts":"2026-11-25T10:00:00Z","lobby_id":"l","wait_seconds":"3"}`, schema.ReasonInvalidField, "wait_seconds"},
		{"score is a bool", "", `{"type":"game.leave","event_id":"e1","player_id":"p1","ts":"2026-11-25T10:00:00Z","score":true}`, schema.ReasonInvalidField, "score"},

		// invalid_field: impossible values
		{"negative wait_seconds", "", `{"type":"matchmaking.complete","event_id":"e1","player_id":"p1","ts":"2026-11-25T10:00:00Z","lobby_id":"l","wait_seconds":-0.5}`, schema.ReasonInvalidField, "wait_seconds"},
		{"wait_seconds overflows float64", "", `{"type":"matchmaking.complete","event_id":"e1","player_id":"p1","ts":"2026-11-25T10:00:00Z","lobby_id":"l","wait_seconds":2e308}`, schema.ReasonInvalidField, "wait_seconds"},
		{"negative total_size_mb", "", `{"type":"loading.finish","event_id":"e1","player_id":"p1","ts":"2026-11-25T10:00:00Z","total_size_mb":-1}`, schema.ReasonInvalidField, "total_size_mb"},
		{"fractional assets_loaded", "", `{"type":"loading.finish","event_id":"e1","player_id":"p1","ts":"2026-11-25T10:00:00Z","assets_loaded":1.5}`, schema.ReasonInvalidField, "assets_loaded"},
		{"tiny fraction on assets_loaded", "", `{"type":"loading.finish","event_id":"e1","player_id":"p1","ts":"2026-11-25T10:00:00Z","assets_loaded":1.0000000000000000000000000000000000001}`, schema.ReasonInvalidField, "assets_loaded"},
		{"negative assets_loaded", "", `{"type":"loading.finish","event_id":"e1","player_id":"p1","ts":"2026-11-25T10:00:00Z","assets_loaded":-1}`, schema.ReasonInvalidField, "assets_loaded"},
		{"score above int64", "", `{"type":"game.leave","event_id":"e1","player_id":"p1","ts":"2026-11-25T10:00:00Z","score":9223372036854775808}`, schema.ReasonInvalidField, "score"},
		{"score below int64", "", `{"type":"game.leave","event_id":"e1","player_id":"p1","ts":"2026-11-25T10:00:00Z","score":-9223372036854775809}`, schema.ReasonInvalidField, "score"},
		{"score huge exponent", "", `{"type":"game.leave","event_id":"e1","player_id":"p1","ts":"2026-11-25T10:00:00Z","score":1e999999999999}`, schema.ReasonInvalidField, "score"},
		{"score with 40 significant digits", "", `{"type":"game.leave","event_id":"e1","player_id":"p1","ts":"2026-11-25T10:00:00Z","score":1000000000000000000000000000000005.1e-14}`, schema.ReasonInvalidField, "score"},
		{"attribute float overflows", "", rec(`,"attributes":{"x":1e309}`), schema.ReasonInvalidField, "attributes.x"},
		{"nested attribute object", "", rec(`,"attributes":{"ok":1,"geo":{"lat":1}}`), schema.ReasonInvalidField, "attributes.geo"},
		{"nested attribute array", "", rec(`,"attributes":{"tags":["a"]}`), schema.ReasonInvalidField, "attributes.tags"},
		{"empty attribute key", "", rec(`,"attributes":{"":1}`), schema.ReasonInvalidField, "attributes"},
		{"duplicate attribute key", "", rec(`,"attributes":{"a":1,"b":2,"a":3}`), schema.ReasonInvalidField, "attributes"},
		{"duplicate attribute key after null", "", rec(`,"attributes":{"a":null,"a":3}`), schema.ReasonInvalidField, "attributes"},
		{"duplicate player_id", "", `{"type":"session.login","event_id":"e1","player_id":"p1","player_id":"p2","ts":"2026-11-25T10:00:00Z"}`, schema.ReasonInvalidField, "player_id"},
		{"duplicate type", "", `{"type":"session.login","type":"game.enter","event_id":"e1","player_id":"p1","ts":"2026-11-25T10:00:00Z"}`, schema.ReasonInvalidField, "type"},
		{"duplicate via escape", "", rec(`,"platform":"a","pl\u0061tform":"b"`), schema.ReasonInvalidField, "platform"},
		{"duplicate attributes", "", rec(`,"attributes":{"a":1},"attributes":{"b":1}`), schema.ReasonInvalidField, "attributes"},

		// invalid_field: timestamps
		{"ts date only", "", `{"type":"session.login","event_id":"e1","player_id":"p1","ts":"2026-11-25"}`, schema.ReasonInvalidField, "ts"},
		{"ts without offset", "", `{"type":"session.login","event_id":"e1","player_id":"p1","ts":"2026-11-25T10:00:00"}`, schema.ReasonInvalidField, "ts"},
		{"ts space separator", "", `{"type":"session.login","event_id":"e1","player_id":"p1","ts":"2026-11-25 10:00:00Z"}`, schema.ReasonInvalidField, "ts"},
		{"ts empty fraction", "", `{"type":"session.login","event_id":"e1","player_id":"p1","ts":"2026-11-25T10:00:00.Z"}`, schema.ReasonInvalidField, "ts"},
		{"ts offset without colon", "", `{"type":"session.login","event_id":"e1","player_id":"p1","ts":"2026-11-25T10:00:00+0100"}`, schema.ReasonInvalidField, "ts"},
		{"ts offset hour 24", "", `{"type":"session.login","event_id":"e1","player_id":"p1","ts":"2026-11-25T10:00:00+24:00"}`, schema.ReasonInvalidField, "ts"},
		{"ts month 13", "", `{"type":"session.login","event_id":"e1","player_id":"p1","ts":"2026-13-25T10:00:00Z"}`, schema.ReasonInvalidField, "ts"},
		{"ts February 29 in a common year", "", `{"type":"session.login","event_id":"e1","player_id":"p1","ts":"2026-02-29T10:00:00Z"}`, schema.ReasonInvalidField, "ts"},
		{"ts hour 24", "", `{"type":"session.login","event_id":"e1","player_id":"p1","ts":"2026-11-25T24:00:00Z"}`, schema.ReasonInvalidField, "ts"},
		{"ts leap second", "", `{"type":"session.login","event_id":"e1","player_id":"p1","ts":"2026-12-31T23:59:60Z"}`, schema.ReasonInvalidField, "ts"},
		{"ts after 2262", "", `{"type":"session.login","event_id":"e1","player_id":"p1","ts":"2262-04-11T23:47:16.854775808Z"}`, schema.ReasonInvalidField, "ts"},
		{"ts before 1677", "", `{"type":"session.login","event_id":"e1","player_id":"p1","ts":"1677-09-21T00:12:43.145224191Z"}`, schema.ReasonInvalidField, "ts"},
		{"ts trailing garbage", "", `{"type":"session.login","event_id":"e1","player_id":"p1","ts":"2026-11-25T10:00:00Zx"}`, schema.ReasonInvalidField, "ts"},
		{"ts unix seconds as string", "", `{"type":"session.login","event_id":"e1","player_id":"p1","ts":"1795600800"}`, schema.ReasonInvalidField, "ts"},

		// key_mismatch
		{"key differs", "p2", rec(""), schema.ReasonKeyMismatch, "player_id"},
		{"key differs in case", "P1", rec(""), schema.ReasonKeyMismatch, "player_id"},
		{"key is a prefix", "p", rec(""), schema.ReasonKeyMismatch, "player_id"},

		// too_many_attributes
		{"33 attributes", "", rec(`,"attributes":{` + attrs(33) + `}`), schema.ReasonTooManyAttrs, "attributes"},
		{"33 attributes counting nulls", "", rec(`,"attributes":{` + attrs(32) + `,"n":null}`), schema.ReasonTooManyAttrs, "attributes"},

		// field_too_long
		{"event_id too long", "", `{"type":"session.login","event_id":"` + long + `","player_id":"p1","ts":"2026-11-25T10:00:00Z"}`, schema.ReasonFieldTooLong, "event_id"},
		{"player_id too long", "", `{"type":"session.login","event_id":"e1","player_id":"` + long + `","ts":"2026-11-25T10:00:00Z"}`, schema.ReasonFieldTooLong, "player_id"},
		{"type too long", "", `{"type":"` + long + `","event_id":"e1","player_id":"p1","ts":"2026-11-25T10:00:00Z"}`, schema.ReasonFieldTooLong, "type"},
		{"ts too long", "", `{"type":"session.login","event_id":"e1","player_id":"p1","ts":"2026-11-25T10:00:00.` + strings.Repeat("1", 300) + `Z"}`, schema.ReasonFieldTooLong, "ts"},
		{"client_version too long", "", rec(`,"client_version":"` + long + `"`), schema.ReasonFieldTooLong, "client_version"},
		{"multi-byte field too long", "", rec(`,"platform":"` + strings.Repeat("é", 129) + `"`), schema.ReasonFieldTooLong, "platform"},
		{"attribute key too long", "", rec(`,"attributes":{"` + strings.Repeat("k", 129) + `":1}`), schema.ReasonFieldTooLong, "attributes"},
		{"attribute value too long", "", rec(`,"attributes":{"k":"` + strings.Repeat("v", 1025) + `"}`), schema.ReasonFieldTooLong, "attributes.k"},

		// too_large
		{"record too large", "", rec(`,"pad":"` + strings.Repeat("x", 64<<10) + `"`), schema.ReasonTooLarge, ""},
		{"too large beats malformed", "", strings.Repeat("[", 64<<10+1), schema.ReasonTooLarge, ""},

		// contract order, not wire order
		{"envelope error before attribute error", "", `{"attributes":{"a":[]},"type":"session.login","event_id":"e1","ts":"2026-11-25T10:00:00Z"}`, schema.ReasonMissingField, "player_id"},
		{"key mismatch before attribute error", "p2", rec(`,"attributes":{"a":[]}`), schema.ReasonKeyMismatch, "player_id"},
		{"attributes before type fields", "", `{"map":1,"type":"game.enter","event_id":"e1","player_id":"p1","ts":"2026-11-25T10:00:00Z","server_id":"s","attributes":{"":1}}`, schema.ReasonInvalidField, "attributes"},
	}
	d := newDecoder(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ev schema.Event
			err := d.Decode([]byte(tt.key), []byte(tt.input), &ev)
			if err == nil {
				t.Fatalf("Decode accepted %q: %+v", tt.input, ev)
			}
			var se *schema.Error
			if !errors.As(err, &se) {
				t.Fatalf("error %v is %T, not *schema.Error", err, err)
			}
			if se.Reason != tt.reason || se.Field != tt.field {
				t.Errorf("got %s %q (%v), want %s %q", se.Reason, se.Field, err, tt.reason, tt.field)
			}
		})
	}
}

// TestDecodeLimits checks that each limit is the one enforced, by decoding the
// same record under a limit one below and at its size.
func TestDecodeLimits(t *testing.T) {
	input := rec(`,"platform":"abcd","attributes":{"key1":"val12","b":1}`)
	tests := []struct {
		name   string
		set    func(l *schema.Limits, n int)
		n      int
		reason schema.Reason
	}{
		{"max_record_bytes", func(l *schema.Limits, n int) { l.MaxRecordBytes = n }, len(input), schema.ReasonTooLarge},
		{"max_attributes", func(l *schema.Limits, n int) { l.MaxAttributes = n }, 2, schema.ReasonTooManyAttrs},
		{"max_attr_key_len", func(l *schema.Limits, n int) { l.MaxAttrKeyLen = n }, 4, schema.ReasonFieldTooLong},
		{"max_attr_value_len", func(l *schema.Limits, n int) { l.MaxAttrValueLen = n }, 5, schema.ReasonFieldTooLong},
		{"max_field_len", func(l *schema.Limits, n int) { l.MaxFieldLen = n }, len("2026-11-25T10:00:00.123Z"), schema.ReasonFieldTooLong},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, n := range []int{tt.n, tt.n - 1} {
				l := schema.DefaultLimits()
				tt.set(&l, n)
				d, err := schema.NewDecoder(l)
				if err != nil {
					t.Fatal(err)
				}
				var ev schema.Event
				err = d.Decode(nil, []byte(input), &ev)
				if n == tt.n && err != nil {
					t.Errorf("limit %d at the record's size: %v", n, err)
				}
				if n < tt.n {
					if se := asSchemaError(t, err); se.Reason != tt.reason {
						t.Errorf("limit %d: got %v, want %s", n, err, tt.reason)
					}
				}
			}
		})
	}
}

// TestDecoderReuse checks that nothing of an earlier record leaks into the
// next, whether the earlier one was accepted or rejected.
func TestDecoderReuse(t *testing.T) {
	d := newDecoder(t)
	var ev schema.Event
	first := `{"type":"game.leave","event_id":"e1","player_id":"p1","session_id":"s","ts":"2026-11-25T10:00:00Z","result":"win","score":3,"attributes":{"a":1,"b":"x","c":null}}`
	if err := d.Decode(nil, []byte(first), &ev); err != nil {
		t.Fatal(err)
	}
	_ = d.Decode(nil, []byte(rec(`,"attributes":{"a":1,"b":[]}`)), &ev)
	if err := d.Decode(nil, []byte(rec(`,"attributes":{"c":2}`)), &ev); err != nil {
		t.Fatalf("null key of an earlier record leaked into the duplicate check: %v", err)
	}
	want := schema.Event{Type: schema.SessionLogin, EventID: "e1", PlayerID: "p1", TS: ts(t, "2026-11-25T10:00:00.123Z"),
		Attributes: []schema.Attr{{Key: "c", Value: schema.Value{Kind: schema.KindInt, Int: 2}}}}
	if !ev.Equal(&want) {
		t.Errorf("got %+v\nwant %+v", ev, want)
	}
}

func TestDecodeDoesNotAllocateMuch(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under -race (it empties sync.Pools at random); .ci/run runs this test without -race")
	}
	d := newDecoder(t)
	recs := benchEvents(t)
	var ev schema.Event
	for _, r := range recs { // warm the interner and scratch buffers
		if err := d.Decode(nil, r, &ev); err != nil {
			t.Fatal(err)
		}
	}
	// AllocsPerRun counts every allocation of the process, the runtime's
	// own included, and the budget below is exact: take the least of a few
	// measurements and allow a hundredth for a stray runtime allocation.
	allocs := math.Inf(1)
	for range 5 {
		allocs = min(allocs, testing.AllocsPerRun(100, func() {
			for _, r := range recs {
				_ = d.Decode(nil, r, &ev)
			}
		})/float64(len(recs)))
	}
	// event_id, player_id and session_id are the only fresh strings of a
	// record whose other strings repeat.
	if allocs > 3.01 {
		t.Errorf("%.3f allocations per record, want at most 3", allocs)
	}
}

// TestDecodeNestingLimit checks the decoder stops where encoding/json does,
// so that no record one accepts is malformed to the other.
func TestDecodeNestingLimit(t *testing.T) {
	d := newDecoder(t)
	for _, tt := range []struct {
		name  string
		input string
	}{
		{"unknown field", rec(`,"x":%s`)},
		{"attribute value", rec(`,"attributes":{"a":%s}`)},
	} {
		for _, n := range []int{9997, 9998, 9999, 10000} {
			nested := strings.Repeat("[", n) + strings.Repeat("]", n)
			input := strings.Replace(tt.input, "%s", nested, 1)
			t.Run(tt.name+"/"+itoa(n), func(t *testing.T) {
				var ev schema.Event
				err := d.Decode(nil, []byte(input), &ev)
				malformed := err != nil && asSchemaError(t, err).Reason == schema.ReasonMalformed
				if valid := json.Valid([]byte(input)); malformed == valid {
					t.Errorf("json.Valid = %v, but Decode returned %v", valid, err)
				}
			})
		}
	}
}
