package schema_test

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/sessiontrace/sessiontrace/schema"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

const fixtureDir = "../testdata/schema"

// invalidFixture is what a file under testdata/schema/invalid must produce.
// The Reason is the file name's prefix before "__".
type invalidFixture struct {
	field string
	key   string // record key to decode with; "" means none
	// decoderOnly marks rules JSON Schema cannot express: the schema accepts
	// the document and only the decoder rejects it.
	decoderOnly bool
}

var invalidFixtures = map[string]invalidFixture{
	"malformed_json__truncated":                {},
	"malformed_json__not_object":               {},
	"malformed_json__trailing_comma":           {},
	"malformed_json__trailing_data":            {},
	"malformed_json__bad_escape":               {},
	"malformed_json__control_char":             {},
	"malformed_json__invalid_utf8":             {decoderOnly: true}, // encoding/json substitutes U+FFFD
	"malformed_json__empty":                    {},
	"malformed_json__single_quotes":            {},
	"malformed_json__bad_number":               {},
	"malformed_json__unclosed_unknown_nested":  {},
	"unknown_type__chat_message":               {field: "type"},
	"unknown_type__wrong_case":                 {field: "type"},
	"missing_field__type":                      {field: "type"},
	"missing_field__event_id":                  {field: "event_id"},
	"missing_field__player_id":                 {field: "player_id"},
	"missing_field__ts":                        {field: "ts"},
	"missing_field__player_id_null":            {field: "player_id"},
	"missing_field__event_id_empty":            {field: "event_id"},
	"missing_field__game_mode":                 {field: "game_mode"},
	"missing_field__lobby_id":                  {field: "lobby_id"},
	"missing_field__loading_type":              {field: "loading_type"},
	"missing_field__server_id":                 {field: "server_id"},
	"missing_field__map":                       {field: "map"},
	"invalid_field__type_number":               {field: "type"},
	"invalid_field__event_id_number":           {field: "event_id"},
	"invalid_field__ts_space_separator":        {field: "ts"},
	"invalid_field__ts_no_offset":              {field: "ts"},
	"invalid_field__ts_bad_date":               {field: "ts"},
	"invalid_field__ts_unix_number":            {field: "ts"},
	"invalid_field__ts_leap_second":            {field: "ts", decoderOnly: true},
	"invalid_field__ts_out_of_range":           {field: "ts", decoderOnly: true},
	"invalid_field__wait_seconds_negative":     {field: "wait_seconds"},
	"invalid_field__wait_seconds_string":       {field: "wait_seconds"},
	"invalid_field__assets_loaded_fraction":    {field: "assets_loaded"},
	"invalid_field__assets_loaded_negative":    {field: "assets_loaded"},
	"invalid_field__score_overflow":            {field: "score"},
	"invalid_field__total_size_mb_overflow":    {field: "total_size_mb"},
	"invalid_field__platform_bool":             {field: "platform"},
	"invalid_field__attributes_array":          {field: "attributes"},
	"invalid_field__attribute_nested_object":   {field: "attributes.geo"},
	"invalid_field__attribute_array_value":     {field: "attributes.tags"},
	"invalid_field__attribute_empty_key":       {field: "attributes"},
	"invalid_field__attribute_number_overflow": {field: "attributes.x", decoderOnly: true},
	"invalid_field__duplicate_player_id":       {field: "player_id", decoderOnly: true},
	"invalid_field__duplicate_attribute":       {field: "attributes", decoderOnly: true},
	"key_mismatch__player_id":                  {field: "player_id", key: "p-2", decoderOnly: true},
	"too_many_attributes__33":                  {field: "attributes"},
	"field_too_long__event_id":                 {field: "event_id"},
	"field_too_long__session_id":               {field: "session_id"},
	"field_too_long__game_mode":                {field: "game_mode"},
	"field_too_long__attribute_key":            {field: "attributes"},
	"field_too_long__attribute_value":          {field: "attributes.k"},
	"too_large__big_unknown_field":             {decoderOnly: true},
}

type fixture struct {
	name string
	data []byte
}

func readFixtures(t testing.TB, sub string) []fixture {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(fixtureDir, sub, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) == 0 {
		t.Fatalf("no fixtures in %s/%s", fixtureDir, sub)
	}
	out := make([]fixture, 0, len(paths))
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, fixture{name: strings.TrimSuffix(filepath.Base(p), ".json"), data: data})
	}
	return out
}

func newDecoder(t testing.TB) *schema.Decoder {
	t.Helper()
	d, err := schema.NewDecoder(schema.DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func asSchemaError(t testing.TB, err error) *schema.Error {
	t.Helper()
	var se *schema.Error
	if !errors.As(err, &se) {
		t.Fatalf("error %v (%T) is not a *schema.Error", err, err)
	}
	return se
}

// TestValidFixtures decodes every valid fixture, compares its canonical
// encoding with the golden file, and checks the round trip.
func TestValidFixtures(t *testing.T) {
	d := newDecoder(t)
	seen := map[schema.Type]bool{}
	for _, fx := range readFixtures(t, "valid") {
		t.Run(fx.name, func(t *testing.T) {
			var ev schema.Event
			if err := d.Decode(nil, fx.data, &ev); err != nil {
				t.Fatalf("Decode: %v", err)
			}
			seen[ev.Type] = true
			var keyed schema.Event
			if err := d.Decode([]byte(ev.PlayerID), fx.data, &keyed); err != nil {
				t.Fatalf("Decode with key %q: %v", ev.PlayerID, err)
			}
			if err := ev.Validate(schema.DefaultLimits()); err != nil {
				t.Errorf("Validate of a decoded event: %v", err)
			}

			got := schema.AppendJSON(nil, &ev)
			golden := filepath.Join(fixtureDir, "canonical", fx.name+".json")
			if *update {
				if err := os.WriteFile(golden, append(slices.Clone(got), '\n'), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(got, bytes.TrimSuffix(want, []byte("\n"))) {
				t.Errorf("canonical encoding\n got %s\nwant %s", got, want)
			}

			var back schema.Event
			if err := d.Decode(nil, got, &back); err != nil {
				t.Fatalf("Decode(AppendJSON): %v", err)
			}
			if !back.Equal(&ev) {
				t.Errorf("round trip changed the event\n got %+v\nwant %+v", back, ev)
			}
		})
	}
	for _, typ := range schema.Types() {
		if !seen[typ] {
			t.Errorf("no valid fixture of type %s", typ)
		}
	}
}

// TestInvalidFixtures checks every invalid fixture is rejected with the
// Reason in its name and the Field in the table.
func TestInvalidFixtures(t *testing.T) {
	d := newDecoder(t)
	files := map[string]bool{}
	for _, fx := range readFixtures(t, "invalid") {
		files[fx.name] = true
		t.Run(fx.name, func(t *testing.T) {
			want, ok := invalidFixtures[fx.name]
			if !ok {
				t.Fatalf("fixture has no entry in invalidFixtures")
			}
			reason, _, ok := strings.Cut(fx.name, "__")
			if !ok {
				t.Fatalf("fixture name lacks the reason__ prefix")
			}
			var ev schema.Event
			err := d.Decode([]byte(want.key), fx.data, &ev)
			if err == nil {
				t.Fatalf("Decode accepted the fixture: %+v", ev)
			}
			se := asSchemaError(t, err)
			if string(se.Reason) != reason || se.Field != want.field {
				t.Errorf("got %s %q (%v), want %s %q", se.Reason, se.Field, err, reason, want.field)
			}
		})
	}
	for name := range invalidFixtures {
		if !files[name] {
			t.Errorf("invalidFixtures names %s, which has no file", name)
		}
	}
}

func compileJSONSchema(t testing.TB) *jsonschema.Schema {
	t.Helper()
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(schema.JSONSchema()))
	if err != nil {
		t.Fatalf("parse v1.schema.json: %v", err)
	}
	const url = "v1.schema.json"
	if err := c.AddResource(url, doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile(url)
	if err != nil {
		t.Fatalf("compile v1.schema.json: %v", err)
	}
	return sch
}

// schemaAccepts reports whether the JSON Schema accepts data; a document that
// is not JSON is rejected.
func schemaAccepts(t testing.TB, sch *jsonschema.Schema, data []byte) (bool, error) {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return false, err
	}
	if err := sch.Validate(doc); err != nil {
		return false, err
	}
	return true, nil
}

// TestJSONSchemaAgreesWithDecoder validates every fixture against the
// published JSON Schema: valid fixtures pass, invalid fixtures fail unless
// their rule is one the schema cannot express.
func TestJSONSchemaAgreesWithDecoder(t *testing.T) {
	sch := compileJSONSchema(t)
	for _, fx := range readFixtures(t, "valid") {
		t.Run("valid/"+fx.name, func(t *testing.T) {
			if ok, err := schemaAccepts(t, sch, fx.data); !ok {
				t.Errorf("JSON Schema rejects a valid fixture: %v", err)
			}
		})
	}
	for _, fx := range readFixtures(t, "invalid") {
		t.Run("invalid/"+fx.name, func(t *testing.T) {
			want, ok := invalidFixtures[fx.name]
			if !ok {
				t.Fatalf("fixture has no entry in invalidFixtures")
			}
			ok, err := schemaAccepts(t, sch, fx.data)
			switch {
			case want.decoderOnly && !ok:
				t.Errorf("fixture marked decoderOnly, but the JSON Schema rejects it too: %v", err)
			case !want.decoderOnly && ok:
				t.Errorf("JSON Schema accepts a fixture the decoder rejects")
			}
		})
	}
}
