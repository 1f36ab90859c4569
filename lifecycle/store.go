package lifecycle

import (
	"encoding/binary"

	"github.com/cespare/xxhash/v2"
)

// This file holds the compact storage behind a Machine: a slab of session
// records in fixed-size chunks (no append slack, stable addresses), an arena
// for the key strings (no string header or allocation per session), and an
// open-addressing index from key to slab slot (4 bytes an entry instead of a
// Go map's ~20-40).

const (
	slabShift = 12
	slabChunk = 1 << slabShift
	slabMask  = slabChunk - 1

	// maxSessions is what the index's 24-bit slot field can address.
	maxSessions = 1<<24 - 1

	arenaChunk = 64 << 10
	// arenaMinCompact keeps small arenas from compacting over and over.
	arenaMinCompact = 1 << 20
)

// slab stores session records in chunks; a free slot is linked through its
// idleNext field.
type slab struct {
	chunks [][]session
	n      int32 // slots handed out so far (free ones included)
	free   int32 // head of the free list, -1 when empty
	live   int
}

func (s *slab) reset() { *s = slab{free: -1} }

func (s *slab) at(i int32) *session { return &s.chunks[i>>slabShift][i&slabMask] }

func (s *slab) alloc() int32 {
	s.live++
	if i := s.free; i >= 0 {
		s.free = s.at(i).idleNext
		return i
	}
	if int(s.n)>>slabShift == len(s.chunks) {
		s.chunks = append(s.chunks, make([]session, slabChunk))
	}
	s.n++
	return s.n - 1
}

func (s *slab) release(i int32) {
	s.live--
	*s.at(i) = session{idleNext: s.free}
	s.free = i
}

// arena stores each session's key as uvarint(len(player)) player
// uvarint(len(session)) session. A reference is chunk<<16 | offset; a key never
// straddles chunks, and one larger than a chunk gets a chunk of its own.
type arena struct {
	chunks  [][]byte
	used    int // bytes written
	garbage int // bytes of released keys
}

func (a *arena) reset() { *a = arena{} }

func (a *arena) put(player, session string) uint32 { return arenaPut(a, player, session) }

func (a *arena) putBytes(player, session []byte) uint32 { return arenaPut(a, player, session) }

func arenaPut[T string | []byte](a *arena, player, session T) uint32 {
	n := 2*binary.MaxVarintLen64 + len(player) + len(session)
	if len(a.chunks) == 0 || cap(a.chunks[len(a.chunks)-1])-len(a.chunks[len(a.chunks)-1]) < n {
		a.chunks = append(a.chunks, make([]byte, 0, max(arenaChunk, n)))
	}
	ci := len(a.chunks) - 1
	c := a.chunks[ci]
	off := len(c)
	c = binary.AppendUvarint(c, uint64(len(player)))
	c = append(c, player...)
	c = binary.AppendUvarint(c, uint64(len(session)))
	c = append(c, session...)
	a.chunks[ci] = c
	a.used += len(c) - off
	return uint32(ci)<<16 | uint32(off)
}

// get returns the key stored at ref. The slices alias the arena: they are
// valid until the next put or compaction.
func (a *arena) get(ref uint32) (player, session []byte) {
	c := a.chunks[ref>>16][ref&0xffff:]
	n, w := binary.Uvarint(c)
	player = c[w : w+int(n)]
	c = c[w+int(n):]
	n, w = binary.Uvarint(c)
	session = c[w : w+int(n)]
	return player, session
}

func (a *arena) release(ref uint32) {
	p, s := a.get(ref)
	a.garbage += len(p) + len(s) + uvarintLen(len(p)) + uvarintLen(len(s))
}

func (a *arena) needsCompaction() bool {
	return a.used >= arenaMinCompact && a.garbage > a.used/2
}

func uvarintLen(n int) int {
	l := 1
	for n >= 0x80 {
		n >>= 7
		l++
	}
	return l
}

// keyHash hashes a session key for the index.
func keyHash(player, session string) uint64 {
	return xxhash.Sum64String(player) ^ mix64(xxhash.Sum64String(session)+golden)
}

// keyHashBytes is keyHash for a key read from the arena.
func keyHashBytes(player, session []byte) uint64 {
	return xxhash.Sum64(player) ^ mix64(xxhash.Sum64(session)+golden)
}

// index maps key hashes to slab slots by linear probing. An entry is
// tag<<24 | slot+1, the tag being the hash's top byte, so most probes that
// miss are rejected without touching the session record; 0 is empty. It grows
// at load 1/2 and deletes by backward shifting, so there are no tombstones.
// Hashes are not stored: growing and deleting recompute them from the arena
// through hashOf.
type index struct {
	entries []entry
	n       int
}

type entry uint32

func entryOf(h uint64, slot int32) entry { return entry(uint32(h>>56)<<24 | uint32(slot+1)) }

func (e entry) slot() int32         { return int32(e&0xffffff) - 1 }
func (e entry) tagOK(h uint64) bool { return uint32(e)>>24 == uint32(h>>56) }

func (x *index) reset() { *x = index{} }

func (x *index) mask() uint64 { return uint64(len(x.entries) - 1) }

// insert adds slot under h; the key must not be present.
func (x *index) insert(h uint64, slot int32, hashOf func(int32) uint64) {
	if 2*(x.n+1) > len(x.entries) {
		x.grow(hashOf)
	}
	m := x.mask()
	i := h & m
	for x.entries[i] != 0 {
		i = (i + 1) & m
	}
	x.entries[i] = entryOf(h, slot)
	x.n++
}

func (x *index) grow(hashOf func(int32) uint64) {
	old := x.entries
	x.entries = make([]entry, max(64, 2*len(old)))
	m := x.mask()
	for _, e := range old {
		if e == 0 {
			continue
		}
		h := hashOf(e.slot())
		i := h & m
		for x.entries[i] != 0 {
			i = (i + 1) & m
		}
		x.entries[i] = entryOf(h, e.slot())
	}
}

// remove deletes the entry at position i, shifting later entries of the same
// probe run back so that lookups never need tombstones.
func (x *index) remove(i uint64, hashOf func(int32) uint64) {
	m := x.mask()
	x.entries[i] = 0
	x.n--
	for j := (i + 1) & m; x.entries[j] != 0; j = (j + 1) & m {
		home := hashOf(x.entries[j].slot()) & m
		// The entry at j may move to the hole at i unless its home lies
		// cyclically in (i, j]: then moving it before its home would hide it.
		if (j > i && (home <= i || home > j)) || (j < i && home <= i && home > j) {
			x.entries[i] = x.entries[j]
			x.entries[j] = 0
			i = j
		}
	}
}
