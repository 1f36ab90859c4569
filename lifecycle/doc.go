// Package lifecycle is the per-partition session state machine: lifecycle
// events in, finished spans out. It is pure and deterministic: no wall clock,
// no randomness, no goroutines; the same sequence of (event, offset) gives the
// same spans, IDs included, bit for bit and in the same order. Time is the
// partition's stream time, the largest event ts the Machine has applied.
//
// # Sessions and identity
//
// A session is keyed by (player_id, session_id); events without a session_id
// are keyed by player_id alone. Its trace ID is the first 16 bytes of SHA-256
// over "sessiontrace/session/v1\x00" followed by the player ID, the session ID
// and an event ID, each prefixed by its uvarint length. The event ID is "" for
// a session that a login started and that has a session ID (so its trace ID
// follows from the session ID alone), and the ID of the session's first event
// otherwise: without a session ID, and for a session started by another event
// (typically the continuation of a session that idled out in a long match,
// which must not reuse the first part's trace). A login that reuses a session
// ID after its session ended therefore gets the same trace ID again; session
// IDs are meant to be unique. The root's span ID and the nth phase span's are
// SplitMix64 mixes of the trace ID and the index n (root 0, login 1, then 2,
// 3, ... in the order the phases open); no ID is ever all-zero.
//
// # Phases
//
//   - session.login starts a session: the root session.lifecycle (player.id,
//     session.auth_method, client.version, client.platform, session.start_time
//     as RFC 3339 with nanoseconds) and a session.phase.login span that starts
//     and ends at the login. A login while a session of the same key is open
//     first ends that one with end_reason "superseded" (its open phases
//     phase.ended_by "superseded"), at max(login ts, its last event time).
//   - matchmaking.enter opens session.phase.matchmaking (game.mode);
//     matchmaking.complete closes it (lobby.id, matchmaking.wait_seconds from
//     the event, else the seconds since the enter); matchmaking.cancel closes it
//     with matchmaking.cancel_reason (the event's reason, "unknown" if absent).
//     The phase stays matchmaking after either until another phase opens.
//   - loading.start opens session.phase.loading (loading.type) beside the
//     current phase; loading.finish closes it (loading.assets_count,
//     loading.total_size_mb when present). While it is open the phase is
//     loading.
//   - game.enter counts a match played (as the guide counts them: a game is
//     played once entered) and opens session.phase.in_game (server.id,
//     game.map, session.match_number = matches played, counting this one);
//     game.leave closes it (game.result, game.score when present), counts a
//     match completed and puts the player in the menu (no span).
//   - Opening a phase while one is open: matchmaking and in_game exclude each
//     other, so opening one closes an open one of the other kind with
//     phase.ended_by "next_phase", and an open one of the same kind (entered
//     again without leaving) with "superseded"; a loading.start while loading
//     closes the old loading as "superseded". Loading never closes, nor is
//     closed by, matchmaking or in_game. A game that did not end with
//     game.leave counts as played, not completed.
//   - session.disconnect ends the session: open phases close with
//     phase.ended_by "disconnect", the root with session.duration_seconds
//     (rounded to one decimal), session.matches_played (games entered),
//     session.matches_completed (games left), session.end_reason (the
//     event's reason, "unknown" if absent), session.end_phase and
//     session.end_type (see EndType).
//
// session.end_phase is the last phase entered: login until the first
// matchmaking, loading or game; matchmaking (also after complete or cancel)
// until the next phase; loading while a loading span is open; in_game; menu
// after leaving a game. Every phase span carries player.id; a phase still open
// when something else ends it carries phase.ended_by. Phase spans are appended
// as they end, before their root, with the root's span ID as parent; when a
// session ends its open matchmaking or in_game span comes first, then its
// loading span, then the root.
//
// Free-form event attributes go onto the span the event opens or closes
// (login and disconnect: the root; an event that closes one phase by opening
// another: the phase it opens). Standard keys win over free-form ones, and the
// closing event's over the opening event's. An opening event's attributes are
// kept until its span ends: a login's are interned with its client profile
// (many sessions share a region or a build), a game.enter's with its server,
// a matchmaking.enter's or a loading.start's in a table of attribute lists;
// values past a table's cap go to an extension record that other sessions do
// not have.
//
// # Trace links
//
// An event with a trace link (schema.Event.Link, from a W3C traceparent)
// adds a span link to the span it opens or closes, by the same rule as its
// free-form attributes: a login's and a disconnect's go on the root, a
// matchmaking, loading or game event's on its phase span, and an event that
// closes one phase by opening another links the phase it opens. So a
// game.enter published in the match server's trace links the in_game span
// to it. An opening event's link is kept until its span ends; a span whose
// opening and closing events both carry one has both, opening first, or one
// when they name the same span. A span closed by something else (superseded,
// timeout, next_phase...) has only its opening event's. Links of events that
// change nothing (duplicates, out of phase) are dropped with them. Links are
// exported to a remote span context, sampled or not as the traceparent's
// flags say, without attributes.
//
// # Edge cases
//
//   - Unknown session: an event other than a login for a key with no open
//     session starts one at that event (session.start_observed=false on the
//     root; the attribute is only ever set to false), then applies it. A
//     disconnect as first event gives a zero-length session.
//   - Out of phase: matchmaking.complete or cancel with no matchmaking open,
//     loading.finish with no loading open, game.leave with no game open change
//     no phase and no span (OutOfPhase); for an existing session such an
//     event is Dropped. It still restarts the session's idle timer (the
//     player is there), so a session's timeout depends only on when its
//     events came, not on its phases: a new owner that meets the tail of a
//     session as a fragment times it out at the same record.
//   - Timestamps going backwards within a session are clamped to the session's
//     last event time (Clamped), so no span has a negative duration.
//   - Duplicates: an event_id among the IDs of the last DedupWindow events of
//     the partition (duplicates included, so the window depends on those
//     events only) is ignored entirely (Duplicate), without advancing stream
//     time.
//   - Idle: a session whose last event is more than IdleTimeout of stream time
//     old (stream time at that event, strictly exceeded) ends with end_reason
//     "timeout" at its last event time, its open phases phase.ended_by
//     "timeout". Checked on every Apply in O(1) when nothing expires: sessions
//     sit in a list ordered by stream time at their last event.
//   - Max duration: a session whose start is more than MaxDuration of stream
//     time old ends with end_reason "max_duration" at start+MaxDuration. When
//     both deadlines have passed, the earlier wins (a tie is a timeout).
//     Sessions are found in the order they started (by offset); one whose first
//     event came late can be found later than its deadline, but never after an
//     event of its own arrives, and its spans are the same either way.
//   - Reset drops all state without ending sessions: the partition's next
//     owner rebuilds them by replay. CloseAll ends what is open, for a replay
//     whose user chose to close sessions at the end of the input (EndOfInput).
//   - A Machine holds at most 16,777,215 open sessions; starting one more ends
//     the oldest with end_reason "capacity".
//
// # Memory
//
// An open session costs a 96-byte record (no pointers), a 4-byte index
// entry at load at most 1/2, and its key bytes in an arena; low-cardinality
// strings (auth method, client version, platform, game mode, server, map,
// loading type) are interned per Machine, the first three together with the
// login's free-form attributes and the server with the game.enter's (up to
// 4096 values each, beyond which a session keeps its own copy in its
// extension record). An open loading span adds a 24-byte extension. A trace
// link kept for an open span is an entry in a side table keyed by the
// session's slot (about 40 bytes), so sessions without one pay nothing.
// BenchmarkOpenSessions measures the total; `sessiontrace bench
// --open-sessions` measures it for simulated traffic too (logins with
// attributes, sessions in every phase).
//
// Spans go out through the export lanes of package consumer/export: the SDK
// lane turns them into SDK spans, the direct lane writes the same Span values
// straight to OTLP. lifecycle itself depends on OpenTelemetry's API only
// (attribute and trace), never on its SDK.
package lifecycle
