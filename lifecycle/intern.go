package lifecycle

import "math"

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
// version and platform. They are interned together because together they are
// still few, and one id costs 2 bytes where three would cost 6.
type profile [3]string

type profiles struct {
	ids  map[profile]uint16
	vals []profile
}

func (p *profiles) reset() { *p = profiles{} }

func (p *profiles) id(v profile) uint16 {
	if v == (profile{}) {
		return 0
	}
	if id, ok := p.ids[v]; ok {
		return id
	}
	if len(p.vals) >= internCap {
		return overflowID
	}
	if p.ids == nil {
		p.ids = make(map[profile]uint16)
		p.vals = append(p.vals, profile{})
	}
	id := uint16(len(p.vals))
	p.vals = append(p.vals, v)
	p.ids[v] = id
	return id
}

func (p *profiles) get(id uint16) profile { return p.vals[id] }
