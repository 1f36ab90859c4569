package lifecycle

import (
	"crypto/sha256"
	"encoding/binary"

	"go.opentelemetry.io/otel/trace"
)

// identityVersion prefixes every hashed identity. Changing how identities are
// built must change it, so that old and new IDs can never collide.
const identityVersion = "sessiontrace/session/v1\x00"

// traceIDFor derives a session's trace ID: the first 16 bytes of SHA-256 over
// identityVersion followed by the player ID, the session ID and the event ID,
// each prefixed by its length as a uvarint. eventID is "" for a session that
// a login started and that has a session ID; otherwise it is the ID of the
// session's first event. An all-zero result (never seen, but possible) gets
// its last byte set to 1, because a zero trace ID is invalid.
func traceIDFor(playerID, sessionID, eventID string) trace.TraceID {
	var stack [3*binary.MaxVarintLen64 + 3*256 + len(identityVersion)]byte
	b := append(stack[:0], identityVersion...)
	for _, s := range [3]string{playerID, sessionID, eventID} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	sum := sha256.Sum256(b)
	var t trace.TraceID
	copy(t[:], sum[:16])
	if !t.IsValid() {
		t[15] = 1
	}
	return t
}

// Span indexes within a trace: the root is 0, the login phase 1, and the
// other phase spans take 2, 3, ... in the order they open.
const (
	rootIndex  = 0
	loginIndex = 1
)

// spanIDFor derives the ID of the span with index n in trace t:
// mix(hi ^ mix(lo + n*φ)) with hi, lo the big-endian halves of t, φ the 64-bit
// golden ratio constant and mix the SplitMix64 finaliser. mix is a bijection,
// so the IDs of one trace are distinct for distinct n. The single n whose ID
// would be zero gets φ instead.
func spanIDFor(t trace.TraceID, n uint64) trace.SpanID {
	hi := binary.BigEndian.Uint64(t[:8])
	lo := binary.BigEndian.Uint64(t[8:])
	x := mix64(hi ^ mix64(lo+n*golden))
	if x == 0 {
		x = golden
	}
	var s trace.SpanID
	binary.BigEndian.PutUint64(s[:], x)
	return s
}

const golden = 0x9e3779b97f4a7c15

// mix64 is the SplitMix64 finaliser: a fast bijection on uint64 with full
// avalanche.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
