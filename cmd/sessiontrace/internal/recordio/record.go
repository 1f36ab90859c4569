// Package recordio reads and writes the files the replay and record
// subcommands exchange, and reads a range of a Kafka topic without joining a
// consumer group.
//
// Two line-oriented formats are understood, detected per file:
//   - JSONL of event values: every line is one v1 event object, as a game
//     server would produce it. The record key is the event's player_id.
//   - The envelope `kcat -J` prints, one per line: topic, partition, offset,
//     timestamp, headers, key and payload, key and payload as JSON strings.
//     This is what Writer produces, so a recorded topic replays with its
//     partitions and offsets kept.
//
// A recording is byte-faithful. JSON strings carry only UTF-8, so Writer
// writes a key, a value or the headers that are not valid UTF-8 in base64
// and says so beside them with "key_encoding", "payload_encoding" or
// "headers_encoding" set to "base64"; kcat and jq show those fields as
// ordinary members. Text stays text, as kcat writes it. For plain kcat -J
// output, which writes such bytes raw inside its strings, Reader keeps the
// raw bytes as they are.
//
// A value longer than the Reader's WithMaxValueBytes is not kept: the
// record comes back with OversizedValue set (a lower bound of its length)
// and a nil Value, so that a replay counts it as too large, as the consumer
// does, without holding it in memory.
package recordio

import "time"

// Record is one Kafka record as read from a file or a topic.
type Record struct {
	// Topic is the topic the record was read from; "" for JSONL input.
	Topic string
	// Partition is the record's partition; 0 for JSONL input.
	Partition int32
	// Offset is the record's offset; for JSONL input, the zero-based index of
	// its line in the file, so that an offset in a report points at a line.
	Offset int64
	// Timestamp is the record timestamp, or the zero time when unknown. For
	// JSONL input it is the event's "ts" when that parses as RFC 3339.
	Timestamp time.Time
	// Key is the record key; nil when absent.
	Key []byte
	// Value is the record value; nil for a tombstone, and for a value too
	// large to keep (see OversizedValue).
	Value []byte
	// Headers are the record headers, in order; nil when there are none.
	Headers []Header
	// LogAppendTime says that Timestamp was set by the broker (kcat's
	// "tstype":"logappend") rather than by the producer.
	LogAppendTime bool
	// OversizedValue is non-zero for a record whose value was longer than
	// the Reader's WithMaxValueBytes: Value is then nil and OversizedValue
	// is a lower bound of the value's length in bytes, above that limit.
	OversizedValue int64
}

// Header is one record header. A nil Value is a header without a value
// (kcat prints it as null).
type Header struct {
	Key   string
	Value []byte
}

// Format is the layout of a record file.
type Format uint8

// The formats a Reader detects.
const (
	// FormatUnknown means no record has been read yet, so nothing is known.
	FormatUnknown Format = iota
	// FormatJSONL is one event value per line.
	FormatJSONL
	// FormatKcat is one `kcat -J` envelope per line.
	FormatKcat
)

// String returns "jsonl", "kcat" or "unknown".
func (f Format) String() string {
	switch f {
	case FormatJSONL:
		return "jsonl"
	case FormatKcat:
		return "kcat"
	default:
		return "unknown"
	}
}
