package schema

import "hash/maphash"

// Interning sizes: 1024 slots of at most 64 bytes pin at most 64 KiB per
// Decoder.
const (
	internSlots  = 1024
	internMaxLen = 64
)

// interner turns byte slices into strings, reusing the string of an earlier
// call when the bytes repeat. Attribute keys and the enumeration-like fields
// (platform, game_mode, reason...) take a handful of values, so most
// conversions then allocate nothing, and the strings the state machine keeps
// are shared instead of copied per event. It is direct-mapped: a collision
// replaces the slot, so high-cardinality input costs a hash and a compare but
// can never grow it.
type interner struct {
	seed  maphash.Seed
	slots [internSlots]string
}

func (in *interner) str(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if len(b) > internMaxLen {
		return string(b)
	}
	h := maphash.Bytes(in.seed, b)
	slot := &in.slots[h&(internSlots-1)]
	if *slot == string(b) {
		return *slot
	}
	s := string(b)
	*slot = s
	return s
}
