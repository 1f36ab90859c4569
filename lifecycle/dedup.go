package lifecycle

import "github.com/cespare/xxhash/v2"

// dedup remembers the 64-bit hashes of the last window event IDs of a
// partition: a ring gives the order to forget them in, a set the lookup. Two
// distinct IDs with the same hash would make the later one a false
// duplicate; at 65536 remembered IDs that is about one event in 2^48.
type dedup struct {
	ring []uint64
	pos  int
	full bool
	set  map[uint64]struct{}
}

func newDedup(window int) dedup {
	if window == 0 {
		return dedup{}
	}
	return dedup{ring: make([]uint64, window), set: make(map[uint64]struct{}, window)}
}

// seen reports whether id is within the window, and remembers it if not.
func (d *dedup) seen(id string) bool {
	if d.ring == nil {
		return false
	}
	h := xxhash.Sum64String(id)
	if _, ok := d.set[h]; ok {
		return true
	}
	if d.full {
		delete(d.set, d.ring[d.pos])
	}
	d.ring[d.pos] = h
	d.set[h] = struct{}{}
	if d.pos++; d.pos == len(d.ring) {
		d.pos = 0
		d.full = true
	}
	return false
}
