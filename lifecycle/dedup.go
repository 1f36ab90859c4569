package lifecycle

import "github.com/cespare/xxhash/v2"

// dedup remembers the 64-bit hashes of the event IDs of the last window
// events given to the Machine (Apply or Remember), duplicates included: a
// ring gives the order to forget them in, with each event's offset, and an
// open-addressing counting set (linear probing at load at most 1/2,
// backward-shift deletion) the lookup. Because every event takes one place
// in the ring, whether it was a duplicate or not, the window is a pure
// function of the last window events: a new owner that reads them again
// from the offset of the oldest (WindowStart) rebuilds it exactly. Two
// distinct IDs with the same hash would make the later one a false
// duplicate; at 65536 remembered IDs that is about one event in 2^48.
type dedup struct {
	ring []uint64
	offs []int64 // the offset of each ring entry's event
	pos  int
	full bool
	set  []slot
}

// slot is one entry of the counting set: a hash (0 is empty; a hash of 0 is
// stored as 1) and how many ring entries hold it.
type slot struct {
	h uint64
	n uint32
}

func newDedup(window int) dedup {
	if window == 0 {
		return dedup{}
	}
	size := 2
	for size < 2*window {
		size <<= 1
	}
	return dedup{ring: make([]uint64, window), offs: make([]int64, window), set: make([]slot, size)}
}

// seen reports whether id is among the last window events, and remembers it
// (read at offset) as the newest, forgetting the oldest.
func (d *dedup) seen(id string, offset int64) bool {
	if d.ring == nil {
		return false
	}
	h := max(xxhash.Sum64String(id), 1)
	dup := d.find(h) >= 0
	if d.full {
		d.forget(d.ring[d.pos])
	}
	if i := d.find(h); i >= 0 {
		d.set[i].n++
	} else {
		mask := uint64(len(d.set) - 1)
		j := h & mask
		for d.set[j].h != 0 {
			j = (j + 1) & mask
		}
		d.set[j] = slot{h: h, n: 1}
	}
	d.ring[d.pos], d.offs[d.pos] = h, offset
	if d.pos++; d.pos == len(d.ring) {
		d.pos = 0
		d.full = true
	}
	return dup
}

// oldest returns the offset of the oldest remembered event, and false when
// nothing is remembered.
func (d *dedup) oldest() (int64, bool) {
	switch {
	case d.full:
		return d.offs[d.pos], true
	case d.pos > 0:
		return d.offs[0], true
	}
	return 0, false
}

// find returns the set index holding h, or -1.
func (d *dedup) find(h uint64) int {
	mask := uint64(len(d.set) - 1)
	for i := h & mask; d.set[i].h != 0; i = (i + 1) & mask {
		if d.set[i].h == h {
			return int(i)
		}
	}
	return -1
}

// forget removes one occurrence of h, and its slot with the last one.
func (d *dedup) forget(h uint64) {
	mask := uint64(len(d.set) - 1)
	i := uint64(d.find(h))
	if d.set[i].n--; d.set[i].n > 0 {
		return
	}
	d.set[i] = slot{}
	for j := (i + 1) & mask; d.set[j].h != 0; j = (j + 1) & mask {
		home := d.set[j].h & mask
		// The entry at j may fill the hole at i unless its home lies
		// cyclically in (i, j].
		if (j > i && (home <= i || home > j)) || (j < i && home <= i && home > j) {
			d.set[i], d.set[j] = d.set[j], slot{}
			i = j
		}
	}
}
