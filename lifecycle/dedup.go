package lifecycle

import "github.com/cespare/xxhash/v2"

// dedup remembers the hashes of the event IDs of the last window events
// given to the Machine (Apply or Remember), duplicates included: a ring
// gives the order to forget them in, with each event's offset, and an
// open-addressing counting set (linear probing at load at most 1/2,
// backward-shift deletion) the lookup. Because every event takes one place
// in the ring, whether it was a duplicate or not, the window is a pure
// function of the last window events: a new owner that reads them again
// from the offset of the oldest (WindowStart) rebuilds it exactly.
//
// Hashes are 63 bits; the set's top bit marks a hash the ring holds more
// than once, whose count is then in multi, so the common case (an ID seen
// once) costs one probe and 8 bytes of set. Two distinct IDs with the same
// hash would make the later one a false duplicate; at 65536 remembered IDs
// that is about one event in 2^47.
type dedup struct {
	ring  []uint64
	offs  []int64 // the offset of each ring entry's event
	pos   int
	full  bool
	set   []uint64 // 0 is empty; a hash of 0 is stored as 1
	multi map[uint64]uint32
}

// multiple marks a set entry whose hash the ring holds more than once.
const multiple = 1 << 63

func newDedup(window int) dedup {
	if window == 0 {
		return dedup{}
	}
	size := 2
	for size < 2*window {
		size <<= 1
	}
	return dedup{ring: make([]uint64, window), offs: make([]int64, window), set: make([]uint64, size), multi: map[uint64]uint32{}}
}

// seen reports whether id is among the last window events, and remembers it
// (read at offset) as the newest, forgetting the oldest.
func (d *dedup) seen(id string, offset int64) bool {
	if d.ring == nil {
		return false
	}
	h := max(xxhash.Sum64String(id)&^multiple, 1)
	i, free := d.find(h)
	d.push(h, offset, i, free)
	return i >= 0
}

// push remembers h (read at offset) as the newest, forgetting the oldest; i
// and free are what find(h) returned.
func (d *dedup) push(h uint64, offset int64, i, free int) {
	if d.full {
		// Forgetting first can move entries; find the slot again.
		d.forget(d.ring[d.pos])
		i, free = d.find(h)
	}
	switch {
	case i < 0:
		d.set[free] = h
	case d.set[i]&multiple == 0:
		d.set[i] |= multiple
		d.multi[h] = 2
	default:
		d.multi[h]++
	}
	d.ring[d.pos], d.offs[d.pos] = h, offset
	if d.pos++; d.pos == len(d.ring) {
		d.pos = 0
		d.full = true
	}
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

// find returns the set index holding h, or -1 and the empty slot that ends
// h's probe run.
func (d *dedup) find(h uint64) (int, int) {
	mask := uint64(len(d.set) - 1)
	i := h & mask
	for ; d.set[i] != 0; i = (i + 1) & mask {
		if d.set[i]&^multiple == h {
			return int(i), -1
		}
	}
	return -1, int(i)
}

// forget removes one occurrence of h, and its entry with the last one.
func (d *dedup) forget(h uint64) {
	mask := uint64(len(d.set) - 1)
	at, _ := d.find(h)
	i := uint64(at)
	if d.set[i]&multiple != 0 {
		if n := d.multi[h] - 1; n > 1 {
			d.multi[h] = n
		} else {
			delete(d.multi, h)
			d.set[i] &^= multiple
		}
		return
	}
	d.set[i] = 0
	for j := (i + 1) & mask; d.set[j] != 0; j = (j + 1) & mask {
		home := d.set[j] & mask // the top bit is above any mask
		// The entry at j may fill the hole at i unless its home lies
		// cyclically in (i, j].
		if (j > i && (home <= i || home > j)) || (j < i && home <= i && home > j) {
			d.set[i], d.set[j] = d.set[j], 0
			i = j
		}
	}
}
