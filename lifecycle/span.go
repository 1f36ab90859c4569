package lifecycle

import (
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// Span is one finished span as a plain value. It carries everything the
// exported span needs, so it can go through the SDK (Emitter) or be encoded
// straight to OTLP. Kind is always internal, no status is set and the trace
// is sampled. Through Emitter and the SDK's OTLP exporter a phase span gets
// span flags 0x301 (sampled, has is_remote, parent is remote) and a root
// 0x101; an encoder that bypasses the SDK must write the same.
type Span struct {
	// Name is SpanLifecycle or one of the SpanPhase* names.
	Name    string
	TraceID trace.TraceID
	SpanID  trace.SpanID
	// ParentSpanID is the root's span ID for phase spans, zero for the root.
	ParentSpanID trace.SpanID
	// Start and End are Unix nanoseconds; End >= Start.
	Start, End int64
	// Attrs are the standard attributes first, then the free-form event
	// attributes whose keys the standard ones do not use.
	Attrs []attribute.KeyValue
	// Links are the traces the span's opening and closing events named with
	// a W3C traceparent, in that order (one when both named the same span);
	// nil for nearly every span. Exported as OTLP span links to a remote
	// span context, without attributes.
	Links []Link
}

// Link is a span link to the span of another trace: the trace ID, span ID
// (the traceparent's parent-id) and W3C trace flags of an event's
// traceparent.
type Link struct {
	TraceID trace.TraceID
	SpanID  trace.SpanID
	Flags   trace.TraceFlags
}

// IsRoot reports whether s is a session's root span.
func (s *Span) IsRoot() bool { return !s.ParentSpanID.IsValid() }

// Span names. They are what users already query; never change them.
const (
	SpanLifecycle        = "session.lifecycle"
	SpanPhaseLogin       = "session.phase.login"
	SpanPhaseMatchmaking = "session.phase.matchmaking"
	SpanPhaseLoading     = "session.phase.loading"
	SpanPhaseInGame      = "session.phase.in_game"
)

// Attribute keys. They are what users already query; never change them.
const (
	// Root, at start.
	KeyPlayerID       = attribute.Key("player.id") // also on every phase span
	KeyAuthMethod     = attribute.Key("session.auth_method")
	KeyClientVersion  = attribute.Key("client.version")
	KeyClientPlatform = attribute.Key("client.platform")
	KeyStartTime      = attribute.Key("session.start_time")
	KeyStartObserved  = attribute.Key("session.start_observed")
	// Root, at end.
	KeyDurationSeconds  = attribute.Key("session.duration_seconds")
	KeyMatchesPlayed    = attribute.Key("session.matches_played")    // games entered, as the guide counts them
	KeyMatchesCompleted = attribute.Key("session.matches_completed") // games left with game.leave
	KeyEndReason        = attribute.Key("session.end_reason")
	KeyEndPhase         = attribute.Key("session.end_phase")
	KeyEndType          = attribute.Key("session.end_type")
	// Any phase still open when something else ended it.
	KeyPhaseEndedBy = attribute.Key("phase.ended_by")
	// session.phase.matchmaking
	KeyGameMode     = attribute.Key("game.mode")
	KeyLobbyID      = attribute.Key("lobby.id")
	KeyWaitSeconds  = attribute.Key("matchmaking.wait_seconds")
	KeyCancelReason = attribute.Key("matchmaking.cancel_reason")
	// session.phase.loading
	KeyLoadingType = attribute.Key("loading.type")
	KeyAssetsCount = attribute.Key("loading.assets_count")
	KeyTotalSizeMB = attribute.Key("loading.total_size_mb")
	// session.phase.in_game
	KeyServerID    = attribute.Key("server.id")
	KeyGameMap     = attribute.Key("game.map")
	KeyMatchNumber = attribute.Key("session.match_number")
	KeyGameResult  = attribute.Key("game.result")
	KeyGameScore   = attribute.Key("game.score")
)

// End reasons the Machine itself produces (a disconnect's reason is the
// event's own).
const (
	EndSuperseded  = "superseded"
	EndTimeout     = "timeout"
	EndMaxDuration = "max_duration"
	// EndOfInput is the conventional reason for CloseAll at the end of a
	// replay.
	EndOfInput = "end_of_input"
	// EndCapacity ends the oldest session when a Machine is full.
	EndCapacity = "capacity"
	// EndedByNextPhase and EndedByDisconnect are phase.ended_by values for a
	// phase closed by a different phase opening, or by a disconnect.
	EndedByNextPhase  = "next_phase"
	EndedByDisconnect = "disconnect"
)

// EndType classifies an end reason for session.end_type: client_quit and
// logout are "graceful"; timeout and connection_lost "connection_failure";
// kicked and banned "enforcement"; crash "crash"; anything else "unknown".
func EndType(reason string) string {
	switch reason {
	case "client_quit", "logout":
		return "graceful"
	case "timeout", "connection_lost":
		return "connection_failure"
	case "kicked", "banned":
		return "enforcement"
	case "crash":
		return "crash"
	}
	return "unknown"
}

// Phase names as reported in session.end_phase and OpenSession.Phase.
const (
	PhaseLogin       = "login"
	PhaseMatchmaking = "matchmaking"
	PhaseLoading     = "loading"
	PhaseInGame      = "in_game"
	PhaseMenu        = "menu"
)
