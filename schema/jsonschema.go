package schema

import (
	"bytes"
	_ "embed" // for the published JSON Schema
)

//go:embed v1.schema.json
var jsonSchemaV1 []byte

// JSONSchema returns a copy of the published JSON Schema (draft 2020-12) of
// the v1 contract, for tools that validate events outside Go. It encodes the
// default Limits; what JSON Schema cannot express is listed in its
// description.
func JSONSchema() []byte { return bytes.Clone(jsonSchemaV1) }
