package schema

import "strconv"

// Reason says why a record was rejected. The set is small and closed so that
// it can label a metric and travel as a dead-letter header value.
type Reason string

// The reasons a record can be rejected for.
const (
	// ReasonTooLarge: the record is longer than Limits.MaxRecordBytes.
	ReasonTooLarge Reason = "too_large"
	// ReasonMalformed: the record is not one well-formed UTF-8 JSON object.
	ReasonMalformed Reason = "malformed_json"
	// ReasonUnknownType: "type" names no v1 event type.
	ReasonUnknownType Reason = "unknown_type"
	// ReasonMissingField: a required field is absent, null or "".
	ReasonMissingField Reason = "missing_field"
	// ReasonInvalidField: a field has the wrong JSON type, an impossible
	// value, or appears twice.
	ReasonInvalidField Reason = "invalid_field"
	// ReasonKeyMismatch: the record key is set and differs from player_id.
	ReasonKeyMismatch Reason = "key_mismatch"
	// ReasonTooManyAttrs: "attributes" has more than Limits.MaxAttributes
	// members.
	ReasonTooManyAttrs Reason = "too_many_attributes"
	// ReasonFieldTooLong: a string field, an attribute key or an attribute
	// value is longer than its limit.
	ReasonFieldTooLong Reason = "field_too_long"
)

// Reasons returns every Reason in a fixed order, for example to pre-register
// metric series.
func Reasons() []Reason {
	return []Reason{
		ReasonTooLarge, ReasonMalformed, ReasonUnknownType, ReasonMissingField,
		ReasonInvalidField, ReasonKeyMismatch, ReasonTooManyAttrs, ReasonFieldTooLong,
	}
}

// Error is the one error a rejected record gets: which field, and why.
type Error struct {
	// Reason is the low-cardinality class of the rejection.
	Reason Reason
	// Field is the wire name of the offending field ("attributes.<key>" for
	// an attribute value), or "" when the record as a whole is at fault.
	Field string
	// Detail is a human-readable explanation; it may quote the input and is
	// not meant for metric labels.
	Detail string
}

// Error formats e as `schema: <reason> "<field>": <detail>`, leaving out the
// parts that are empty.
func (e *Error) Error() string {
	b := make([]byte, 0, 24+len(e.Field)+len(e.Detail))
	b = append(b, "schema: "...)
	b = append(b, e.Reason...)
	if e.Field != "" {
		b = append(b, ' ')
		b = strconv.AppendQuote(b, e.Field)
	}
	if e.Detail != "" {
		b = append(b, ": "...)
		b = append(b, e.Detail...)
	}
	return string(b)
}

func newError(r Reason, field, detail string) *Error {
	return &Error{Reason: r, Field: field, Detail: detail}
}
