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

// FuzzMappedDecode checks the mapped decoders' promises on arbitrary input:
// they never panic; a record is an event, ErrIgnored or a *Error with a
// known Reason; what they accept passes Validate; and a well-formed JSON
// object is never called malformed.
func FuzzMappedDecode(f *testing.F) {
	var v1 schema.Event
	d1 := newDecoder(f)
	for _, r := range benchEvents(f) {
		if err := d1.Decode(nil, r, &v1); err != nil {
			f.Fatal(err)
		}
		f.Add(arenaJSON(f, &v1), "")
		f.Add(cloudEventStructured(f, &v1), "application/cloudevents+json")
		_, data := cloudEventBinary(f, &v1)
		f.Add(data, "")
	}
	arena := mustDecoder(f, arenaMapping())
	ce := mustDecoder(f, cloudEventsMapping())
	limits := schema.DefaultLimits()
	f.Fuzz(func(t *testing.T, value []byte, contentType string) {
		hs := []schema.Header{{Key: "content-type", Value: []byte(contentType)}}
		if contentType == "" {
			hs = []schema.Header{{Key: "ce_specversion", Value: []byte("1.0")}, {Key: "ce_id", Value: []byte("1")},
				{Key: "ce_type", Value: []byte("com.example.game.session.login")}, {Key: "ce_subject", Value: []byte("p")},
				{Key: "ce_time", Value: []byte("2026-11-20T18:00:03Z")}}
		}
		for _, d := range []*schema.MappedDecoder{arena, ce} {
			var ev schema.Event
			err := d.DecodeRecord(&schema.Record{Value: value, Headers: hs}, &ev)
			if errors.Is(err, schema.ErrIgnored) {
				continue
			}
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
					t.Fatalf("encoding/json parses the record, the mapped decoder says %v", err)
				}
				continue
			}
			if err := ev.Validate(limits); err != nil {
				t.Fatalf("accepted an event that fails Validate: %v\n%+v", err, ev)
			}
		}
	})
}
