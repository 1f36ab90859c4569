// Package schema owns the v1 event contract: the Go types of every player
// lifecycle event, a strict decoder that explains each rejection, an encoder,
// and the published JSON Schema (schema/v1.schema.json, also JSONSchema).
//
// The package imports neither Kafka nor OpenTelemetry: it is the bottom of the
// dependency graph (schema ← lifecycle ← consumer ← cmd).
//
// # Wire format
//
// One JSON object per Kafka record, keyed by player ID. The envelope fields
// and the type-specific fields are siblings:
//
//	{"type":"session.login","event_id":"e1","player_id":"p1",
//	 "ts":"2026-11-25T10:00:00.123Z","platform":"pc","attributes":{"region":"eu"}}
//
// Envelope (every type):
//
//	type        string     required  one of the nine types below
//	event_id    string     required
//	player_id   string     required  equal to the record key when the key is set
//	session_id  string     optional
//	ts          string     required  RFC 3339 date-time, any offset
//	attributes  object     optional  scalar values only
//	traceparent string     optional  W3C Trace Context traceparent (see Trace links)
//
// Type-specific fields (R = required, o = optional):
//
//	session.login         auth_method o, client_version o, platform o
//	matchmaking.enter     game_mode R
//	matchmaking.complete  lobby_id R, wait_seconds o (number >= 0)
//	matchmaking.cancel    reason o
//	loading.start         loading_type R
//	loading.finish        assets_loaded o (integer >= 0), total_size_mb o (number >= 0)
//	game.enter            server_id R, map R
//	game.leave            result o, score o (integer, may be negative)
//	session.disconnect    reason o
//
// The required fields name what a phase is (the mode queued for, the lobby,
// the kind of loading screen, the server and map); a span without them cannot
// be queried. The optional ones are client details, measurements or outcomes
// that may honestly be unknown: the state machine copes (wait_seconds is then
// computed from timestamps, a disconnect without reason ends as "unknown").
//
// # Decisions
//
//   - Tolerant reader: unknown fields are ignored whatever their value,
//     including nested objects and arrays, and so are the type-specific
//     fields of other types ("score" on a session.login is not even
//     type-checked). The record must still be well-formed JSON throughout.
//   - null and "" mean absent for every field; a required field that is null
//     or "" is missing_field. An attribute whose value is null is dropped but
//     still counts against MaxAttributes; "" is a valid attribute value.
//   - Keys must not repeat. A repeated known field (or attribute key) is
//     invalid_field "duplicate key" rather than last-wins, because two
//     parsers that disagree on which copy counts could route one record to two
//     players. Repeated unknown fields are ignored.
//   - The record must be UTF-8; invalid bytes are malformed_json. Escaped
//     lone surrogates decode to U+FFFD, as in encoding/json.
//   - Numbers: any JSON form. Integer fields accept any integral value
//     (12, 12.0, 1.2e1) that fits in int64, as JSON Schema's "integer" does.
//     Attribute numbers become KindInt when written as a plain integer that
//     fits in int64, otherwise KindFloat; a number beyond float64 is
//     invalid_field.
//   - ts: RFC 3339 with 'T' or 't', 'Z', 'z' or a ±hh:mm offset, and any
//     number of fraction digits (truncated to nanoseconds). Leap seconds and
//     instants outside int64 nanoseconds (1677-09-21 to 2262-04-11) are
//     invalid_field.
//   - Limits (Limits, DefaultLimits) count UTF-8 bytes after unescaping. The
//     JSON Schema carries the default limits but counts characters, so it is
//     looser for non-ASCII text.
//   - Errors are reported in contract order, not wire order: too_large, then
//     malformed_json anywhere in the record, then type, event_id, player_id,
//     session_id, ts, the key check, attributes, and the type's fields in the
//     order above. The Reason of a record thus does not depend on how its
//     producer ordered the keys.
//
// # Trace links
//
// An event may name the trace it was published in with a W3C Trace Context
// traceparent, 00-<32 hex trace-id>-<16 hex parent-id>-<2 hex flags>; the
// span the event opens or closes then links to that trace (package
// lifecycle says which span). It is read, first present wins, from:
//
//  1. the v1 "traceparent" field, or under a mapping its traceparent source
//     (default: the member "traceparent"; for CloudEvents ce:traceparent,
//     the distributed tracing extension: a top-level member in structured
//     mode, the ce_traceparent header in binary mode);
//  2. the record header "traceparent" (HeaderTraceparent), as Kafka
//     instrumentations inject it; the v1 decoder reads no other header.
//
// ParseTraceparent follows the recommendation: lower-case hex only, all-zero
// trace-id or parent-id invalid, version ff invalid, version 00 exactly 55
// characters, a later version parsed for its first four fields (what follows
// must start with '-'). A traceparent that does not parse, is not a string,
// or repeats its key is ignored: the event is decoded as if it had none and
// Event.LinkError says why (the consumer counts and logs it). It is never a
// reason to reject the event, and a present but invalid first source is not
// replaced by the header. The version and any tracestate are not kept
// (TraceLink).
//
// # Round trip
//
// AppendJSON writes the canonical form (fixed field order, a trace link as a
// version-00 traceparent after ts, ts in UTC with
// nine fraction digits, floats in shortest form with ".0" on integral
// attribute floats so they stay KindFloat). Decode(AppendJSON(ev)) equals ev
// (Event.Equal) for every ev that passes Event.Validate, and Validate accepts
// every event Decode returns.
package schema
