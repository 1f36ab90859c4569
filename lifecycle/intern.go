package lifecycle

import (
	"encoding/binary"
	"math"
	"slices"

	"go.opentelemetry.io/otel/attribute"
)

// internCap bounds every intern table of a Machine, so that a producer sending
// a new value in every event cannot grow them without limit. Values past the
// cap are kept in the session's extension instead (overflowID).
const internCap = 4096

// overflowID marks a value that did not fit its intern table.
const overflowID = math.MaxUint16

// interner maps low-cardinality strings (platforms, modes, maps...) to small
// ids so a session record holds 2 bytes instead of a 16-byte string header
// and the string's own allocation. Id 0 is the empty string.
type interner struct {
	ids  map[string]uint16
	strs []string
}

func (in *interner) reset() { *in = interner{} }

func (in *interner) id(s string) uint16 {
	if s == "" {
		return 0
	}
	if id, ok := in.ids[s]; ok {
		return id
	}
	if len(in.strs) >= internCap {
		return overflowID
	}
	if in.ids == nil {
		in.ids = make(map[string]uint16)
		in.strs = append(in.strs, "")
	}
	id := uint16(len(in.strs))
	in.strs = append(in.strs, s)
	in.ids[s] = id
	return id
}

// str returns the string of an id that is not overflowID.
func (in *interner) str(id uint16) string {
	if id == 0 {
		return ""
	}
	return in.strs[id]
}

// profile is the client description a login carries: auth method, client
// version and platform, and its free-form attributes in canonical form
// (attrKey). They are interned together because together they are still few
// (a region, a build number), and one id costs 2 bytes in the session record
// where the attributes alone would cost an extension of over 100 bytes.
type profile struct {
	auth, version, platform string
	attrs                   string
}

// attrTable interns values (profiles, games) that carry the free-form
// attributes their key encodes; id 0 is the zero value.
type attrTable[K comparable] struct {
	ids  map[K]uint16
	vals []K
	// attrs are the free-form attributes of each value, shared by every
	// session that holds its id; they are only ever copied from.
	attrs [][]attribute.KeyValue
}

type (
	profiles = attrTable[profile]
	games    = attrTable[game]
)

func (p *attrTable[K]) reset() { *p = attrTable[K]{} }

// id interns v with its attributes (copied on insert; attrs must be what
// v's key encodes); overflowID when the table is full.
func (p *attrTable[K]) id(v K, attrs []attribute.KeyValue) uint16 {
	var zero K
	if v == zero {
		return 0
	}
	if id, ok := p.ids[v]; ok {
		return id
	}
	if len(p.vals) >= internCap {
		return overflowID
	}
	if p.ids == nil {
		p.ids = make(map[K]uint16)
		p.vals = append(p.vals, zero)
		p.attrs = append(p.attrs, nil)
	}
	id := uint16(len(p.vals))
	p.vals = append(p.vals, v)
	p.attrs = append(p.attrs, slices.Clone(attrs))
	p.ids[v] = id
	return id
}

// get returns the value of an id that is not overflowID; id 0 is the zero
// value, whatever was interned.
func (p *attrTable[K]) get(id uint16) (K, []attribute.KeyValue) {
	if id == 0 {
		var zero K
		return zero, nil
	}
	return p.vals[id], p.attrs[id]
}

// attrKey appends a canonical encoding of attrs to dst: equal attribute
// lists, and only those, encode equally. Strings are length-prefixed, so no
// separator can be forged by a value.
func attrKey(dst []byte, attrs []attribute.KeyValue) []byte {
	for _, kv := range attrs {
		dst = binary.AppendUvarint(dst, uint64(len(kv.Key)))
		dst = append(dst, kv.Key...)
		dst = append(dst, byte(kv.Value.Type()))
		switch kv.Value.Type() {
		case attribute.STRING:
			v := kv.Value.AsString()
			dst = binary.AppendUvarint(dst, uint64(len(v)))
			dst = append(dst, v...)
		case attribute.INT64:
			dst = binary.AppendVarint(dst, kv.Value.AsInt64())
		case attribute.FLOAT64:
			dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(kv.Value.AsFloat64()))
		case attribute.BOOL:
			if kv.Value.AsBool() {
				dst = append(dst, 1)
			} else {
				dst = append(dst, 0)
			}
		}
	}
	return dst
}

// attrSets interns the free-form attribute lists of phase-opening events by
// their canonical key (attrKey): a few shapes (a party size, a region) cover
// most events, and a 2-byte id in the session record costs far less than a
// slice in an extension. Id 0 is no attributes.
type attrSets struct {
	ids  map[string]uint16
	vals [][]attribute.KeyValue
}

func (a *attrSets) reset() { *a = attrSets{} }

// id returns the id of attrs, whose canonical key is key, interning a copy
// the first time; overflowID when the table is full.
func (a *attrSets) id(key []byte, attrs []attribute.KeyValue) uint16 {
	if len(attrs) == 0 {
		return 0
	}
	if id, ok := a.ids[string(key)]; ok {
		return id
	}
	if len(a.vals) >= internCap {
		return overflowID
	}
	if a.ids == nil {
		a.ids = make(map[string]uint16)
		a.vals = append(a.vals, nil)
	}
	id := uint16(len(a.vals))
	a.vals = append(a.vals, slices.Clone(attrs))
	a.ids[string(key)] = id
	return id
}

// get returns the attributes of an id that is not overflowID; they are
// shared and only ever copied from.
func (a *attrSets) get(id uint16) []attribute.KeyValue {
	if id == 0 {
		return nil
	}
	return a.vals[id]
}

// game is what a game.enter keeps for its in_game span: the server and its
// free-form attributes in canonical form (attrKey). They are interned
// together, as a login's profile is, because a server's events carry the
// same few attributes (its region).
type game struct {
	server, attrs string
}
