package schema

import (
	"encoding/json"
	"slices"
	"testing"
)

// TestJSONSchemaMatchesContract checks that v1.schema.json says what the
// decoder enforces: the types, each type's fields and which are required, and
// the default limits. The fixtures test behaviour; this test catches a field
// added to one side only.
func TestJSONSchemaMatchesContract(t *testing.T) {
	var doc struct {
		Required   []string `json:"required"`
		Properties struct {
			Type struct {
				Enum []string `json:"enum"`
			} `json:"type"`
			TS struct {
				MaxLength int `json:"maxLength"`
			} `json:"ts"`
		} `json:"properties"`
		AllOf []struct {
			If struct {
				Properties struct {
					Type struct {
						Const string `json:"const"`
					} `json:"type"`
				} `json:"properties"`
			} `json:"if"`
			Then struct {
				Properties map[string]json.RawMessage `json:"properties"`
				Required   []string                   `json:"required"`
			} `json:"then"`
		} `json:"allOf"`
		Defs struct {
			ReqString struct {
				MaxLength int `json:"maxLength"`
			} `json:"reqString"`
			OptString struct {
				MaxLength int `json:"maxLength"`
			} `json:"optString"`
			Attributes struct {
				MaxProperties int `json:"maxProperties"`
				PropertyNames struct {
					MaxLength int `json:"maxLength"`
				} `json:"propertyNames"`
				AdditionalProperties struct {
					MaxLength int `json:"maxLength"`
				} `json:"additionalProperties"`
			} `json:"attributes"`
		} `json:"$defs"`
	}
	if err := json.Unmarshal(JSONSchema(), &doc); err != nil {
		t.Fatal(err)
	}

	var names []string
	for _, typ := range Types() {
		names = append(names, typ.String())
	}
	if !slices.Equal(doc.Properties.Type.Enum, names) {
		t.Errorf("type enum %v, want %v", doc.Properties.Type.Enum, names)
	}
	if want := []string{"type", "event_id", "player_id", "ts"}; !slices.Equal(doc.Required, want) {
		t.Errorf("required %v, want %v", doc.Required, want)
	}
	if len(doc.AllOf) != len(names) {
		t.Fatalf("%d per-type blocks, want %d", len(doc.AllOf), len(names))
	}
	for i, typ := range Types() {
		blk := doc.AllOf[i]
		if blk.If.Properties.Type.Const != typ.String() {
			t.Errorf("block %d is for %q, want %q", i, blk.If.Properties.Type.Const, typ)
			continue
		}
		var props, req []string
		for _, tf := range typeFields[typ] {
			props = append(props, fieldNames[tf.f])
			if tf.required {
				req = append(req, fieldNames[tf.f])
			}
		}
		var got []string
		for p := range blk.Then.Properties {
			got = append(got, p)
		}
		slices.Sort(got)
		slices.Sort(props)
		if !slices.Equal(got, props) {
			t.Errorf("%s: schema fields %v, decoder fields %v", typ, got, props)
		}
		if !slices.Equal(blk.Then.Required, req) {
			t.Errorf("%s: schema requires %v, decoder requires %v", typ, blk.Then.Required, req)
		}
	}

	l := DefaultLimits()
	for _, c := range []struct {
		name      string
		got, want int
	}{
		{"reqString maxLength", doc.Defs.ReqString.MaxLength, l.MaxFieldLen},
		{"optString maxLength", doc.Defs.OptString.MaxLength, l.MaxFieldLen},
		{"ts maxLength", doc.Properties.TS.MaxLength, l.MaxFieldLen},
		{"attributes maxProperties", doc.Defs.Attributes.MaxProperties, l.MaxAttributes},
		{"attribute key maxLength", doc.Defs.Attributes.PropertyNames.MaxLength, l.MaxAttrKeyLen},
		{"attribute value maxLength", doc.Defs.Attributes.AdditionalProperties.MaxLength, l.MaxAttrValueLen},
	} {
		if c.got != c.want {
			t.Errorf("%s = %d, DefaultLimits says %d", c.name, c.got, c.want)
		}
	}
}
