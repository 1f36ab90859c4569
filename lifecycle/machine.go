package lifecycle

import (
	"fmt"
	"math"
	"slices"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/sessiontrace/sessiontrace/schema"
)

// session is the compact record of one open session: 96 bytes, no pointers
// (so the GC never scans the slab), strings interned or in the key arena.
// Everything rare (an open loading screen, free-form attributes kept until
// their span ends, values that overflowed an intern table) lives in a
// sessionExt found through Machine.exts, and costs nothing when absent.
type session struct {
	trace     trace.TraceID
	start     int64  // effective time of the first event
	last      int64  // latest effective event time
	touch     int64  // stream time when last touched; orders the idle list
	firstOff  int64  // offset of the first event; orders the offset list
	mainStart int64  // start of the open matchmaking or in_game span
	key       uint32 // arena reference of (player, session) IDs
	seq       uint32 // phase span indexes handed out so far
	mainSeq   uint32 // index of the open matchmaking or in_game span

	idlePrev, idleNext int32
	offPrev, offNext   int32

	profile uint16 // auth method, client version, platform
	mainA   uint16 // matchmaking: game mode; in_game: server and attributes (games)
	mainB   uint16 // in_game: map; matchmaking: the opening event's attributes (attrSets)
	matches uint16 // games entered (session.matches_played); saturates at 65535
	left    uint16 // games left with game.leave (session.matches_completed); saturates
	phase   uint8
	flags   uint8
}

const (
	flagUnobserved uint8 = 1 << iota // started by an event other than a login
	flagMM                           // a matchmaking span is open
	flagGame                         // an in_game span is open
	flagLoad                         // a loading span is open (details in the ext)
	flagExt                          // Machine.exts holds an entry for the slot
	flagLinks                        // Machine.links holds a trace link of the slot
)

// Roles of a kept trace link: which open span of the session it is for.
const (
	linkRoot uint32 = iota
	linkMain        // the open matchmaking or in_game span
	linkLoad        // the open loading span
	numLinkRoles
)

const (
	phLogin uint8 = iota
	phMatchmaking
	phInGame
	phMenu
)

var phaseNames = [...]string{phLogin: PhaseLogin, phMatchmaking: PhaseMatchmaking, phInGame: PhaseInGame, phMenu: PhaseMenu}

// sessionExt holds what only some sessions need, so the common record stays
// small: an open loading span, and a pointer to what overflowed. 24 bytes.
type sessionExt struct {
	loadStart int64
	loadSeq   uint32
	loadType  uint16 // interned (loadTypes)
	loadAttrs uint16 // the loading.start's attributes (attrSets)
	// ov holds values that overflowed their intern table; nil when there
	// are none, which is nearly always.
	ov *overflowed
}

// overflowed are the values of a session that did not fit an intern table.
type overflowed struct {
	prof                            profile
	rootAttrs, mainAttrs, loadAttrs []attribute.KeyValue
	mainA, mainB, loadType          string
}

// overflow returns x's overflowed values, creating them on first use.
func (x *sessionExt) overflow() *overflowed {
	if x.ov == nil {
		x.ov = new(overflowed)
	}
	return x.ov
}

func (x *sessionExt) empty() bool {
	return x.loadSeq == 0 && (x.ov == nil || x.ov.prof == (profile{}) && x.ov.rootAttrs == nil && x.ov.mainAttrs == nil &&
		x.ov.loadAttrs == nil && x.ov.mainA == "" && x.ov.mainB == "" && x.ov.loadType == "")
}

// Stats are a Machine's cumulative counters. Reset does not clear them.
type Stats struct {
	Events          uint64 // events applied, duplicates excluded
	Duplicates      uint64 // events ignored as Duplicate
	UnknownSessions uint64 // sessions started by an event other than a login
	Clamped         uint64 // events whose ts went backwards within their session
	Superseded      uint64 // sessions ended by a new login of the same key
	OutOfPhase      uint64 // events that made no sense in their session's phase
	Timeouts        uint64 // sessions ended by IdleTimeout
	MaxDurations    uint64 // sessions ended by MaxDuration
	Disconnects     uint64 // sessions ended by session.disconnect
	Closed          uint64 // sessions ended by CloseAll
	Evicted         uint64 // sessions ended because the Machine was full
	SessionsStarted uint64
	SessionsEnded   uint64
	Spans           uint64 // spans appended by Apply and CloseAll
}

// OpenSession describes a session still open, as reported by OpenSessions.
type OpenSession struct {
	PlayerID  string
	SessionID string // "" when the events carried none
	TraceID   trace.TraceID
	// Start and Last are the effective times (Unix nanoseconds) of the
	// session's first and latest events.
	Start, Last int64
	// Phase is what session.end_phase would say if the session ended now.
	Phase            string
	FirstOffset      int64
	StartObserved    bool // false when the session did not start with a login
	MatchesPlayed    int  // games entered, as session.matches_played
	MatchesCompleted int  // games left with game.leave, as session.matches_completed
}

// Machine turns the events of one partition into finished spans. It holds
// every open session of the partition in a compact form (see the package
// doc for the semantics). It is not safe for concurrent use: the partition's
// worker owns it.
type Machine struct {
	idle, maxDur int64
	window       int
	capacity     int

	slab  slab
	keys  arena
	idx   index
	exts  map[int32]*sessionExt
	spare []*sessionExt
	// links holds the trace links opening events carried until their span
	// ends, by slot<<2 | role; nil until the first. Links are rare, so a
	// side table costs the sessions without one nothing but a flag bit.
	links map[uint32]schema.TraceLink

	modes, maps, loadTypes interner
	// games interns each in_game span's server with its attributes.
	games games
	// phaseAttrs interns the attributes of matchmaking.enter and
	// loading.start events.
	phaseAttrs attrSets
	profiles   profiles
	// attrScratch and keyScratch build an event's attributes and their
	// canonical key (eventAttrs), so that an event whose attributes are
	// already interned allocates at most the key's string.
	attrScratch []attribute.KeyValue
	keyScratch  []byte

	dedup dedup

	idleHead, idleTail int32
	offHead, offTail   int32
	streamTime         int64

	stats  Stats
	hashOf func(int32) uint64
}

// New returns a Machine for cfg, or an error wrapping the Err* sentinel of
// each invalid setting.
func New(cfg Config) (*Machine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("lifecycle: new machine: %w", err)
	}
	m := &Machine{
		idle:     int64(cfg.IdleTimeout),
		maxDur:   int64(cfg.MaxDuration),
		window:   cfg.DedupWindow,
		capacity: maxSessions,
	}
	m.hashOf = m.slotHash
	m.Reset()
	return m, nil
}

// Reset drops all state: open sessions, remembered event IDs, interned
// values and stream time. It never ends sessions (a partition's next owner
// rebuilds them by replay), and it keeps Stats.
func (m *Machine) Reset() {
	m.slab.reset()
	m.keys.reset()
	m.idx.reset()
	m.exts = nil
	m.spare = nil
	m.links = nil
	m.modes.reset()
	m.loadTypes.reset()
	m.phaseAttrs.reset()
	m.games.reset()
	m.maps.reset()
	m.profiles.reset()
	m.dedup = newDedup(m.window)
	m.idleHead, m.idleTail = -1, -1
	m.offHead, m.offTail = -1, -1
	m.streamTime = math.MinInt64
}

// Open returns the number of open sessions.
func (m *Machine) Open() int { return m.slab.live }

// StreamTime returns the largest event ts applied so far (Unix nanoseconds),
// or math.MinInt64 before the first event.
func (m *Machine) StreamTime() int64 { return m.streamTime }

// Resume sets the stream time of a Machine that takes a partition over
// from the offset a previous owner committed, to the stream time that owner
// had just before it (read back from the commit): stream time is a running
// maximum, so from there on it is the previous owner's at every record. It
// is for a new or Reset Machine; it never ends or expires a session.
func (m *Machine) Resume(streamTime int64) { m.streamTime = streamTime }

// Remember records eventID, read at offset, in the dedup window as Apply
// would, without applying anything: a new owner re-reads the events below
// the offset it resumes from, back to the previous owner's WindowStart, to
// rebuild the window exactly. Offsets must increase, as for Apply.
func (m *Machine) Remember(eventID string, offset int64) { m.dedup.seen(eventID, offset) }

// WindowStart returns the offset of the oldest event in the dedup window,
// and false when the window is empty (or disabled). The window is a pure
// function of the events from there on: every event given to Apply or
// Remember takes one place in it, a duplicate too.
func (m *Machine) WindowStart() (int64, bool) { return m.dedup.oldest() }

// Stats returns the cumulative counters.
func (m *Machine) Stats() Stats { return m.stats }

// LowestOffset returns the lowest first offset of any open session, and false
// when no session is open. Sessions are kept in a list in the order they
// started, which is the order of their first offsets, so this is O(1).
func (m *Machine) LowestOffset() (int64, bool) {
	if m.offHead < 0 {
		return 0, false
	}
	return m.slab.at(m.offHead).firstOff, true
}

// OpenSessions calls fn for every open session in the order they started.
func (m *Machine) OpenSessions(fn func(OpenSession)) {
	for i := m.offHead; i >= 0; i = m.slab.at(i).offNext {
		s := m.slab.at(i)
		p, sid := m.keys.get(s.key)
		fn(OpenSession{
			PlayerID:         string(p),
			SessionID:        string(sid),
			TraceID:          s.trace,
			Start:            s.start,
			Last:             s.last,
			Phase:            m.endPhase(i, s),
			FirstOffset:      s.firstOff,
			StartObserved:    s.flags&flagUnobserved == 0,
			MatchesPlayed:    int(s.matches),
			MatchesCompleted: int(s.left),
		})
	}
}

// CloseAll ends every open session, in the order they started, with
// end_reason (and phase.ended_by) reason, at each session's last event time.
// It is for a replay that reached the end of its input and whose user chose
// to close what is left (EndOfInput); the consumer never calls it.
func (m *Machine) CloseAll(reason string, out []Span) []Span {
	n := len(out)
	for m.offHead >= 0 {
		s := m.slab.at(m.offHead)
		out = m.end(m.offHead, s, reason, reason, s.last, "", nil, out)
		m.stats.Closed++
	}
	m.stats.Spans += uint64(len(out) - n)
	m.maybeCompact()
	return out
}

// Apply feeds one valid event read at offset. Offsets must increase from call
// to call. The spans the event finishes, including those of other sessions
// that idle out or exceed MaxDuration because the event advanced stream time,
// are appended to out and are returned with the event's Outcome. Apply keeps
// ev's strings (never ev or its Attributes slice), so they must not alias
// memory the caller reuses; the schema decoder's strings never do.
func (m *Machine) Apply(ev *schema.Event, offset int64, out []Span) ([]Span, Outcome) {
	if m.Seen(ev.EventID, offset) {
		return out, Duplicate
	}
	return m.ApplySeen(ev, offset, out)
}

// Seen is Apply's first half: it reports whether eventID is a duplicate
// (among the last DedupWindow events) and remembers it, read at offset, as
// the newest. Offsets must increase from call to call. A caller that
// reorders events before applying them checks each in arrival order here
// and applies the ones that are not duplicates later with ApplySeen, so the
// dedup window stays a function of the records in offset order.
func (m *Machine) Seen(eventID string, offset int64) bool {
	if m.dedup.seen(eventID, offset) {
		m.stats.Duplicates++
		return true
	}
	return false
}

// ApplySeen is Apply's second half, for an event Seen found new. offset is
// what the event's session records as its first offset when it starts one
// (LowestOffset); it must not decrease from call to call, but may repeat.
func (m *Machine) ApplySeen(ev *schema.Event, offset int64, out []Span) ([]Span, Outcome) {
	m.stats.Events++
	n := len(out)
	var o Outcome
	if ev.TS > m.streamTime {
		m.streamTime = ev.TS
	}
	out = m.expire(out)
	slot, h := m.lookup(ev.PlayerID, ev.SessionID)
	// The lists find expired sessions in the order they were touched or
	// started; one whose first event came late can sit behind a younger
	// session, so the session this event belongs to is checked itself.
	if slot >= 0 {
		if s := m.slab.at(slot); m.overMax(s) {
			out = m.end(slot, s, EndMaxDuration, EndMaxDuration, s.start+m.maxDur, "", nil, out)
			m.stats.MaxDurations++
			slot = -1
		}
	}
	if len(out) > n {
		o |= Expired
	}
	if ev.Type == schema.SessionLogin {
		if slot >= 0 {
			s := m.slab.at(slot)
			out = m.end(slot, s, EndSuperseded, EndSuperseded, max(ev.TS, s.last), ev.PlayerID, nil, out)
			m.stats.Superseded++
			o |= Superseded
		}
		out, slot = m.start(ev, offset, h, true, out)
		s := m.slab.at(slot)
		out = append(out, m.phaseSpan(s, SpanPhaseLogin, loginIndex, ev.TS, ev.TS,
			[]attribute.KeyValue{KeyPlayerID.String(ev.PlayerID)}))
		o |= Started
	} else {
		if slot < 0 {
			out, slot = m.start(ev, offset, h, false, out)
			m.stats.UnknownSessions++
			o |= UnknownSession | Started
		}
		out, o = m.step(slot, ev, o, out)
	}
	m.stats.Spans += uint64(len(out) - n)
	m.maybeCompact()
	return out, o
}

func (m *Machine) overMax(s *session) bool {
	return uint64(m.streamTime-s.start) > uint64(m.maxDur)
}

// expire ends the sessions that stream time has left behind. Both lists are
// ordered by a monotone key (stream time at last touch; start order), so when
// nothing expires this looks at two list heads and stops.
func (m *Machine) expire(out []Span) []Span {
	for m.idleHead >= 0 {
		slot := m.idleHead
		s := m.slab.at(slot)
		if uint64(m.streamTime-s.touch) <= uint64(m.idle) {
			break
		}
		// Whichever deadline came first ends the session; a tie is a timeout.
		if m.idle > m.maxDur || uint64(s.touch-s.start) > uint64(m.maxDur-m.idle) {
			out = m.end(slot, s, EndMaxDuration, EndMaxDuration, s.start+m.maxDur, "", nil, out)
			m.stats.MaxDurations++
		} else {
			out = m.end(slot, s, EndTimeout, EndTimeout, s.last, "", nil, out)
			m.stats.Timeouts++
		}
	}
	for m.offHead >= 0 {
		slot := m.offHead
		s := m.slab.at(slot)
		if !m.overMax(s) {
			break
		}
		out = m.end(slot, s, EndMaxDuration, EndMaxDuration, s.start+m.maxDur, "", nil, out)
		m.stats.MaxDurations++
	}
	return out
}

// lookup returns the slot of the open session keyed (player, sessionID), or
// -1, and the key's hash.
func (m *Machine) lookup(player, sessionID string) (int32, uint64) {
	h := keyHash(player, sessionID)
	if len(m.idx.entries) == 0 {
		return -1, h
	}
	mask := m.idx.mask()
	for i := h & mask; m.idx.entries[i] != 0; i = (i + 1) & mask {
		e := m.idx.entries[i]
		if !e.tagOK(h) {
			continue
		}
		p, sid := m.keys.get(m.slab.at(e.slot()).key)
		if string(p) == player && string(sid) == sessionID {
			return e.slot(), h
		}
	}
	return -1, h
}

func (m *Machine) slotHash(slot int32) uint64 {
	p, sid := m.keys.get(m.slab.at(slot).key)
	return keyHashBytes(p, sid)
}

func (m *Machine) unindex(slot int32, s *session) {
	h := m.slotHash(slot)
	mask := m.idx.mask()
	for i := h & mask; ; i = (i + 1) & mask {
		if m.idx.entries[i].slot() == slot {
			m.idx.remove(i, m.hashOf)
			return
		}
	}
}

// start opens a session for ev; login tells whether ev is a session.login.
func (m *Machine) start(ev *schema.Event, offset int64, h uint64, login bool, out []Span) ([]Span, int32) {
	if m.slab.live >= m.capacity {
		s := m.slab.at(m.offHead)
		out = m.end(m.offHead, s, EndCapacity, EndCapacity, s.last, "", nil, out)
		m.stats.Evicted++
	}
	slot := m.slab.alloc()
	s := m.slab.at(slot)
	eventID := ev.EventID
	if login && ev.SessionID != "" {
		eventID = ""
	}
	*s = session{
		trace:    traceIDFor(ev.PlayerID, ev.SessionID, eventID),
		start:    ev.TS,
		last:     ev.TS,
		touch:    m.streamTime,
		firstOff: offset,
		key:      m.keys.put(ev.PlayerID, ev.SessionID),
		idlePrev: m.idleTail, idleNext: -1,
		offPrev: m.offTail, offNext: -1,
	}
	if m.idleTail >= 0 {
		m.slab.at(m.idleTail).idleNext = slot
	} else {
		m.idleHead = slot
	}
	m.idleTail = slot
	if m.offTail >= 0 {
		m.slab.at(m.offTail).offNext = slot
	} else {
		m.offHead = slot
	}
	m.offTail = slot
	m.idx.insert(h, slot, m.hashOf)
	m.stats.SessionsStarted++
	if !login {
		s.flags |= flagUnobserved
		return out, slot
	}
	s.seq = loginIndex
	m.keepLink(slot, s, linkRoot, ev.Link)
	attrs, key := m.keyedAttrs(ev.Attributes)
	prof := profile{auth: ev.AuthMethod, version: ev.ClientVersion, platform: ev.Platform, attrs: key}
	if s.profile = m.profiles.id(prof, attrs); s.profile == overflowID {
		ov := m.ext(slot, s).overflow()
		ov.prof, ov.rootAttrs = prof, slices.Clone(attrs)
	}
	return out, slot
}

// touch records that the session saw an event now: it moves to the tail of
// the idle list, whose order is stream time at last touch.
func (m *Machine) touch(slot int32, s *session) {
	s.touch = m.streamTime
	if m.idleTail == slot {
		return
	}
	m.unlinkIdle(s)
	s.idlePrev, s.idleNext = m.idleTail, -1
	m.slab.at(m.idleTail).idleNext = slot
	m.idleTail = slot
}

func (m *Machine) unlinkIdle(s *session) {
	if s.idlePrev >= 0 {
		m.slab.at(s.idlePrev).idleNext = s.idleNext
	} else {
		m.idleHead = s.idleNext
	}
	if s.idleNext >= 0 {
		m.slab.at(s.idleNext).idlePrev = s.idlePrev
	} else {
		m.idleTail = s.idlePrev
	}
}

func (m *Machine) unlinkOff(s *session) {
	if s.offPrev >= 0 {
		m.slab.at(s.offPrev).offNext = s.offNext
	} else {
		m.offHead = s.offNext
	}
	if s.offNext >= 0 {
		m.slab.at(s.offNext).offPrev = s.offPrev
	} else {
		m.offTail = s.offPrev
	}
}

// step applies a non-login event to the open session in slot.
func (m *Machine) step(slot int32, ev *schema.Event, o Outcome, out []Span) ([]Span, Outcome) {
	s := m.slab.at(slot)
	// An event that makes no sense in the phase changes nothing, not even the
	// session's last time, so it is decided before anything else.
	var open uint8
	switch ev.Type {
	case schema.MatchmakingComplete, schema.MatchmakingCancel:
		open = s.flags & flagMM
	case schema.LoadingFinish:
		open = s.flags & flagLoad
	case schema.GameLeave:
		open = s.flags & flagGame
	default:
		open = 1
	}
	if open == 0 {
		// It still says the player is there: it restarts the idle timer.
		// Otherwise a new owner, which meets the tail of a session that
		// began below its committed offset as a fragment (where such an
		// event may be in phase, or start the fragment), would time the
		// fragment out later than the original session.
		m.stats.OutOfPhase++
		m.touch(slot, s)
		return out, o | OutOfPhase
	}
	t := ev.TS
	if t < s.last {
		t = s.last
		m.stats.Clamped++
		o |= Clamped
	}
	switch ev.Type {
	case schema.MatchmakingEnter:
		out = m.closeMainFor(slot, s, t, ev.PlayerID, flagMM, out)
		s.seq++
		s.mainSeq, s.mainStart = s.seq, t
		if s.mainA = m.modes.id(ev.GameMode); s.mainA == overflowID {
			m.ext(slot, s).overflow().mainA = ev.GameMode
		}
		s.mainB = 0
		if len(ev.Attributes) > 0 {
			id, attrs := m.internAttrs(ev.Attributes)
			if s.mainB = id; id == overflowID {
				m.ext(slot, s).overflow().mainAttrs = slices.Clone(attrs)
			}
		}
		m.keepLink(slot, s, linkMain, ev.Link)
		s.flags |= flagMM
		s.phase = phMatchmaking
	case schema.MatchmakingComplete, schema.MatchmakingCancel:
		out = m.closeMain(slot, s, t, ev.PlayerID, "", ev, out)
	case schema.LoadingStart:
		x := m.ext(slot, s)
		if s.flags&flagLoad != 0 {
			out = m.closeLoad(slot, s, t, ev.PlayerID, EndSuperseded, nil, out)
			x = m.ext(slot, s)
		}
		s.seq++
		x.loadSeq, x.loadStart = s.seq, t
		if x.loadType = m.loadTypes.id(ev.LoadingType); x.loadType == overflowID {
			x.overflow().loadType = ev.LoadingType
		}
		if len(ev.Attributes) > 0 {
			id, attrs := m.internAttrs(ev.Attributes)
			if x.loadAttrs = id; id == overflowID {
				x.overflow().loadAttrs = slices.Clone(attrs)
			}
		}
		m.keepLink(slot, s, linkLoad, ev.Link)
		s.flags |= flagLoad
	case schema.LoadingFinish:
		out = m.closeLoad(slot, s, t, ev.PlayerID, "", ev, out)
	case schema.GameEnter:
		out = m.closeMainFor(slot, s, t, ev.PlayerID, flagGame, out)
		// A match counts when it is entered, as the guide counts it: a crash
		// during the first match is one match played, none completed.
		if s.matches < math.MaxUint16 {
			s.matches++
		}
		s.seq++
		s.mainSeq, s.mainStart = s.seq, t
		attrs, key := m.keyedAttrs(ev.Attributes)
		g := game{server: ev.ServerID, attrs: key}
		if s.mainA = m.games.id(g, attrs); s.mainA == overflowID {
			ov := m.ext(slot, s).overflow()
			ov.mainA, ov.mainAttrs = ev.ServerID, slices.Clone(attrs)
		}
		if s.mainB = m.maps.id(ev.Map); s.mainB == overflowID {
			m.ext(slot, s).overflow().mainB = ev.Map
		}
		m.keepLink(slot, s, linkMain, ev.Link)
		s.flags |= flagGame
		s.phase = phInGame
	case schema.GameLeave:
		out = m.closeMain(slot, s, t, ev.PlayerID, "", ev, out)
		if s.left < math.MaxUint16 {
			s.left++
		}
		s.phase = phMenu
	case schema.SessionDisconnect:
		reason := ev.Reason
		if reason == "" {
			reason = "unknown"
		}
		out = m.end(slot, s, reason, EndedByDisconnect, t, ev.PlayerID, ev, out)
		m.stats.Disconnects++
		return out, o | Ended
	}
	s.last = t
	m.touch(slot, s)
	return out, o
}

// closeMainFor closes the open matchmaking or in_game span before a phase of
// kind opens: the same kind is "superseded", the other one "next_phase".
func (m *Machine) closeMainFor(slot int32, s *session, t int64, player string, kind uint8, out []Span) []Span {
	switch {
	case s.flags&kind != 0:
		return m.closeMain(slot, s, t, player, EndSuperseded, nil, out)
	case s.flags&(flagMM|flagGame) != 0:
		return m.closeMain(slot, s, t, player, EndedByNextPhase, nil, out)
	}
	return out
}

// internAttrs builds an event's free-form attributes (in scratch space, valid
// until the next call) and interns them; the id is overflowID when the table
// is full, and the caller keeps its own copy.
func (m *Machine) internAttrs(evAttrs []schema.Attr) (uint16, []attribute.KeyValue) {
	attrs, key := m.eventAttrs(evAttrs)
	return m.phaseAttrs.id(key, attrs), attrs
}

// keyedAttrs is eventAttrs with the key as a string, for the interned values
// whose map key holds it (profiles, games); nil and "" for no attributes.
func (m *Machine) keyedAttrs(evAttrs []schema.Attr) ([]attribute.KeyValue, string) {
	if len(evAttrs) == 0 {
		return nil, ""
	}
	attrs, key := m.eventAttrs(evAttrs)
	return attrs, string(key)
}

// eventAttrs builds an event's free-form attributes and their canonical key
// (attrKey) in scratch space, valid until the next call.
func (m *Machine) eventAttrs(evAttrs []schema.Attr) ([]attribute.KeyValue, []byte) {
	attrs := appendEventAttrs(m.attrScratch[:0], evAttrs)
	m.attrScratch = attrs[:0]
	m.keyScratch = attrKey(m.keyScratch[:0], attrs)
	return attrs, m.keyScratch
}

// closeMain ends the open matchmaking or in_game span at t. endedBy is "" when
// closer is the event that normally closes it (complete, cancel, leave);
// otherwise it becomes phase.ended_by and closer is nil.
func (m *Machine) closeMain(slot int32, s *session, t int64, player, endedBy string, closer *schema.Event, out []Span) []Span {
	x := m.extOf(slot, s)
	var opening []attribute.KeyValue
	a, b := m.mainStrings(s, x)
	var closing []schema.Attr
	if closer != nil {
		closing = closer.Attributes
	}
	switch {
	case s.flags&flagMM != 0 && s.mainB != overflowID:
		opening = m.phaseAttrs.get(s.mainB)
	case s.flags&flagGame != 0 && s.mainA != overflowID:
		_, opening = m.games.get(s.mainA)
	case x != nil && x.ov != nil:
		opening = x.ov.mainAttrs
	}
	if x != nil && x.ov != nil {
		x.ov.mainA, x.ov.mainB, x.ov.mainAttrs = "", "", nil
	}
	var sp Span
	if s.flags&flagMM != 0 {
		attrs := make([]attribute.KeyValue, 0, 4+len(closing)+len(opening))
		attrs = append(attrs, KeyPlayerID.String(player), KeyGameMode.String(a))
		if closer != nil && closer.Type == schema.MatchmakingComplete {
			wait := closer.WaitSeconds
			if !closer.HasWait {
				wait = float64(t-s.mainStart) / float64(time.Second)
			}
			attrs = append(attrs, KeyLobbyID.String(closer.LobbyID), KeyWaitSeconds.Float64(wait))
		}
		if closer != nil && closer.Type == schema.MatchmakingCancel {
			reason := closer.Reason
			if reason == "" {
				reason = "unknown"
			}
			attrs = append(attrs, KeyCancelReason.String(reason))
		}
		attrs = m.finishAttrs(attrs, endedBy, closing, opening)
		sp = m.phaseSpan(s, SpanPhaseMatchmaking, s.mainSeq, s.mainStart, t, attrs)
	} else {
		attrs := make([]attribute.KeyValue, 0, 7+len(closing)+len(opening))
		attrs = append(attrs, KeyPlayerID.String(player), KeyServerID.String(a), KeyGameMap.String(b),
			KeyMatchNumber.Int64(int64(s.matches))) // counted at entry: this game's number
		if closer != nil {
			if closer.Result != "" {
				attrs = append(attrs, KeyGameResult.String(closer.Result))
			}
			if closer.HasScore {
				attrs = append(attrs, KeyGameScore.Int64(closer.Score))
			}
		}
		attrs = m.finishAttrs(attrs, endedBy, closing, opening)
		sp = m.phaseSpan(s, SpanPhaseInGame, s.mainSeq, s.mainStart, t, attrs)
	}
	sp.Links = m.takeLinks(slot, s, linkMain, closer)
	s.flags &^= flagMM | flagGame
	s.mainA, s.mainB = 0, 0
	m.tidyExt(slot, s, x)
	return append(out, sp)
}

func (m *Machine) mainStrings(s *session, x *sessionExt) (a, b string) {
	if s.mainA == overflowID {
		a = x.ov.mainA
	} else if s.flags&flagMM != 0 {
		a = m.modes.str(s.mainA)
	} else {
		g, _ := m.games.get(s.mainA)
		a = g.server
	}
	switch {
	case s.flags&flagGame == 0: // matchmaking: mainB is its attributes, not a map
	case s.mainB == overflowID:
		b = x.ov.mainB
	default:
		b = m.maps.str(s.mainB)
	}
	return a, b
}

// closeLoad ends the open loading span at t; endedBy and closer as for
// closeMain.
func (m *Machine) closeLoad(slot int32, s *session, t int64, player, endedBy string, closer *schema.Event, out []Span) []Span {
	x := m.extOf(slot, s)
	var closing []schema.Attr
	if closer != nil {
		closing = closer.Attributes
	}
	var loadType string
	var opening []attribute.KeyValue
	if x.loadType == overflowID {
		loadType = x.ov.loadType
	} else {
		loadType = m.loadTypes.str(x.loadType)
	}
	if x.loadAttrs == overflowID {
		opening = x.ov.loadAttrs
	} else {
		opening = m.phaseAttrs.get(x.loadAttrs)
	}
	attrs := make([]attribute.KeyValue, 0, 5+len(closing)+len(opening))
	attrs = append(attrs, KeyPlayerID.String(player), KeyLoadingType.String(loadType))
	if closer != nil {
		if closer.HasAssetsLoaded {
			attrs = append(attrs, KeyAssetsCount.Int64(closer.AssetsLoaded))
		}
		if closer.HasTotalSizeMB {
			attrs = append(attrs, KeyTotalSizeMB.Float64(closer.TotalSizeMB))
		}
	}
	attrs = m.finishAttrs(attrs, endedBy, closing, opening)
	sp := m.phaseSpan(s, SpanPhaseLoading, x.loadSeq, x.loadStart, t, attrs)
	sp.Links = m.takeLinks(slot, s, linkLoad, closer)
	x.loadSeq, x.loadStart, x.loadType, x.loadAttrs = 0, 0, 0, 0
	if x.ov != nil {
		x.ov.loadType, x.ov.loadAttrs = "", nil
	}
	s.flags &^= flagLoad
	m.tidyExt(slot, s, x)
	return append(out, sp)
}

// finishAttrs appends phase.ended_by and the free-form attributes: the
// closing event's first, then the opening event's; a key already present
// (standard keys come first) is skipped, so standard keys win and the closing
// event wins over the opening one.
func (m *Machine) finishAttrs(attrs []attribute.KeyValue, endedBy string, closing []schema.Attr, opening []attribute.KeyValue) []attribute.KeyValue {
	if endedBy != "" {
		attrs = append(attrs, KeyPhaseEndedBy.String(endedBy))
	}
	attrs = appendEventAttrs(attrs, closing)
	for _, kv := range opening {
		if !hasKey(attrs, kv.Key) {
			attrs = append(attrs, kv)
		}
	}
	return attrs
}

func hasKey(attrs []attribute.KeyValue, k attribute.Key) bool {
	for i := range attrs {
		if attrs[i].Key == k {
			return true
		}
	}
	return false
}

// appendEventAttrs converts free-form event attributes, skipping keys dst
// already has.
func appendEventAttrs(dst []attribute.KeyValue, attrs []schema.Attr) []attribute.KeyValue {
	for i := range attrs {
		a := &attrs[i]
		k := attribute.Key(a.Key)
		if hasKey(dst, k) {
			continue
		}
		switch a.Value.Kind {
		case schema.KindString:
			dst = append(dst, k.String(a.Value.Str))
		case schema.KindInt:
			dst = append(dst, k.Int64(a.Value.Int))
		case schema.KindFloat:
			dst = append(dst, k.Float64(a.Value.Float))
		case schema.KindBool:
			dst = append(dst, k.Bool(a.Value.Bool))
		}
	}
	return dst
}

func (m *Machine) phaseSpan(s *session, name string, n uint32, start, end int64, attrs []attribute.KeyValue) Span {
	return Span{
		Name:         name,
		TraceID:      s.trace,
		SpanID:       spanIDFor(s.trace, uint64(n)),
		ParentSpanID: spanIDFor(s.trace, rootIndex),
		Start:        start,
		End:          end,
		Attrs:        attrs,
	}
}

func (m *Machine) endPhase(slot int32, s *session) string {
	if s.flags&flagLoad != 0 {
		return PhaseLoading
	}
	return phaseNames[s.phase]
}

// end ends the session in slot at time end: open phases close with
// phase.ended_by endedBy, then the root closes with session.end_reason
// reason, carrying the closing event's free-form attributes before the
// login's, and the login's and the closing event's trace links. closer is
// the event that ends the session (a disconnect), nil when something else
// does. player may be "" when no event of the player is at hand.
func (m *Machine) end(slot int32, s *session, reason, endedBy string, end int64, player string, closer *schema.Event, out []Span) []Span {
	var closing []schema.Attr
	if closer != nil {
		closing = closer.Attributes
	}
	if player == "" {
		p, _ := m.keys.get(s.key)
		player = string(p)
	}
	endPhase := m.endPhase(slot, s)
	if s.flags&(flagMM|flagGame) != 0 {
		out = m.closeMain(slot, s, end, player, endedBy, nil, out)
	}
	if s.flags&flagLoad != 0 {
		out = m.closeLoad(slot, s, end, player, endedBy, nil, out)
	}
	x := m.extOf(slot, s)
	var prof profile
	var opening []attribute.KeyValue
	if s.profile == overflowID {
		prof, opening = x.ov.prof, x.ov.rootAttrs
	} else if s.profile != 0 {
		prof, opening = m.profiles.get(s.profile)
	}
	attrs := make([]attribute.KeyValue, 0, 12+len(closing)+len(opening))
	attrs = append(attrs, KeyPlayerID.String(player))
	for _, kv := range [...]attribute.KeyValue{
		KeyAuthMethod.String(prof.auth), KeyClientVersion.String(prof.version), KeyClientPlatform.String(prof.platform),
	} {
		if kv.Value.AsString() != "" {
			attrs = append(attrs, kv)
		}
	}
	attrs = append(attrs, KeyStartTime.String(time.Unix(0, s.start).UTC().Format(time.RFC3339Nano)))
	if s.flags&flagUnobserved != 0 {
		attrs = append(attrs, KeyStartObserved.Bool(false))
	}
	attrs = append(attrs,
		KeyDurationSeconds.Float64(math.Round(float64(uint64(end-s.start))/1e8)/10),
		KeyMatchesPlayed.Int64(int64(s.matches)),
		KeyMatchesCompleted.Int64(int64(s.left)),
		KeyEndReason.String(reason),
		KeyEndPhase.String(endPhase),
		KeyEndType.String(EndType(reason)),
	)
	attrs = m.finishAttrs(attrs, "", closing, opening)
	root := spanIDFor(s.trace, rootIndex)
	links := m.takeLinks(slot, s, linkRoot, closer)
	out = append(out, Span{Name: SpanLifecycle, TraceID: s.trace, SpanID: root, Start: s.start, End: end, Attrs: attrs, Links: links})
	m.free(slot, s, x)
	m.stats.SessionsEnded++
	return out
}

func (m *Machine) free(slot int32, s *session, x *sessionExt) {
	m.unindex(slot, s)
	m.unlinkIdle(s)
	m.unlinkOff(s)
	m.keys.release(s.key)
	if x != nil {
		m.releaseExt(slot, x)
	}
	if s.flags&flagLinks != 0 {
		for role := range numLinkRoles {
			delete(m.links, linkKey(slot, role))
		}
	}
	m.slab.release(slot)
}

func linkKey(slot int32, role uint32) uint32 { return uint32(slot)<<2 | role }

// keepLink keeps the trace link l of the event opening the span of role,
// until that span ends.
func (m *Machine) keepLink(slot int32, s *session, role uint32, l schema.TraceLink) {
	if !l.IsValid() {
		return
	}
	if m.links == nil {
		m.links = make(map[uint32]schema.TraceLink)
	}
	m.links[linkKey(slot, role)] = l
	s.flags |= flagLinks
}

// takeLinks returns the links of the span of role that ends now: the one its
// opening event carried (forgotten here), then the closing event's unless it
// is the same; nil when neither had one.
func (m *Machine) takeLinks(slot int32, s *session, role uint32, closer *schema.Event) []Link {
	var opening, closing schema.TraceLink
	if s.flags&flagLinks != 0 {
		k := linkKey(slot, role)
		opening = m.links[k]
		delete(m.links, k)
		if !m.hasLinks(slot) {
			s.flags &^= flagLinks
		}
	}
	if closer != nil {
		closing = closer.Link
	}
	var out []Link
	for _, l := range [...]schema.TraceLink{opening, closing} {
		if l.IsValid() && (len(out) == 0 || out[0] != spanLink(l)) {
			out = append(out, spanLink(l))
		}
	}
	return out
}

// hasLinks reports whether Machine.links holds a link of slot.
func (m *Machine) hasLinks(slot int32) bool {
	for role := range numLinkRoles {
		if _, ok := m.links[linkKey(slot, role)]; ok {
			return true
		}
	}
	return false
}

func spanLink(l schema.TraceLink) Link {
	return Link{TraceID: l.TraceID, SpanID: l.SpanID, Flags: trace.TraceFlags(l.Flags)}
}

func (m *Machine) extOf(slot int32, s *session) *sessionExt {
	if s.flags&flagExt == 0 {
		return nil
	}
	return m.exts[slot]
}

func (m *Machine) ext(slot int32, s *session) *sessionExt {
	if s.flags&flagExt != 0 {
		return m.exts[slot]
	}
	var x *sessionExt
	if n := len(m.spare); n > 0 {
		x, m.spare = m.spare[n-1], m.spare[:n-1]
	} else {
		x = new(sessionExt)
	}
	if m.exts == nil {
		m.exts = make(map[int32]*sessionExt)
	}
	m.exts[slot] = x
	s.flags |= flagExt
	return x
}

// tidyExt gives the extension back once nothing in it is needed any more.
func (m *Machine) tidyExt(slot int32, s *session, x *sessionExt) {
	if x != nil && x.empty() && s.profile != overflowID {
		m.releaseExt(slot, x)
		s.flags &^= flagExt
	}
}

func (m *Machine) releaseExt(slot int32, x *sessionExt) {
	delete(m.exts, slot)
	*x = sessionExt{}
	if len(m.spare) < 1024 {
		m.spare = append(m.spare, x)
	}
}

// maybeCompact rewrites the key arena once released keys outweigh live ones,
// which bounds it to about twice the live keys; the copy is O(open sessions)
// and happens after at least as many bytes were released, so it is O(1)
// amortised per session.
func (m *Machine) maybeCompact() {
	if !m.keys.needsCompaction() {
		return
	}
	old := m.keys
	m.keys = arena{}
	for i := m.offHead; i >= 0; {
		s := m.slab.at(i)
		p, sid := old.get(s.key)
		s.key = m.keys.putBytes(p, sid)
		i = s.offNext
	}
}
