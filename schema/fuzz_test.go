package schema_test

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/sessiontrace/sessiontrace/schema"
)

// FuzzDecode checks the decoder's promises on arbitrary input: it never
// panics; a rejection is a *Error with a known Reason; what it accepts is
// valid JSON, passes Validate and survives AppendJSON and Decode unchanged;
// and well-formed JSON objects are never called malformed.
func FuzzDecode(f *testing.F) {
	for _, sub := range []string{"valid", "invalid"} {
		for _, fx := range readFixtures(f, sub) {
			key := ""
			if want, ok := invalidFixtures[fx.name]; ok {
				key = want.key
			}
			f.Add([]byte(key), fx.data)
		}
	}
	for _, r := range benchEvents(f) {
		f.Add([]byte("player-3f9a2c71-5d1e"), r)
	}
	limits := schema.DefaultLimits()
	d := newDecoder(f)
	check := newDecoder(f)
	f.Fuzz(func(t *testing.T, key, value []byte) {
		var ev schema.Event
		err := d.Decode(key, value, &ev)
		if err != nil {
			var se *schema.Error
			if !errors.As(err, &se) {
				t.Fatalf("error %v is %T, not *schema.Error", err, err)
			}
			if !slices.Contains(schema.Reasons(), se.Reason) {
				t.Fatalf("unknown reason %q", se.Reason)
			}
			if se.Reason == schema.ReasonMalformed && len(value) <= limits.MaxRecordBytes &&
				json.Valid(value) && utf8.Valid(value) && strings.HasPrefix(strings.TrimLeft(string(value), " \t\r\n"), "{") {
				t.Fatalf("encoding/json parses the record, Decode says %v", err)
			}
			return
		}
		if !json.Valid(value) {
			t.Fatalf("Decode accepted what encoding/json rejects: %q", value)
		}
		if len(key) > 0 && string(key) != ev.PlayerID {
			t.Fatalf("accepted key %q for player_id %q", key, ev.PlayerID)
		}
		if err := ev.Validate(limits); err != nil {
			t.Fatalf("Validate rejects a decoded event: %v", err)
		}
		enc := schema.AppendJSON(nil, &ev)
		if !json.Valid(enc) {
			t.Fatalf("AppendJSON wrote invalid JSON: %s", enc)
		}
		var back schema.Event
		if err := check.Decode([]byte(ev.PlayerID), enc, &back); err != nil {
			t.Fatalf("Decode(AppendJSON(ev)) = %v\nencoding: %s", err, enc)
		}
		if !back.Equal(&ev) {
			t.Fatalf("round trip changed the event\n got %+v\nwant %+v\nencoding: %s", back, ev, enc)
		}
	})
}
