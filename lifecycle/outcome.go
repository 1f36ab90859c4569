package lifecycle

import "strings"

// Outcome is a bit set describing what Machine.Apply did with one event.
type Outcome uint16

// The Outcome flags. Several can be set at once, for example UnknownSession|
// OutOfPhase for a game.leave that arrives for a session never seen.
const (
	// Duplicate: the event_id was seen within the DedupWindow; the event was
	// ignored entirely (it did not even advance stream time).
	Duplicate Outcome = 1 << iota
	// UnknownSession: the first event of a session was not a login; the
	// session was started at that event with session.start_observed=false.
	UnknownSession
	// Clamped: the event's ts was earlier than its session's last event; it
	// was applied at the session's last event time instead.
	Clamped
	// Superseded: a login ended a still-open session of the same key with
	// end_reason "superseded".
	Superseded
	// OutOfPhase: the event made no sense in its session's current phase (a
	// matchmaking.complete or cancel with no matchmaking open, a
	// loading.finish with no loading open, a game.leave while not in a game).
	// It changed no phase and no span; it only restarted the session's idle
	// timer.
	OutOfPhase
	// Started: the event started a session (a login, or UnknownSession).
	Started
	// Ended: the event ended its own session (a session.disconnect).
	Ended
	// Expired: the stream time this event brought ended other sessions
	// (idle timeout or max duration).
	Expired
)

// Has reports whether every flag of f is set in o.
func (o Outcome) Has(f Outcome) bool { return o&f == f }

// Dropped reports whether the event had no effect on any session's spans: a
// Duplicate, or an OutOfPhase event for a session that already existed (it
// only restarted the session's idle timer). The
// consumer sends such events to the dead-letter topic. A dropped OutOfPhase
// event still advanced stream time (it is a real event, only a misplaced one),
// so it may have Expired other sessions.
func (o Outcome) Dropped() bool {
	return o.Has(Duplicate) || (o.Has(OutOfPhase) && !o.Has(UnknownSession))
}

// Reason returns why a Dropped event was dropped, for the dead-letter header:
// "duplicate_event" or "out_of_phase". It returns "" when the event was not
// dropped.
func (o Outcome) Reason() string {
	switch {
	case o.Has(Duplicate):
		return "duplicate_event"
	case o.Dropped():
		return "out_of_phase"
	}
	return ""
}

var outcomeNames = [...]string{
	"duplicate", "unknown_session", "clamped", "superseded", "out_of_phase",
	"started", "ended", "expired",
}

// String lists the set flags, for example "unknown_session|started", or
// "none" for the zero Outcome.
func (o Outcome) String() string {
	if o == 0 {
		return "none"
	}
	var b strings.Builder
	for i, name := range outcomeNames {
		if o&(1<<i) == 0 {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('|')
		}
		b.WriteString(name)
	}
	return b.String()
}
