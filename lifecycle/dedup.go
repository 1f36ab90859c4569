package lifecycle

import "github.com/cespare/xxhash/v2"

// dedup remembers the 64-bit hashes of the last window event IDs of a
// partition: a ring gives the order to forget them in, an open-addressing set
// (linear probing at load at most 1/2, backward-shift deletion) the lookup.
// Two distinct IDs with the same hash would make the later one a false
// duplicate; at 65536 remembered IDs that is about one event in 2^48.
type dedup struct {
	ring []uint64
	pos  int
	full bool
	set  []uint64 // 0 is empty; a hash of 0 is stored as 1
}

func newDedup(window int) dedup {
	if window == 0 {
		return dedup{}
	}
	size := 2
	for size < 2*window {
		size <<= 1
	}
	return dedup{ring: make([]uint64, window), set: make([]uint64, size)}
}

// seen reports whether id is within the window, and remembers it if not.
func (d *dedup) seen(id string) bool {
	if d.ring == nil {
		return false
	}
	h := max(xxhash.Sum64String(id), 1)
	mask := uint64(len(d.set) - 1)
	i := h & mask
	for ; d.set[i] != 0; i = (i + 1) & mask {
		if d.set[i] == h {
			return true
		}
	}
	if d.full {
		// Forgetting first can shift the run i is in; find the slot again.
		d.forget(d.ring[d.pos])
		for i = h & mask; d.set[i] != 0; i = (i + 1) & mask {
		}
	}
	d.set[i] = h
	d.ring[d.pos] = h
	if d.pos++; d.pos == len(d.ring) {
		d.pos = 0
		d.full = true
	}
	return false
}

func (d *dedup) forget(h uint64) {
	mask := uint64(len(d.set) - 1)
	i := h & mask
	for d.set[i] != h {
		i = (i + 1) & mask
	}
	d.set[i] = 0
	for j := (i + 1) & mask; d.set[j] != 0; j = (j + 1) & mask {
		home := d.set[j] & mask
		// The entry at j may fill the hole at i unless its home lies
		// cyclically in (i, j].
		if (j > i && (home <= i || home > j)) || (j < i && home <= i && home > j) {
			d.set[i], d.set[j] = d.set[j], 0
			i = j
		}
	}
}
