package lifecycle

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"math"

	"go.opentelemetry.io/otel/attribute"

	"github.com/sessiontrace/sessiontrace/schema"
)

// This file writes and reads a snapshot of a Machine: everything a new owner
// needs to continue exactly as the Machine would have (its open sessions with
// their extension records, every intern table, the dedup window and stream
// time, and from version 3 the events the caller's reorder window holds,
// snapshot_held.go), so that it can resume from the offset after the
// snapshot's last record instead of replaying back to the oldest open
// session's login.
//
// Format, version 3. Integers are uvarints unless noted; "i64" is a zigzag
// varint, "u64le" 8 bytes little-endian; a string is uvarint(len) bytes; an
// attribute list is a string holding its canonical key (attrKey).
//
//	magic "STSNAP" version=3 (2 when no reorder window section follows)
//	window  streamTime:i64  idleTimeout:i64  maxDuration:i64
//	modes, maps, loadTypes:  n (n-1 strings: ids 1..n-1, id 0 is "")
//	games:       n (n-1 × server attrs)
//	profiles:    n (n-1 × auth version platform attrs)
//	phaseAttrs:  n (n-1 × attrs)
//	dedup:       n (n × hash:u64le offset:i64 delta from the previous, oldest first)
//	sessions:    n, in start order (the offset list), each:
//	    slot  player session  trace:16 bytes
//	    start last touch firstOff mainStart:i64
//	    seq mainSeq profile mainA mainB matches left phase flags
//	    if flags has flagExt: loadStart:i64 loadSeq loadType loadAttrs  hasOverflow
//	        if hasOverflow: auth version platform profileAttrs rootAttrs mainAttrs loadAttrs mainA mainB loadType
//	    if flags has flagLinks: roles (bit 0 root, 1 matchmaking or in_game, 2 loading; not 0),
//	        each role's link in bit order: trace:16 bytes span:8 bytes flags
//	idle order:  n slots, least recently touched first
//	version 3 only, the caller's reorder window (Reorder):
//	    latest cut cutStreamTime cutWindowStart cutLow applied:i64
//	    held: n (n ≥ 1), in offset order, each:
//	        offset windowStart:i64  type  eventID player session  ts:i64
//	        auth version platform mode lobby  reason loadType  assets:i64
//	        server map result  score:i64
//	        has (bits 0-3 HasWait HasAssetsLoaded HasTotalSizeMB HasScore;
//	            4 wait, 5 sizeMB, 6 link: the ones non-zero, written next)
//	        [wait:u64le float64 bits] [sizeMB:u64le float64 bits]
//	        [link: trace:16 bytes span:8 bytes flags]
//	        attributes: n × (key kind value: string | i64 | u64le float64 bits | 0/1)
//	        linkError
//	sha256 of everything before it: 32 bytes
//
// Version 2 is version 3 without the reorder window section, and is what
// is written whenever the window holds nothing (or there is none), so that
// a build reading versions 1 and 2 restores every snapshot it can use; a
// snapshot with held events is version 3, which such a build rejects as a
// version mismatch (ErrSnapshotMismatch) rather than load without the
// events. Version 1 is version 2 without trace links (no session has
// flagLinks): it is still read, so a snapshot written before links existed
// resumes.
//
// Slots are kept so that extension records and the idle list refer to the
// same sessions; which slot a later session gets does not change any span.
// The intern tables are written whole, unreferenced entries too, because
// whether a later value overflows a full table changes nothing visible but
// must still be decided as the old owner would. Stats are not part of a
// snapshot: they count what this Machine did.

// snapshotMagic starts every snapshot; the byte after it is the version.
const (
	snapshotMagic   = "STSNAP"
	snapshotVersion = 3
	// snapshotV1 is the format before trace links, still read.
	snapshotV1 = 1
)

// ErrSnapshotCorrupt is returned by ReadSnapshot when a snapshot fails its
// checksum or does not parse: it must not be used.
var ErrSnapshotCorrupt = errors.New("lifecycle: snapshot corrupt")

// ErrSnapshotMismatch is returned by ReadSnapshot when a snapshot was taken
// with a different dedup window, or an unknown format version: it is intact
// but cannot make this Machine continue as the old one would.
var ErrSnapshotMismatch = errors.New("lifecycle: snapshot does not fit this machine")

// SnapshotInfo summarises a snapshot, as ReadSnapshot and InspectSnapshot
// return it.
type SnapshotInfo struct {
	Version    int
	Window     int   // the dedup window of the Machine it was taken from
	StreamTime int64 // Unix nanoseconds, math.MinInt64 before the first event
	// IdleTimeout and MaxDuration are the old Machine's (nanoseconds); a new
	// owner may run with others, as after any configuration change.
	IdleTimeout, MaxDuration int64
	Sessions                 int
	Extensions               int // sessions with an extension record
	Links                    int // sessions holding trace links of open spans
	Remembered               int // event IDs in the dedup window
	// WindowStart is the offset of the oldest remembered event (valid when
	// Remembered > 0); LowestOffset the first offset of the oldest open
	// session (valid when Sessions > 0).
	WindowStart, LowestOffset int64
	Interned                  int // entries of all intern tables
	// Held is how many events of the caller's reorder window the snapshot
	// holds (version 3), 0 when none.
	Held   int
	Bytes  int64
	SHA256 [sha256.Size]byte
}

// WriteSnapshot writes a snapshot of m to w and returns its size and SHA-256
// (the last 32 bytes written). It streams from the compact records through a
// small buffer and never builds the snapshot in memory; m must not be used
// concurrently, and is not changed.
func (m *Machine) WriteSnapshot(w io.Writer) (n int64, sum [sha256.Size]byte, err error) {
	return m.WriteSnapshotReorder(w, nil)
}

// WriteSnapshotReorder is WriteSnapshot with the state of the caller's
// reorder window, r, whose held events were not applied to m: version 3
// when r holds events, else version 2 (what WriteSnapshot writes). r is not
// changed.
func (m *Machine) WriteSnapshotReorder(w io.Writer, r *Reorder) (n int64, sum [sha256.Size]byte, err error) {
	if r != nil && len(r.Held) == 0 {
		r = nil
	}
	e := newSnapEncoder(w)
	e.raw([]byte(snapshotMagic))
	if r != nil {
		e.raw([]byte{snapshotVersion})
	} else {
		e.raw([]byte{snapshotV2})
	}
	e.uint(uint64(m.window))
	e.int(m.streamTime)
	e.int(m.idle)
	e.int(m.maxDur)
	for _, in := range [...]*interner{&m.modes, &m.maps, &m.loadTypes} {
		e.uint(uint64(len(in.strs)))
		for _, s := range in.strs[min(1, len(in.strs)):] {
			e.str(s)
		}
	}
	e.uint(uint64(len(m.games.vals)))
	for _, g := range m.games.vals[min(1, len(m.games.vals)):] {
		e.str(g.server)
		e.str(g.attrs)
	}
	e.uint(uint64(len(m.profiles.vals)))
	for _, p := range m.profiles.vals[min(1, len(m.profiles.vals)):] {
		e.str(p.auth)
		e.str(p.version)
		e.str(p.platform)
		e.str(p.attrs)
	}
	e.uint(uint64(len(m.phaseAttrs.vals)))
	for _, a := range m.phaseAttrs.vals[min(1, len(m.phaseAttrs.vals)):] {
		e.attrs(a)
	}
	d := &m.dedup
	count, first := d.pos, 0
	if d.full {
		count, first = len(d.ring), d.pos
	}
	e.uint(uint64(count))
	prev := int64(0)
	for k := range count {
		i := (first + k) % max(len(d.ring), 1)
		e.u64(d.ring[i])
		e.int(d.offs[i] - prev)
		prev = d.offs[i]
	}
	e.uint(uint64(m.slab.live))
	for i := m.offHead; i >= 0; i = m.slab.at(i).offNext {
		s := m.slab.at(i)
		p, sid := m.keys.get(s.key)
		e.uint(uint64(i))
		e.bytes(p)
		e.bytes(sid)
		e.raw(s.trace[:])
		for _, v := range [...]int64{s.start, s.last, s.touch, s.firstOff, s.mainStart} {
			e.int(v)
		}
		for _, v := range [...]uint64{uint64(s.seq), uint64(s.mainSeq), uint64(s.profile), uint64(s.mainA),
			uint64(s.mainB), uint64(s.matches), uint64(s.left), uint64(s.phase), uint64(s.flags)} {
			e.uint(v)
		}
		if x := m.extOf(i, s); s.flags&flagExt != 0 {
			e.int(x.loadStart)
			e.uint(uint64(x.loadSeq))
			e.uint(uint64(x.loadType))
			e.uint(uint64(x.loadAttrs))
			if ov := x.ov; ov == nil {
				e.uint(0)
			} else {
				e.uint(1)
				e.str(ov.prof.auth)
				e.str(ov.prof.version)
				e.str(ov.prof.platform)
				e.str(ov.prof.attrs)
				e.attrs(ov.rootAttrs)
				e.attrs(ov.mainAttrs)
				e.attrs(ov.loadAttrs)
				e.str(ov.mainA)
				e.str(ov.mainB)
				e.str(ov.loadType)
			}
		}
		if s.flags&flagLinks != 0 {
			var roles uint64
			for role := range numLinkRoles {
				if _, ok := m.links[linkKey(i, role)]; ok {
					roles |= 1 << role
				}
			}
			e.uint(roles)
			for role := range numLinkRoles {
				if l, ok := m.links[linkKey(i, role)]; ok {
					e.raw(l.TraceID[:])
					e.raw(l.SpanID[:])
					e.uint(uint64(l.Flags))
				}
			}
		}
	}
	e.uint(uint64(m.slab.live))
	for i := m.idleHead; i >= 0; i = m.slab.at(i).idleNext {
		e.uint(uint64(i))
	}
	if r != nil {
		e.writeReorder(r)
	}
	return e.finish()
}

// ReadSnapshot replaces m's state (as Reset would) by the snapshot read from
// r, and returns its summary. It loads into a new state and swaps it in only
// once the checksum is verified, so on error m is unchanged:
// ErrSnapshotCorrupt when the snapshot fails its checksum or does not parse,
// ErrSnapshotMismatch when it was taken with a different dedup window or is
// of an unknown version, or when it holds events of a reorder window
// (ReadSnapshotReorder restores those). Stats are kept. From there on,
// given the events after the snapshot's last one, m emits exactly the spans
// the Machine the snapshot was taken from would have.
func (m *Machine) ReadSnapshot(r io.Reader) (SnapshotInfo, error) {
	return m.ReadSnapshotReorder(r, nil)
}

// ReadSnapshotReorder is ReadSnapshot for a caller with a reorder window:
// a version 3 snapshot's window state is stored in into (which is reset
// otherwise), whose held events the caller must apply to m, in its
// window's order, for m to continue as the old Machine would. With into
// nil, a snapshot holding events is rejected (ErrSnapshotMismatch): without
// them m would not be the state the snapshot names. On error m and into
// are unchanged.
func (m *Machine) ReadSnapshotReorder(r io.Reader, into *Reorder) (SnapshotInfo, error) {
	fresh := &Machine{idle: m.idle, maxDur: m.maxDur, window: m.window, capacity: m.capacity, stats: m.stats}
	fresh.hashOf = fresh.slotHash
	fresh.Reset()
	// Any window is parsed, so that a mismatch is reported only for an
	// intact snapshot.
	var win Reorder
	info, err := fresh.load(newSnapDecoder(r), &win)
	if err != nil {
		return info, err
	}
	if info.Window != m.window {
		return info, fmt.Errorf("%w: dedup window %d, this machine's %d", ErrSnapshotMismatch, info.Window, m.window)
	}
	if info.Held > 0 && into == nil {
		return info, fmt.Errorf("%w: it holds %d events of a reorder window, which this reader does not restore", ErrSnapshotMismatch, info.Held)
	}
	if into != nil {
		*into = win
	}
	*m = *fresh
	m.hashOf = m.slotHash
	return info, nil
}

// InspectSnapshot verifies the snapshot read from r and summarises it,
// without a Machine: ErrSnapshotCorrupt or ErrSnapshotMismatch (an unknown
// version) as for ReadSnapshot.
func InspectSnapshot(r io.Reader) (SnapshotInfo, error) {
	m := &Machine{capacity: maxSessions}
	m.hashOf = m.slotHash
	m.Reset()
	// Parsing builds the state it reads: what InspectSnapshot accepts,
	// ReadSnapshot loads. The window is sized from the snapshot itself.
	return m.load(newSnapDecoder(r), new(Reorder))
}

// load parses a snapshot into m (a Reset Machine, whose dedup window it
// resizes to the snapshot's) and win (version 3's reorder window), checks
// its trailer and summarises it.
func (m *Machine) load(d *snapDecoder, win *Reorder) (SnapshotInfo, error) {
	var info SnapshotInfo
	fail := func(what string) (SnapshotInfo, error) {
		if d.err != nil && !errors.Is(d.err, ErrSnapshotCorrupt) {
			return info, fmt.Errorf("lifecycle: read snapshot: %s: %w", what, d.err)
		}
		return info, fmt.Errorf("%w: %s", ErrSnapshotCorrupt, what)
	}
	if string(d.raw(len(snapshotMagic))) != snapshotMagic {
		return fail("no snapshot magic")
	}
	v := d.raw(1)
	if d.err != nil {
		return fail("header")
	}
	info.Version = int(v[0])
	if info.Version != snapshotVersion && info.Version != snapshotV2 && info.Version != snapshotV1 {
		// Every version ends with the SHA-256 of what precedes it, so an
		// unknown version can still be told from a corrupt one.
		rest, err := io.ReadAll(d.r)
		if err != nil {
			return info, fmt.Errorf("lifecycle: read snapshot: %w", err)
		}
		if len(rest) < sha256.Size {
			return fail("checksum")
		}
		d.h.Write(rest[:len(rest)-sha256.Size])
		if string(d.h.Sum(nil)) != string(rest[len(rest)-sha256.Size:]) {
			return fail("checksum")
		}
		return info, fmt.Errorf("%w: version %d, this build reads %d to %d", ErrSnapshotMismatch, info.Version, snapshotV1, snapshotVersion)
	}
	info.Window = int(d.count(1 << 30))
	info.StreamTime = d.int()
	info.IdleTimeout, info.MaxDuration = d.int(), d.int()
	if d.err != nil {
		return fail("header")
	}
	if m.window != info.Window {
		m.window = info.Window
		m.dedup = newDedup(m.window)
	}
	m.streamTime = info.StreamTime
	for _, in := range [...]*interner{&m.modes, &m.maps, &m.loadTypes} {
		n := d.count(internCap)
		for range n - min(n, 1) {
			s := d.str()
			if d.err != nil || s == "" || in.id(s) != uint16(len(in.strs)-1) {
				return fail("intern table")
			}
		}
		info.Interned += n
	}
	n := d.count(internCap)
	for range n - min(n, 1) {
		g := game{server: d.str(), attrs: d.str()}
		attrs, ok := parseAttrKey(g.attrs)
		if d.err != nil || !ok || g == (game{}) || m.games.id(g, attrs) != uint16(len(m.games.vals)-1) {
			return fail("games table")
		}
	}
	info.Interned += n
	n = d.count(internCap)
	for range n - min(n, 1) {
		p := profile{auth: d.str(), version: d.str(), platform: d.str(), attrs: d.str()}
		attrs, ok := parseAttrKey(p.attrs)
		if d.err != nil || !ok || p == (profile{}) || m.profiles.id(p, attrs) != uint16(len(m.profiles.vals)-1) {
			return fail("profiles table")
		}
	}
	info.Interned += n
	n = d.count(internCap)
	for range n - min(n, 1) {
		key := d.str()
		attrs, ok := parseAttrKey(key)
		if d.err != nil || !ok || len(attrs) == 0 || m.phaseAttrs.id([]byte(key), attrs) != uint16(len(m.phaseAttrs.vals)-1) {
			return fail("attributes table")
		}
	}
	info.Interned += n
	info.Remembered = d.count(max(m.window, 0))
	if info.Remembered > 0 && m.dedup.ring == nil {
		return fail("dedup window")
	}
	off := int64(0)
	for k := range info.Remembered {
		h := d.u64()
		off += d.int()
		if k == 0 {
			info.WindowStart = off
		}
		if h == 0 || h&multiple != 0 {
			return fail("dedup window")
		}
		m.dedup.remember(h, off)
	}
	info.Sessions = d.count(maxSessions)
	if d.err != nil {
		return fail("dedup window")
	}
	// placed and idled are bitsets over slots: one bit a session, not a map.
	var placed, idled bitset
	for k := range info.Sessions {
		slot := int32(d.count(maxSessions - 1))
		player, sid := d.str(), d.str()
		var s session
		copy(s.trace[:], d.raw(len(s.trace)))
		s.start, s.last, s.touch, s.firstOff, s.mainStart = d.int(), d.int(), d.int(), d.int(), d.int()
		s.seq, s.mainSeq = uint32(d.count(math.MaxUint32)), uint32(d.count(math.MaxUint32))
		s.profile, s.mainA, s.mainB = uint16(d.count(math.MaxUint16)), uint16(d.count(math.MaxUint16)), uint16(d.count(math.MaxUint16))
		s.matches, s.left = uint16(d.count(math.MaxUint16)), uint16(d.count(math.MaxUint16))
		s.phase, s.flags = uint8(d.count(int(phMenu))), uint8(d.count(math.MaxUint8))
		if d.err != nil || placed.has(slot) {
			return fail("session record")
		}
		placed.set(slot)
		if k == 0 {
			info.LowestOffset = s.firstOff
		}
		if !m.validRefs(&s) {
			return fail("session record refers to no interned value")
		}
		var x *sessionExt
		if s.flags&flagExt != 0 {
			x = &sessionExt{loadStart: d.int(), loadSeq: uint32(d.count(math.MaxUint32)),
				loadType: uint16(d.count(math.MaxUint16)), loadAttrs: uint16(d.count(math.MaxUint16))}
			if d.count(1) == 1 {
				ov := &overflowed{}
				ov.prof = profile{auth: d.str(), version: d.str(), platform: d.str(), attrs: d.str()}
				var ok [4]bool
				_, ok[0] = parseAttrKey(ov.prof.attrs)
				ov.rootAttrs, ok[1] = d.attrs()
				ov.mainAttrs, ok[2] = d.attrs()
				ov.loadAttrs, ok[3] = d.attrs()
				ov.mainA, ov.mainB, ov.loadType = d.str(), d.str(), d.str()
				if ok != [4]bool{true, true, true, true} {
					return fail("extension record")
				}
				x.ov = ov
			}
			if d.err != nil || !m.validExtRefs(x) {
				return fail("extension record")
			}
			info.Extensions++
		}
		if !needsOK(&s, x) {
			return fail("session record without the extension record it needs")
		}
		var links [numLinkRoles]schema.TraceLink
		if s.flags&flagLinks != 0 {
			if info.Version == snapshotV1 {
				return fail("trace links in a version 1 snapshot")
			}
			roles := d.count(1<<numLinkRoles - 1)
			if roles == 0 || roles&(1<<linkMain) != 0 && s.flags&(flagMM|flagGame) == 0 ||
				roles&(1<<linkLoad) != 0 && s.flags&flagLoad == 0 {
				return fail("trace links of spans that are not open")
			}
			for role := range numLinkRoles {
				if roles&(1<<role) == 0 {
					continue
				}
				l := &links[role]
				copy(l.TraceID[:], d.raw(len(l.TraceID)))
				copy(l.SpanID[:], d.raw(len(l.SpanID)))
				l.Flags = byte(d.count(math.MaxUint8))
				if d.err != nil || !l.IsValid() {
					return fail("trace link")
				}
			}
			info.Links++
		}
		m.place(slot, &s, player, sid, x)
		for role, l := range links {
			if l.IsValid() {
				if m.links == nil {
					m.links = make(map[uint32]schema.TraceLink)
				}
				m.links[linkKey(slot, uint32(role))] = l
			}
		}
	}
	if d.count(maxSessions) != info.Sessions {
		return fail("idle list")
	}
	for range info.Sessions {
		slot := int32(d.count(maxSessions - 1))
		if d.err != nil || !placed.has(slot) || idled.has(slot) {
			return fail("idle list")
		}
		idled.set(slot)
		m.linkIdle(slot)
	}
	if d.err != nil {
		return fail("idle list")
	}
	if info.Version == snapshotVersion {
		if what := d.readReorder(win); what != "" {
			return fail(what)
		}
		info.Held = len(win.Held)
	}
	want := d.h.Sum(nil)
	got := d.raw(sha256.Size)
	if d.err != nil || string(got) != string(want) {
		return fail("checksum")
	}
	if _, err := d.r.ReadByte(); err != io.EOF {
		return fail("bytes after the checksum")
	}
	m.finishLoad(&placed)
	info.Bytes = d.n
	copy(info.SHA256[:], got)
	return info, nil
}

// validRefs reports whether a loaded session's ids name entries of the
// intern tables (overflowID needs an extension record, checked later).
func (m *Machine) validRefs(s *session) bool {
	ok := func(id uint16, n int) bool { return id == overflowID || int(id) < max(n, 1) }
	if !ok(s.profile, len(m.profiles.vals)) {
		return false
	}
	switch {
	case s.flags&flagMM != 0:
		return ok(s.mainA, len(m.modes.strs)) && ok(s.mainB, len(m.phaseAttrs.vals))
	case s.flags&flagGame != 0:
		return ok(s.mainA, len(m.games.vals)) && ok(s.mainB, len(m.maps.strs))
	}
	return s.mainA == 0 && s.mainB == 0
}

func (m *Machine) validExtRefs(x *sessionExt) bool {
	return (x.loadType == overflowID || int(x.loadType) < max(len(m.loadTypes.strs), 1)) &&
		(x.loadAttrs == overflowID || int(x.loadAttrs) < max(len(m.phaseAttrs.vals), 1))
}

// place stores a loaded session at slot, appending it to the offset list and
// the index; its idle links come from linkIdle.
func (m *Machine) place(slot int32, s *session, player, sid string, x *sessionExt) {
	for int(slot)>>slabShift >= len(m.slab.chunks) {
		m.slab.chunks = append(m.slab.chunks, make([]session, slabChunk))
	}
	m.slab.n = max(m.slab.n, slot+1)
	m.slab.live++
	s.key = m.keys.put(player, sid)
	s.idlePrev, s.idleNext = -1, -1
	s.offPrev, s.offNext = m.offTail, -1
	*m.slab.at(slot) = *s
	if m.offTail >= 0 {
		m.slab.at(m.offTail).offNext = slot
	} else {
		m.offHead = slot
	}
	m.offTail = slot
	m.idx.insert(keyHash(player, sid), slot, m.hashOf)
	if x != nil {
		if m.exts == nil {
			m.exts = make(map[int32]*sessionExt)
		}
		m.exts[slot] = x
	}
}

func (m *Machine) linkIdle(slot int32) {
	s := m.slab.at(slot)
	s.idlePrev, s.idleNext = m.idleTail, -1
	if m.idleTail >= 0 {
		m.slab.at(m.idleTail).idleNext = slot
	} else {
		m.idleHead = slot
	}
	m.idleTail = slot
}

// finishLoad threads the slab's unused slots into its free list.
func (m *Machine) finishLoad(placed *bitset) {
	m.slab.free = -1
	for i := m.slab.n - 1; i >= 0; i-- {
		if !placed.has(i) {
			m.slab.at(i).idleNext = m.slab.free
			m.slab.free = i
		}
	}
}

// needsOK reports whether a loaded session has the extension record its
// flags and overflowed ids need.
func needsOK(s *session, x *sessionExt) bool {
	if s.flags&flagExt != 0 != (x != nil) {
		return false
	}
	if s.flags&flagLoad != 0 && x == nil {
		return false
	}
	overflow := s.profile == overflowID || s.mainA == overflowID || s.mainB == overflowID ||
		x != nil && (x.loadType == overflowID || x.loadAttrs == overflowID)
	return !overflow || x != nil && x.ov != nil
}

type bitset []uint64

func (b *bitset) set(i int32) {
	for int(i>>6) >= len(*b) {
		*b = append(*b, 0)
	}
	(*b)[i>>6] |= 1 << (i & 63)
}

func (b bitset) has(i int32) bool { return int(i>>6) < len(b) && b[i>>6]&(1<<(i&63)) != 0 }

// remember puts a hash read from a snapshot into the window, as seen would.
func (d *dedup) remember(h uint64, offset int64) {
	i, free := d.find(h)
	d.push(h, offset, i, free)
}

// parseAttrKey decodes a canonical attribute key (attrKey); false when it is
// not one.
func parseAttrKey(key string) ([]attribute.KeyValue, bool) {
	var attrs []attribute.KeyValue
	b := []byte(key)
	for len(b) > 0 {
		n, w := binary.Uvarint(b)
		if w <= 0 || uint64(len(b)-w) < n+1 {
			return nil, false
		}
		k := attribute.Key(b[w : w+int(n)])
		typ := attribute.Type(b[w+int(n)])
		b = b[w+int(n)+1:]
		switch typ {
		case attribute.STRING:
			n, w := binary.Uvarint(b)
			if w <= 0 || uint64(len(b)-w) < n {
				return nil, false
			}
			attrs = append(attrs, k.String(string(b[w:w+int(n)])))
			b = b[w+int(n):]
		case attribute.INT64:
			v, w := binary.Varint(b)
			if w <= 0 {
				return nil, false
			}
			attrs = append(attrs, k.Int64(v))
			b = b[w:]
		case attribute.FLOAT64:
			if len(b) < 8 {
				return nil, false
			}
			attrs = append(attrs, k.Float64(math.Float64frombits(binary.LittleEndian.Uint64(b))))
			b = b[8:]
		case attribute.BOOL:
			if len(b) < 1 || b[0] > 1 {
				return nil, false
			}
			attrs = append(attrs, k.Bool(b[0] == 1))
			b = b[1:]
		default:
			return nil, false
		}
	}
	return attrs, true
}

// snapEncoder writes a snapshot through a buffer, hashing as it goes; the
// first error sticks.
type snapEncoder struct {
	w    *bufio.Writer
	h    hash.Hash
	n    int64
	err  error
	buf  [binary.MaxVarintLen64]byte
	key  []byte
	sbuf []byte
}

func newSnapEncoder(w io.Writer) *snapEncoder {
	return &snapEncoder{w: bufio.NewWriterSize(w, 32<<10), h: sha256.New()}
}

func (e *snapEncoder) raw(b []byte) {
	if e.err != nil {
		return
	}
	e.h.Write(b)
	var k int
	k, e.err = e.w.Write(b)
	e.n += int64(k)
}

func (e *snapEncoder) uint(v uint64) { e.raw(binary.AppendUvarint(e.buf[:0], v)) }
func (e *snapEncoder) int(v int64)   { e.raw(binary.AppendVarint(e.buf[:0], v)) }
func (e *snapEncoder) u64(v uint64)  { e.raw(binary.LittleEndian.AppendUint64(e.buf[:0], v)) }
func (e *snapEncoder) bytes(b []byte) {
	e.uint(uint64(len(b)))
	e.raw(b)
}
func (e *snapEncoder) str(s string) {
	e.uint(uint64(len(s)))
	if e.err == nil {
		// Through a scratch buffer: converting s for the hash's Write
		// allocates (a held event has several strings).
		e.sbuf = append(e.sbuf[:0], s...)
		e.h.Write(e.sbuf)
		k, err := e.w.WriteString(s)
		e.n += int64(k)
		e.err = err
	}
}
func (e *snapEncoder) attrs(a []attribute.KeyValue) {
	e.key = attrKey(e.key[:0], a)
	e.bytes(e.key)
}

func (e *snapEncoder) finish() (int64, [sha256.Size]byte, error) {
	var sum [sha256.Size]byte
	copy(sum[:], e.h.Sum(nil))
	if e.err == nil {
		var k int
		k, e.err = e.w.Write(sum[:])
		e.n += int64(k)
	}
	if e.err == nil {
		e.err = e.w.Flush()
	}
	if e.err != nil {
		return e.n, sum, fmt.Errorf("lifecycle: write snapshot: %w", e.err)
	}
	return e.n, sum, nil
}

// snapDecoder reads a snapshot, hashing what it reads; the first error
// sticks, and every read after it returns zero values.
type snapDecoder struct {
	r   *bufio.Reader
	h   hash.Hash
	n   int64
	err error
	tmp []byte
}

func newSnapDecoder(r io.Reader) *snapDecoder {
	return &snapDecoder{r: bufio.NewReaderSize(r, 32<<10), h: sha256.New()}
}

func (d *snapDecoder) corrupt() {
	if d.err == nil {
		d.err = ErrSnapshotCorrupt
	}
}

// raw reads n bytes, valid until the next read.
func (d *snapDecoder) raw(n int) []byte {
	if d.err != nil {
		return nil
	}
	if cap(d.tmp) < n {
		d.tmp = make([]byte, n)
	}
	b := d.tmp[:n]
	k, err := io.ReadFull(d.r, b)
	d.n += int64(k)
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			d.corrupt()
		} else {
			d.err = err
		}
		return nil
	}
	d.h.Write(b)
	return b
}

// varint reads one varint's bytes and hashes them.
func (d *snapDecoder) varint() []byte {
	if d.err != nil {
		return nil
	}
	var buf [binary.MaxVarintLen64]byte
	for i := range buf {
		c, err := d.r.ReadByte()
		if err != nil {
			d.corrupt()
			return nil
		}
		d.n++
		buf[i] = c
		if c < 0x80 {
			d.h.Write(buf[:i+1])
			return buf[:i+1]
		}
	}
	d.corrupt()
	return nil
}

func (d *snapDecoder) uint() uint64 {
	b := d.varint()
	if b == nil {
		return 0
	}
	v, w := binary.Uvarint(b)
	if w <= 0 {
		d.corrupt()
	}
	return v
}

func (d *snapDecoder) int() int64 {
	b := d.varint()
	if b == nil {
		return 0
	}
	v, w := binary.Varint(b)
	if w <= 0 {
		d.corrupt()
	}
	return v
}

// count reads a uvarint that must not exceed limit.
func (d *snapDecoder) count(limit int) int {
	v := d.uint()
	if v > uint64(limit) {
		d.corrupt()
		return 0
	}
	return int(v)
}

func (d *snapDecoder) u64() uint64 {
	b := d.raw(8)
	if b == nil {
		return 0
	}
	return binary.LittleEndian.Uint64(b)
}

// maxSnapString bounds one string of a snapshot, so a corrupt length cannot
// make the reader allocate without limit.
const maxSnapString = 1 << 24

func (d *snapDecoder) str() string {
	n := d.count(maxSnapString)
	return string(d.raw(n))
}

func (d *snapDecoder) attrs() ([]attribute.KeyValue, bool) {
	a, ok := parseAttrKey(d.str())
	return a, ok && d.err == nil
}
