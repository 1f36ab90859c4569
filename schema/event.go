package schema

import "fmt"

// Type is the kind of a lifecycle event. The zero value is not a valid type.
type Type uint8

// The v1 event types. Their wire names are returned by Type.String.
const (
	TypeInvalid Type = iota
	SessionLogin
	MatchmakingEnter
	MatchmakingComplete
	MatchmakingCancel
	LoadingStart
	LoadingFinish
	GameEnter
	GameLeave
	SessionDisconnect
	numTypes
)

var typeNames = [numTypes]string{
	TypeInvalid:         "",
	SessionLogin:        "session.login",
	MatchmakingEnter:    "matchmaking.enter",
	MatchmakingComplete: "matchmaking.complete",
	MatchmakingCancel:   "matchmaking.cancel",
	LoadingStart:        "loading.start",
	LoadingFinish:       "loading.finish",
	GameEnter:           "game.enter",
	GameLeave:           "game.leave",
	SessionDisconnect:   "session.disconnect",
}

// String returns the wire name of t, for example "session.login".
func (t Type) String() string {
	if t < numTypes && t != TypeInvalid {
		return typeNames[t]
	}
	return fmt.Sprintf("Type(%d)", uint8(t))
}

// ParseType returns the Type whose wire name is s, and false when s names no
// v1 type.
func ParseType(s string) (Type, bool) {
	for t := SessionLogin; t < numTypes; t++ {
		if typeNames[t] == s {
			return t, true
		}
	}
	return TypeInvalid, false
}

// Types returns every valid v1 type in declaration order.
func Types() []Type {
	out := make([]Type, 0, numTypes-1)
	for t := SessionLogin; t < numTypes; t++ {
		out = append(out, t)
	}
	return out
}

// Event is one decoded v1 lifecycle event. The envelope fields are common to
// every type; the type-specific fields are flattened into the struct (only the
// ones of Type are meaningful) so that decoding allocates no per-type value.
type Event struct {
	Type      Type
	EventID   string
	PlayerID  string
	SessionID string // optional; when set, sessions are keyed by (PlayerID, SessionID)
	// TS is when the event happened on the game server, in Unix nanoseconds
	// (UTC). Spans are timed by it.
	TS int64

	// session.login
	AuthMethod    string
	ClientVersion string
	Platform      string
	// matchmaking.enter
	GameMode string
	// matchmaking.complete
	LobbyID     string
	WaitSeconds float64
	HasWait     bool // WaitSeconds was present on the wire
	// matchmaking.cancel and session.disconnect
	Reason string
	// loading.start
	LoadingType string
	// loading.finish
	AssetsLoaded    int64
	HasAssetsLoaded bool
	TotalSizeMB     float64
	HasTotalSizeMB  bool
	// game.enter
	ServerID string
	Map      string
	// game.leave
	Result   string
	Score    int64
	HasScore bool

	// Attributes are the free-form scalar attributes of the event, in wire
	// order, bounded by the decoder's Limits.
	Attributes []Attr

	// Link is the trace the event's W3C traceparent names (the v1
	// "traceparent" field, a mapping's traceparent source, or else the
	// record's traceparent header); the zero value when it carries none.
	// The span the event opens or closes links to it.
	Link TraceLink
	// LinkError says why a traceparent the event carried was ignored (it did
	// not parse), "" when there was none or it was valid. An invalid
	// traceparent never rejects its event.
	LinkError string
}

// Kind tells which field of a Value holds the scalar.
type Kind uint8

// The scalar kinds an attribute value can have.
const (
	KindString Kind = iota
	KindInt
	KindFloat
	KindBool
)

// Value is a scalar attribute value.
type Value struct {
	Kind  Kind
	Str   string
	Int   int64
	Float float64
	Bool  bool
}

// Attr is one free-form attribute of an event.
type Attr struct {
	Key   string
	Value Value
}
