package lifecycle

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
	"unsafe"

	"go.opentelemetry.io/otel/attribute"

	S "github.com/sessiontrace/sessiontrace/schema"
)

func TestFullJourney(t *testing.T) {
	var b evb
	m := newMachine(t)
	spans, outcomes := run(t, m, []*S.Event{
		b.ev(S.SessionLogin, "p1", 0),
		b.ev(S.MatchmakingEnter, "p1", 10),
		b.ev(S.MatchmakingComplete, "p1", 25.5),
		b.ev(S.LoadingStart, "p1", 26),
		b.ev(S.LoadingFinish, "p1", 40, func(e *S.Event) {
			e.AssetsLoaded, e.HasAssetsLoaded, e.TotalSizeMB, e.HasTotalSizeMB = 120, true, 850.5, true
		}),
		b.ev(S.GameEnter, "p1", 41),
		b.ev(S.GameLeave, "p1", 641, func(e *S.Event) { e.Result, e.Score, e.HasScore = "win", 31, true }),
		b.ev(S.SessionDisconnect, "p1", 700.04, withReason("client_quit")),
	})
	for i, o := range outcomes {
		want := Outcome(0)
		switch i {
		case 0:
			want = Started
		case 7:
			want = Ended
		}
		if o != want {
			t.Errorf("outcome[%d] = %v, want %v", i, o, want)
		}
	}
	wantNames := []string{SpanPhaseLogin, SpanPhaseMatchmaking, SpanPhaseLoading, SpanPhaseInGame, SpanLifecycle}
	if got := names(spans); !slices.Equal(got, wantNames) {
		t.Fatalf("spans = %v, want %v", got, wantNames)
	}
	root := spans[4]
	for _, s := range spans[:4] {
		if s.TraceID != root.TraceID || s.ParentSpanID != root.SpanID {
			t.Errorf("%s: trace/parent %s/%s, want %s/%s", s.Name, s.TraceID, s.ParentSpanID, root.TraceID, root.SpanID)
		}
		if s.End < s.Start {
			t.Errorf("%s ends before it starts", s.Name)
		}
		if attr(s, KeyPlayerID) != "p1" {
			t.Errorf("%s: player.id = %v", s.Name, attr(s, KeyPlayerID))
		}
		if attr(s, KeyPhaseEndedBy) != nil {
			t.Errorf("%s: unexpected phase.ended_by", s.Name)
		}
	}
	if root.Start != sec(0) || root.End != sec(700.04) {
		t.Errorf("root %d..%d, want %d..%d", root.Start, root.End, sec(0), sec(700.04))
	}
	wantRoot := map[attribute.Key]any{
		KeyPlayerID: "p1", KeyAuthMethod: "password", KeyClientVersion: "1.2.3", KeyClientPlatform: "pc",
		KeyStartTime: "2026-01-02T03:04:05Z", KeyDurationSeconds: 700.0, KeyMatchesPlayed: int64(1),
		KeyMatchesCompleted: int64(1),
		KeyEndReason:        "client_quit", KeyEndPhase: PhaseMenu, KeyEndType: "graceful",
	}
	if len(root.Attrs) != len(wantRoot) {
		t.Errorf("root has %d attributes, want %d: %v", len(root.Attrs), len(wantRoot), root.Attrs)
	}
	for k, v := range wantRoot {
		if got := attr(root, k); got != v {
			t.Errorf("root %s = %#v, want %#v", k, got, v)
		}
	}
	login := spans[0]
	if login.Start != sec(0) || login.End != sec(0) || len(login.Attrs) != 1 {
		t.Errorf("login span %+v, want zero-length at login with player.id only", login)
	}
	mm := spans[1]
	if attr(mm, KeyGameMode) != "ranked" || attr(mm, KeyLobbyID) != "lobby-1" || attr(mm, KeyWaitSeconds) != 15.5 {
		t.Errorf("matchmaking attrs %v", mm.Attrs)
	}
	ld := spans[2]
	if attr(ld, KeyLoadingType) != "map" || attr(ld, KeyAssetsCount) != int64(120) || attr(ld, KeyTotalSizeMB) != 850.5 {
		t.Errorf("loading attrs %v", ld.Attrs)
	}
	g := spans[3]
	if attr(g, KeyServerID) != "srv-1" || attr(g, KeyGameMap) != "dust" || attr(g, KeyMatchNumber) != int64(1) ||
		attr(g, KeyGameResult) != "win" || attr(g, KeyGameScore) != int64(31) {
		t.Errorf("in_game attrs %v", g.Attrs)
	}
	ids := map[[8]byte]bool{}
	for _, s := range spans {
		if !s.SpanID.IsValid() || !s.TraceID.IsValid() || ids[s.SpanID] {
			t.Errorf("%s: span ID %s invalid or repeated", s.Name, s.SpanID)
		}
		ids[s.SpanID] = true
	}
	if m.Open() != 0 {
		t.Errorf("Open() = %d after disconnect", m.Open())
	}
	if _, ok := m.LowestOffset(); ok {
		t.Error("LowestOffset reports a session after all ended")
	}
}

func TestDisconnectInEveryPhase(t *testing.T) {
	var b evb
	tests := []struct {
		name      string
		before    []S.Type
		endPhase  string
		endedOpen []string // phase spans closed by the disconnect
	}{
		{name: "login", endPhase: PhaseLogin},
		{name: "matchmaking open", before: []S.Type{S.MatchmakingEnter}, endPhase: PhaseMatchmaking,
			endedOpen: []string{SpanPhaseMatchmaking}},
		{name: "matchmaking found", before: []S.Type{S.MatchmakingEnter, S.MatchmakingComplete}, endPhase: PhaseMatchmaking},
		{name: "matchmaking cancelled", before: []S.Type{S.MatchmakingEnter, S.MatchmakingCancel}, endPhase: PhaseMatchmaking},
		{name: "loading", before: []S.Type{S.MatchmakingEnter, S.MatchmakingComplete, S.LoadingStart},
			endPhase: PhaseLoading, endedOpen: []string{SpanPhaseLoading}},
		{name: "loading in game", before: []S.Type{S.GameEnter, S.LoadingStart},
			endPhase: PhaseLoading, endedOpen: []string{SpanPhaseInGame, SpanPhaseLoading}},
		{name: "in game", before: []S.Type{S.MatchmakingEnter, S.GameEnter}, endPhase: PhaseInGame,
			endedOpen: []string{SpanPhaseInGame}},
		{name: "menu", before: []S.Type{S.GameEnter, S.GameLeave}, endPhase: PhaseMenu},
		{name: "loading finished in menu", before: []S.Type{S.GameEnter, S.GameLeave, S.LoadingStart, S.LoadingFinish},
			endPhase: PhaseMenu},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newMachine(t)
			events := []*S.Event{b.ev(S.SessionLogin, "p", 0)}
			for i, typ := range tt.before {
				events = append(events, b.ev(typ, "p", float64(i+1)))
			}
			events = append(events, b.ev(S.SessionDisconnect, "p", 100, withReason("crash")))
			spans, _ := run(t, m, events)
			var last []Span
			for i := len(spans) - 1; i >= 0 && spans[i].Start <= sec(100); i-- {
				if spans[i].End != sec(100) {
					break
				}
				last = append([]Span{spans[i]}, last...)
			}
			root := last[len(last)-1]
			if !root.IsRoot() || attr(root, KeyEndPhase) != tt.endPhase || attr(root, KeyEndType) != "crash" {
				t.Fatalf("root %v, want end_phase %s", root.Attrs, tt.endPhase)
			}
			if got := names(last[:len(last)-1]); !slices.Equal(got, tt.endedOpen) {
				t.Errorf("spans ended by the disconnect = %v, want %v", got, tt.endedOpen)
			}
			for _, s := range last[:len(last)-1] {
				if attr(s, KeyPhaseEndedBy) != EndedByDisconnect {
					t.Errorf("%s phase.ended_by = %v", s.Name, attr(s, KeyPhaseEndedBy))
				}
			}
		})
	}
}

func TestEndType(t *testing.T) {
	tests := map[string]string{
		"client_quit": "graceful", "logout": "graceful",
		"timeout": "connection_failure", "connection_lost": "connection_failure",
		"kicked": "enforcement", "banned": "enforcement",
		"crash":   "crash",
		"unknown": "unknown", "": "unknown", "superseded": "unknown", "max_duration": "unknown",
		"end_of_input": "unknown", "Client_Quit": "unknown",
	}
	for reason, want := range tests {
		t.Run(reason, func(t *testing.T) {
			if got := EndType(reason); got != want {
				t.Errorf("EndType(%q) = %q, want %q", reason, got, want)
			}
		})
	}
}

func TestPhaseConflicts(t *testing.T) {
	var b evb
	tests := []struct {
		name      string
		seq       []S.Type // after login, at 1, 2, ...
		closed    string   // span closed by the last event
		endedBy   string
		wantPhase string
	}{
		{name: "matchmaking re-entered", seq: []S.Type{S.MatchmakingEnter, S.MatchmakingEnter},
			closed: SpanPhaseMatchmaking, endedBy: EndSuperseded, wantPhase: PhaseMatchmaking},
		{name: "game without complete", seq: []S.Type{S.MatchmakingEnter, S.GameEnter},
			closed: SpanPhaseMatchmaking, endedBy: EndedByNextPhase, wantPhase: PhaseInGame},
		{name: "matchmaking from a game", seq: []S.Type{S.GameEnter, S.MatchmakingEnter},
			closed: SpanPhaseInGame, endedBy: EndedByNextPhase, wantPhase: PhaseMatchmaking},
		{name: "game re-entered", seq: []S.Type{S.GameEnter, S.GameEnter},
			closed: SpanPhaseInGame, endedBy: EndSuperseded, wantPhase: PhaseInGame},
		{name: "loading re-started", seq: []S.Type{S.LoadingStart, S.LoadingStart},
			closed: SpanPhaseLoading, endedBy: EndSuperseded, wantPhase: PhaseLoading},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newMachine(t)
			events := []*S.Event{b.ev(S.SessionLogin, "p", 0)}
			for i, typ := range tt.seq {
				events = append(events, b.ev(typ, "p", float64(i+1)))
			}
			var spans []Span
			var o Outcome
			for i, e := range events {
				before := len(spans)
				spans, o = m.Apply(e, int64(i), spans)
				if i == len(events)-1 {
					spans = spans[before:]
				}
			}
			if o != 0 {
				t.Errorf("outcome %v, want none", o)
			}
			if len(spans) != 1 || spans[0].Name != tt.closed {
				t.Fatalf("last event closed %v, want [%s]", names(spans), tt.closed)
			}
			if got := attr(spans[0], KeyPhaseEndedBy); got != tt.endedBy {
				t.Errorf("phase.ended_by = %v, want %s", got, tt.endedBy)
			}
			var phase string
			m.OpenSessions(func(s OpenSession) { phase = s.Phase })
			if phase != tt.wantPhase {
				t.Errorf("phase = %s, want %s", phase, tt.wantPhase)
			}
		})
	}
}

func TestMatchmakingOutcomes(t *testing.T) {
	var b evb
	tests := []struct {
		name  string
		close *S.Event
		want  map[attribute.Key]any
	}{
		{name: "complete with wait", close: b.ev(S.MatchmakingComplete, "p", 30, func(e *S.Event) { e.WaitSeconds, e.HasWait = 12.25, true }),
			want: map[attribute.Key]any{KeyLobbyID: "lobby-1", KeyWaitSeconds: 12.25, KeyCancelReason: nil}},
		{name: "complete computes wait", close: b.ev(S.MatchmakingComplete, "p", 30.125),
			want: map[attribute.Key]any{KeyLobbyID: "lobby-1", KeyWaitSeconds: 20.125}},
		{name: "cancel with reason", close: b.ev(S.MatchmakingCancel, "p", 30, withReason("user")),
			want: map[attribute.Key]any{KeyCancelReason: "user", KeyLobbyID: nil, KeyWaitSeconds: nil}},
		{name: "cancel without reason", close: b.ev(S.MatchmakingCancel, "p", 30),
			want: map[attribute.Key]any{KeyCancelReason: "unknown"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newMachine(t)
			spans, _ := run(t, m, []*S.Event{b.ev(S.SessionLogin, "p", 0), b.ev(S.MatchmakingEnter, "p", 10), tt.close})
			mm := find(t, spans, SpanPhaseMatchmaking)
			if mm.Start != sec(10) || mm.End != tt.close.TS {
				t.Errorf("matchmaking %d..%d", mm.Start, mm.End)
			}
			for k, v := range tt.want {
				if got := attr(mm, k); got != v {
					t.Errorf("%s = %#v, want %#v", k, got, v)
				}
			}
		})
	}
}

func TestOutOfPhase(t *testing.T) {
	var b evb
	tests := []struct {
		name    string
		prefix  []S.Type // after a login; nil prefix and noLogin for unknown sessions
		noLogin bool
		event   S.Type
		want    Outcome
		dropped bool
	}{
		{name: "complete without enter", event: S.MatchmakingComplete, want: OutOfPhase, dropped: true},
		{name: "cancel after complete", prefix: []S.Type{S.MatchmakingEnter, S.MatchmakingComplete},
			event: S.MatchmakingCancel, want: OutOfPhase, dropped: true},
		{name: "finish without start", event: S.LoadingFinish, want: OutOfPhase, dropped: true},
		{name: "leave without enter", event: S.GameLeave, want: OutOfPhase, dropped: true},
		{name: "leave twice", prefix: []S.Type{S.GameEnter, S.GameLeave}, event: S.GameLeave, want: OutOfPhase, dropped: true},
		{name: "unknown session leave", noLogin: true, event: S.GameLeave,
			want: OutOfPhase | UnknownSession | Started, dropped: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newMachine(t)
			var events []*S.Event
			if !tt.noLogin {
				events = append(events, b.ev(S.SessionLogin, "p", 0))
			}
			for i, typ := range tt.prefix {
				events = append(events, b.ev(typ, "p", float64(i+1)))
			}
			spans, _ := run(t, m, events)
			var before OpenSession
			m.OpenSessions(func(s OpenSession) { before = s })
			n := len(spans)
			spans, o := m.Apply(b.ev(tt.event, "p", 50), int64(len(events)), spans)
			if o != tt.want || o.Dropped() != tt.dropped {
				t.Fatalf("outcome %v dropped=%t, want %v dropped=%t", o, o.Dropped(), tt.want, tt.dropped)
			}
			if len(spans) != n {
				t.Errorf("out-of-phase event emitted %v", names(spans[n:]))
			}
			if tt.dropped {
				if o.Reason() != "out_of_phase" {
					t.Errorf("Reason() = %q", o.Reason())
				}
				var after OpenSession
				m.OpenSessions(func(s OpenSession) { after = s })
				if after != before {
					t.Errorf("session changed: %+v -> %+v", before, after)
				}
			} else if o.Reason() != "" {
				t.Errorf("Reason() = %q for an event that was not dropped", o.Reason())
			}
			if m.Stats().OutOfPhase != 1 {
				t.Errorf("Stats().OutOfPhase = %d", m.Stats().OutOfPhase)
			}
		})
	}
}

func TestUnknownSession(t *testing.T) {
	var b evb
	tests := []struct {
		name  string
		first *S.Event
		spans []string
	}{
		{name: "game enter", first: b.ev(S.GameEnter, "p", 5)},
		{name: "disconnect", first: b.ev(S.SessionDisconnect, "p", 5, withReason("timeout")), spans: []string{SpanLifecycle}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newMachine(t)
			spans, o := m.Apply(tt.first, 7, nil)
			if !o.Has(UnknownSession|Started) || o.Dropped() {
				t.Errorf("outcome %v", o)
			}
			if got := names(spans); !slices.Equal(got, tt.spans) {
				t.Fatalf("spans %v, want %v", got, tt.spans)
			}
			if len(spans) == 0 {
				spans = m.CloseAll(EndOfInput, nil)
			}
			root := roots(spans)[0]
			if attr(root, KeyStartObserved) != false || root.Start != sec(5) {
				t.Errorf("root %v start %d", root.Attrs, root.Start)
			}
			for _, k := range []attribute.Key{KeyAuthMethod, KeyClientVersion, KeyClientPlatform} {
				if attr(root, k) != nil {
					t.Errorf("unknown session root has %s", k)
				}
			}
			if attr(root, KeyStartTime) != "2026-01-02T03:04:10Z" {
				t.Errorf("start_time %v", attr(root, KeyStartTime))
			}
			if st := m.Stats(); st.UnknownSessions != 1 || st.SessionsStarted != 1 || st.SessionsEnded != 1 {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

func TestLoginSupersedes(t *testing.T) {
	var b evb
	m := newMachine(t)
	spans, outcomes := run(t, m, []*S.Event{
		b.ev(S.SessionLogin, "p", 0),
		b.ev(S.GameEnter, "p", 10),
		b.ev(S.SessionLogin, "p", 20, func(e *S.Event) { e.Platform = "ps5" }),
	})
	if outcomes[2] != Superseded|Started {
		t.Errorf("outcome %v", outcomes[2])
	}
	want := []string{SpanPhaseLogin, SpanPhaseInGame, SpanLifecycle, SpanPhaseLogin}
	if got := names(spans); !slices.Equal(got, want) {
		t.Fatalf("spans %v, want %v", got, want)
	}
	if attr(spans[1], KeyPhaseEndedBy) != EndSuperseded || spans[1].End != sec(20) {
		t.Errorf("in_game %v end %d", spans[1].Attrs, spans[1].End)
	}
	old := spans[2]
	if attr(old, KeyEndReason) != EndSuperseded || attr(old, KeyEndType) != "unknown" || old.End != sec(20) ||
		attr(old, KeyEndPhase) != PhaseInGame {
		t.Errorf("old root %v", old.Attrs)
	}
	if spans[3].TraceID == old.TraceID {
		t.Error("new session reuses the old trace ID")
	}
	var open []OpenSession
	m.OpenSessions(func(s OpenSession) { open = append(open, s) })
	if len(open) != 1 || open[0].FirstOffset != 2 || open[0].Phase != PhaseLogin || !open[0].StartObserved {
		t.Errorf("open sessions %+v", open)
	}
	if m.Stats().Superseded != 1 {
		t.Errorf("stats %+v", m.Stats())
	}
}

func TestIdleTimeout(t *testing.T) {
	var b evb
	tests := []struct {
		name    string
		otherAt float64 // another player's event; p's last event is at 100
		expired bool
	}{
		{name: "exactly idle", otherAt: 100 + 3600, expired: false},
		{name: "just past idle", otherAt: 100 + 3600.000000001, expired: true},
		{name: "long past", otherAt: 100000, expired: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newMachine(t)
			spans, _ := run(t, m, []*S.Event{
				b.ev(S.SessionLogin, "p", 0),
				b.ev(S.GameEnter, "p", 100),
			})
			n := len(spans)
			spans, o := m.Apply(b.ev(S.SessionLogin, "q", tt.otherAt), 2, spans)
			got := spans[n:]
			if !tt.expired {
				if o.Has(Expired) || len(got) != 1 {
					t.Fatalf("outcome %v spans %v, want nothing expired", o, names(got))
				}
				return
			}
			want := []string{SpanPhaseInGame, SpanLifecycle, SpanPhaseLogin}
			if !o.Has(Expired) || !slices.Equal(names(got), want) {
				t.Fatalf("outcome %v spans %v, want Expired and %v", o, names(got), want)
			}
			if attr(got[0], KeyPhaseEndedBy) != EndTimeout || got[0].End != sec(100) {
				t.Errorf("in_game %v end %d", got[0].Attrs, got[0].End)
			}
			root := got[1]
			if attr(root, KeyEndReason) != EndTimeout || attr(root, KeyEndType) != "connection_failure" ||
				root.End != sec(100) || attr(root, KeyDurationSeconds) != 100.0 {
				t.Errorf("root %v end %d", root.Attrs, root.End)
			}
			if m.Stats().Timeouts != 1 || m.Open() != 1 {
				t.Errorf("stats %+v open %d", m.Stats(), m.Open())
			}
		})
	}
}

func TestIdleTouchOrder(t *testing.T) {
	// p is touched after q, so q must idle out first and p must stay.
	var b evb
	m := newMachine(t, func(c *Config) { c.IdleTimeout = 10 * time.Second })
	spans, _ := run(t, m, []*S.Event{
		b.ev(S.SessionLogin, "p", 0),
		b.ev(S.SessionLogin, "q", 1),
		b.ev(S.MatchmakingEnter, "p", 5),
		b.ev(S.MatchmakingEnter, "r", 12), // q idle since 1: expires; p (5) does not
	})
	rs := roots(spans)
	if len(rs) != 1 || attr(rs[0], KeyPlayerID) != "q" {
		t.Fatalf("roots %v", rs)
	}
	if lo, _ := m.LowestOffset(); lo != 0 {
		t.Errorf("LowestOffset = %d, want 0 (p)", lo)
	}
}

func TestMaxDuration(t *testing.T) {
	var b evb
	cfgMod := func(c *Config) { c.MaxDuration = 100 * time.Second; c.IdleTimeout = 60 * time.Second }
	tests := []struct {
		name   string
		events []*S.Event
		reason string
		end    float64
	}{
		{
			name: "by other traffic",
			events: []*S.Event{
				b.ev(S.SessionLogin, "p", 0), b.ev(S.GameEnter, "p", 50), b.ev(S.GameLeave, "p", 90),
				b.ev(S.SessionLogin, "q", 95), b.ev(S.MatchmakingEnter, "q", 100.5),
			},
			reason: EndMaxDuration, end: 100,
		},
		{
			name: "by its own event",
			events: []*S.Event{
				b.ev(S.SessionLogin, "p", 0), b.ev(S.GameEnter, "p", 50), b.ev(S.GameLeave, "p", 101),
			},
			reason: EndMaxDuration, end: 100,
		},
		{
			name: "late start found by its own event",
			events: []*S.Event{
				b.ev(S.SessionLogin, "q", 30), b.ev(S.SessionLogin, "p", 0), // p's login is 30s late
				b.ev(S.MatchmakingEnter, "q", 50), b.ev(S.MatchmakingEnter, "p", 55),
				b.ev(S.MatchmakingEnter, "p", 100.5),
			},
			reason: EndMaxDuration, end: 100,
		},
		{
			name: "idle deadline first",
			events: []*S.Event{
				b.ev(S.SessionLogin, "p", 0), b.ev(S.GameEnter, "p", 30), b.ev(S.SessionLogin, "q", 200),
			},
			reason: EndTimeout, end: 30,
		},
		{
			name: "max deadline first though idle",
			events: []*S.Event{
				b.ev(S.SessionLogin, "p", 0), b.ev(S.GameEnter, "p", 50), b.ev(S.SessionLogin, "q", 200),
			},
			reason: EndMaxDuration, end: 100,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newMachine(t, cfgMod)
			spans, _ := run(t, m, tt.events)
			var root Span
			for _, r := range roots(spans) {
				if attr(r, KeyPlayerID) == "p" {
					root = r
				}
			}
			if attr(root, KeyEndReason) != tt.reason || root.End != sec(tt.end) {
				t.Fatalf("p root %v end %v, want %s at %v", root.Attrs, root.End, tt.reason, tt.end)
			}
			for _, s := range spans {
				if s.End < s.Start || (s.TraceID == root.TraceID && s.End > root.End) {
					t.Errorf("%s %d..%d outside root ..%d", s.Name, s.Start, s.End, root.End)
				}
				if s.TraceID == root.TraceID && !s.IsRoot() && s.End == root.End && s.Name != SpanPhaseLogin &&
					attr(s, KeyPhaseEndedBy) != tt.reason {
					t.Errorf("%s phase.ended_by %v, want %s", s.Name, attr(s, KeyPhaseEndedBy), tt.reason)
				}
			}
		})
	}
}

func TestDuplicates(t *testing.T) {
	var b evb
	tests := []struct {
		name   string
		window int
		gap    int // other events between the original and the copy
		dup    bool
	}{
		{name: "immediate", window: 4, gap: 0, dup: true},
		{name: "inside window", window: 4, gap: 3, dup: true},
		{name: "outside window", window: 4, gap: 4, dup: false},
		{name: "disabled", window: 0, gap: 0, dup: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newMachine(t, func(c *Config) { c.DedupWindow = tt.window })
			events := []*S.Event{b.ev(S.SessionLogin, "p", 0, withID("dup"))}
			for i := range tt.gap {
				events = append(events, b.ev(S.SessionLogin, "other"+string(rune('a'+i)), 1))
			}
			spans, _ := run(t, m, events)
			st := m.StreamTime()
			copyEv := b.ev(S.SessionLogin, "p", 999, withID("dup"))
			spans2, o := m.Apply(copyEv, int64(len(events)), nil)
			if got := o.Has(Duplicate); got != tt.dup {
				t.Fatalf("outcome %v, want duplicate=%t", o, tt.dup)
			}
			if tt.dup {
				if len(spans2) != 0 || !o.Dropped() || o.Reason() != "duplicate_event" || m.StreamTime() != st {
					t.Errorf("duplicate had an effect: spans %v dropped %t reason %q stream time moved %t",
						names(spans2), o.Dropped(), o.Reason(), m.StreamTime() != st)
				}
				if m.Stats().Duplicates != 1 {
					t.Errorf("Stats().Duplicates = %d", m.Stats().Duplicates)
				}
			}
			_ = spans
		})
	}
}

func TestClamped(t *testing.T) {
	var b evb
	m := newMachine(t)
	spans, outcomes := run(t, m, []*S.Event{
		b.ev(S.SessionLogin, "p", 10),
		b.ev(S.MatchmakingEnter, "p", 20),
		b.ev(S.MatchmakingComplete, "p", 15), // backwards: clamped to 20
		b.ev(S.SessionDisconnect, "p", 5, withReason("logout")),
	})
	if outcomes[2] != Clamped || outcomes[3] != Clamped|Ended {
		t.Errorf("outcomes %v", outcomes)
	}
	mm := find(t, spans, SpanPhaseMatchmaking)
	if mm.Start != sec(20) || mm.End != sec(20) || attr(mm, KeyWaitSeconds) != 0.0 {
		t.Errorf("matchmaking %d..%d %v", mm.Start, mm.End, mm.Attrs)
	}
	root := roots(spans)[0]
	if root.Start != sec(10) || root.End != sec(20) || attr(root, KeyDurationSeconds) != 10.0 {
		t.Errorf("root %d..%d %v", root.Start, root.End, root.Attrs)
	}
	if m.Stats().Clamped != 2 {
		t.Errorf("Stats().Clamped = %d", m.Stats().Clamped)
	}
}

func TestDurationRounding(t *testing.T) {
	var b evb
	tests := []struct {
		end  float64
		want float64
	}{{1834.24, 1834.2}, {1834.25, 1834.3}, {0.04, 0}, {59.96, 60}}
	for _, tt := range tests {
		m := newMachine(t)
		spans, _ := run(t, m, []*S.Event{b.ev(S.SessionLogin, "p", 0), b.ev(S.SessionDisconnect, "p", tt.end)})
		if got := attr(roots(spans)[0], KeyDurationSeconds); got != tt.want {
			t.Errorf("duration %v s -> %v, want %v", tt.end, got, tt.want)
		}
	}
}

func TestFreeFormAttributes(t *testing.T) {
	var b evb
	m := newMachine(t)
	spans, _ := run(t, m, []*S.Event{
		b.ev(S.SessionLogin, "p", 0, withAttrs(strAttr("region", "eu"), strAttr("player.id", "spoof"),
			strAttr("shared", "login"))),
		b.ev(S.GameEnter, "p", 1, withAttrs(strAttr("party", "3"), strAttr("shared", "enter"))),
		b.ev(S.GameLeave, "p", 2, withAttrs(strAttr("shared", "leave"), strAttr("mvp", "yes"))),
		b.ev(S.MatchmakingEnter, "p", 3, withAttrs(strAttr("queue", "q1"))),
		b.ev(S.GameEnter, "p", 4), // closes matchmaking as next_phase: its attrs are the enter's only
		b.ev(S.SessionDisconnect, "p", 5, withAttrs(strAttr("shared", "bye"),
			schema_int("code", 7), strAttr("session.end_reason", "spoof"))),
	})
	g := spans[1]
	for k, v := range map[attribute.Key]any{"party": "3", "shared": "leave", "mvp": "yes"} {
		if attr(g, k) != v {
			t.Errorf("in_game %s = %v, want %v", k, attr(g, k), v)
		}
	}
	mm := find(t, spans, SpanPhaseMatchmaking)
	if attr(mm, "queue") != "q1" || attr(mm, KeyPhaseEndedBy) != EndedByNextPhase {
		t.Errorf("matchmaking %v", mm.Attrs)
	}
	root := roots(spans)[0]
	for k, v := range map[attribute.Key]any{
		"region": "eu", KeyPlayerID: "p", "shared": "bye", "code": int64(7), KeyEndReason: "unknown",
	} {
		if attr(root, k) != v {
			t.Errorf("root %s = %v, want %v", k, attr(root, k), v)
		}
	}
	seen := map[attribute.Key]bool{}
	for _, kv := range root.Attrs {
		if seen[kv.Key] {
			t.Errorf("root repeats %s", kv.Key)
		}
		seen[kv.Key] = true
	}
}

func schema_int(k string, v int64) S.Attr {
	return S.Attr{Key: k, Value: S.Value{Kind: S.KindInt, Int: v}}
}

func TestIdentity(t *testing.T) {
	var b evb
	tests := []struct {
		name    string
		a, b    *S.Event
		sameIDs bool
	}{
		{name: "session id: same trace whatever the login event",
			a: b.ev(S.SessionLogin, "p", 0, withSession("s1")), b: b.ev(S.SessionLogin, "p", 9, withSession("s1")), sameIDs: true},
		{name: "different session ids",
			a: b.ev(S.SessionLogin, "p", 0, withSession("s1")), b: b.ev(S.SessionLogin, "p", 0, withSession("s2"))},
		{name: "no session id: first event id decides",
			a: b.ev(S.SessionLogin, "p", 0), b: b.ev(S.SessionLogin, "p", 0)},
		{name: "no session id: same first event",
			a: b.ev(S.SessionLogin, "p", 0, withID("x")), b: b.ev(S.SessionLogin, "p", 5, withID("x")), sameIDs: true},
		{name: "continuation is not the login's trace",
			a: b.ev(S.SessionLogin, "p", 0, withSession("s1")), b: b.ev(S.GameEnter, "p", 0, withSession("s1"))},
		{name: "length prefix separates fields",
			a: b.ev(S.SessionLogin, "ab", 0, withSession("c")), b: b.ev(S.SessionLogin, "a", 0, withSession("bc"))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ma, mb := newMachine(t), newMachine(t)
			sa, _ := ma.Apply(tt.a, 0, nil)
			sb, _ := mb.Apply(tt.b, 0, nil)
			sa, sb = ma.CloseAll(EndOfInput, sa), mb.CloseAll(EndOfInput, sb)
			ra, rb := roots(sa)[0], roots(sb)[0]
			if (ra.TraceID == rb.TraceID) != tt.sameIDs || (ra.SpanID == rb.SpanID) != tt.sameIDs {
				t.Errorf("trace %s vs %s, span %s vs %s; want same=%t", ra.TraceID, rb.TraceID, ra.SpanID, rb.SpanID, tt.sameIDs)
			}
		})
	}
}

func TestTraceIDStable(t *testing.T) {
	// The derivation is a published contract (a backend deduplicates replays
	// by these IDs): pin it.
	tests := []struct{ player, session, event string }{
		{"player-0001234567", "9b2f6c1e-0d4c-4d53-9a57-3f8e2a1c7b10", ""},
		{"player-0001234567", "", "evt-1"},
	}
	for _, tt := range tests {
		tid := traceIDFor(tt.player, tt.session, tt.event)
		got := [3]string{tid.String(), spanIDFor(tid, 0).String(), spanIDFor(tid, 2).String()}
		want := goldenIDs[tt.player+"/"+tt.session+"/"+tt.event]
		if got != want {
			t.Errorf("IDs for %q/%q/%q = %v, want %v", tt.player, tt.session, tt.event, got, want)
		}
	}
}

func TestSpanIDsDistinct(t *testing.T) {
	tid := traceIDFor("p", "s", "")
	seen := map[[8]byte]uint64{}
	for n := range uint64(100000) {
		id := spanIDFor(tid, n)
		if !id.IsValid() {
			t.Fatalf("span %d has a zero ID", n)
		}
		if prev, dup := seen[id]; dup {
			t.Fatalf("spans %d and %d share ID %s", prev, n, id)
		}
		seen[id] = n
	}
}

func TestLowestOffsetAndOpenSessions(t *testing.T) {
	var b evb
	m := newMachine(t)
	events := []*S.Event{
		b.ev(S.SessionLogin, "a", 0),
		b.ev(S.SessionLogin, "b", 1, withSession("sb")),
		b.ev(S.GameEnter, "c", 2),
		b.ev(S.SessionDisconnect, "a", 3),
		b.ev(S.MatchmakingEnter, "b", 4, withSession("sb")),
	}
	wantLowest := []int64{0, 0, 0, 1, 1}
	for i, e := range events {
		m.Apply(e, int64(10+i), nil)
		lo, ok := m.LowestOffset()
		if !ok || lo != 10+wantLowest[i] {
			t.Errorf("after event %d LowestOffset = %d,%t, want %d", i, lo, ok, 10+wantLowest[i])
		}
	}
	var got []OpenSession
	m.OpenSessions(func(s OpenSession) { got = append(got, s) })
	want := []OpenSession{
		{PlayerID: "b", SessionID: "sb", TraceID: traceIDFor("b", "sb", ""), Start: sec(1), Last: sec(4),
			Phase: PhaseMatchmaking, FirstOffset: 11, StartObserved: true},
		{PlayerID: "c", TraceID: traceIDFor("c", "", events[2].EventID), Start: sec(2), Last: sec(2),
			Phase: PhaseInGame, FirstOffset: 12, StartObserved: false, MatchesPlayed: 1},
	}
	if !slices.Equal(got, want) {
		t.Errorf("OpenSessions:\n got %+v\nwant %+v", got, want)
	}
	if m.Open() != 2 {
		t.Errorf("Open() = %d", m.Open())
	}
}

func TestCloseAllAndReset(t *testing.T) {
	var b evb
	events := []*S.Event{
		b.ev(S.SessionLogin, "a", 0), b.ev(S.GameEnter, "a", 5), b.ev(S.LoadingStart, "a", 6),
		b.ev(S.SessionLogin, "b", 1),
	}
	t.Run("close all", func(t *testing.T) {
		m := newMachine(t)
		run(t, m, events)
		spans := m.CloseAll(EndOfInput, nil)
		want := []string{SpanPhaseInGame, SpanPhaseLoading, SpanLifecycle, SpanLifecycle}
		if !slices.Equal(names(spans), want) {
			t.Fatalf("CloseAll spans %v, want %v", names(spans), want)
		}
		if attr(spans[0], KeyPhaseEndedBy) != EndOfInput || attr(spans[2], KeyEndReason) != EndOfInput ||
			attr(spans[2], KeyEndPhase) != PhaseLoading || spans[2].End != sec(6) || attr(spans[3], KeyPlayerID) != "b" {
			t.Errorf("CloseAll spans %+v", spans)
		}
		if m.Open() != 0 || m.Stats().Closed != 2 {
			t.Errorf("open %d stats %+v", m.Open(), m.Stats())
		}
	})
	t.Run("reset", func(t *testing.T) {
		m := newMachine(t)
		run(t, m, events)
		before := m.Stats()
		m.Reset()
		if m.Open() != 0 || m.StreamTime() != minTime {
			t.Errorf("after Reset open %d stream time %d", m.Open(), m.StreamTime())
		}
		if m.Stats() != before || before.SessionsEnded != 0 {
			t.Errorf("Reset changed stats or ended sessions: %+v -> %+v", before, m.Stats())
		}
		// Replaying the same input rebuilds the same state, duplicates included.
		run(t, m, events)
		spans := m.CloseAll(EndOfInput, nil)
		m2 := newMachine(t)
		run(t, m2, events)
		if want := m2.CloseAll(EndOfInput, nil); !spansEqual(spans, want) {
			t.Error("replay after Reset differs from a fresh machine")
		}
	})
}

const minTime = -1 << 63

func spansEqual(a, b []Span) bool {
	return slices.EqualFunc(a, b, func(x, y Span) bool {
		return x.Name == y.Name && x.TraceID == y.TraceID && x.SpanID == y.SpanID && x.ParentSpanID == y.ParentSpanID &&
			x.Start == y.Start && x.End == y.End && slices.Equal(x.Attrs, y.Attrs) && slices.Equal(x.Links, y.Links)
	})
}

func TestCapacity(t *testing.T) {
	var b evb
	m := newMachine(t)
	m.capacity = 2
	spans, outcomes := run(t, m, []*S.Event{
		b.ev(S.SessionLogin, "a", 0), b.ev(S.SessionLogin, "b", 1), b.ev(S.SessionLogin, "c", 2),
	})
	rs := roots(spans)
	if len(rs) != 1 || attr(rs[0], KeyPlayerID) != "a" || attr(rs[0], KeyEndReason) != EndCapacity {
		t.Fatalf("roots %v", rs)
	}
	if m.Open() != 2 || m.Stats().Evicted != 1 || outcomes[2] != Started {
		t.Errorf("open %d stats %+v outcome %v", m.Open(), m.Stats(), outcomes[2])
	}
}

func TestOutcomeString(t *testing.T) {
	tests := map[Outcome]string{
		0:                        "none",
		Duplicate:                "duplicate",
		UnknownSession | Started: "unknown_session|started",
		OutOfPhase | Expired:     "out_of_phase|expired",
	}
	for o, want := range tests {
		if got := o.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", uint16(o), got, want)
		}
	}
}

func TestStats(t *testing.T) {
	var b evb
	m := newMachine(t, func(c *Config) { c.IdleTimeout = 100 * time.Second })
	run(t, m, []*S.Event{
		b.ev(S.SessionLogin, "a", 0, withID("x")),
		b.ev(S.SessionLogin, "a", 1, withID("x")), // duplicate
		b.ev(S.GameLeave, "a", 2),                 // out of phase
		b.ev(S.GameEnter, "b", 3),                 // unknown
		b.ev(S.MatchmakingEnter, "b", 1),          // clamped
		b.ev(S.SessionLogin, "b", 4),              // supersedes b
		b.ev(S.SessionDisconnect, "b", 5),
		b.ev(S.SessionLogin, "c", 500), // a times out
	})
	want := Stats{
		Events: 7, Duplicates: 1, UnknownSessions: 1, Clamped: 1, Superseded: 1, OutOfPhase: 1, Timeouts: 1,
		Disconnects: 1, SessionsStarted: 4, SessionsEnded: 3,
		// login a; in_game b; b: matchmaking, root, login; b root; a root, login c
		Spans: 1 + 1 + 3 + 1 + 2,
	}
	if got := m.Stats(); got != want {
		t.Errorf("Stats:\n got %+v\nwant %+v", got, want)
	}
}

// goldenIDs were checked against an independent implementation of the
// documented derivation (Python hashlib and the SplitMix64 formula).
var goldenIDs = map[string][3]string{
	"player-0001234567/9b2f6c1e-0d4c-4d53-9a57-3f8e2a1c7b10/": {
		"adf93ce4ff67a3f918608aa351fe4c94", "15bebf605df3b045", "0ab398bfbc1fe0fe"},
	"player-0001234567//evt-1": {"81f3282ad88d1de2e6867cdb1006d089", "eb39abf5e58f50af", "caf673b9a06ba64e"},
}

func TestSessionRecordSize(t *testing.T) {
	// The package doc and the memory budget (128 bytes per open session,
	// index and key bytes included) rely on this.
	if got := unsafe.Sizeof(session{}); got != 96 {
		t.Errorf("session record is %d bytes, want 96", got)
	}
	// An open loading span costs one extension; keep it in the 24-byte size
	// class.
	if got := unsafe.Sizeof(sessionExt{}); got != 24 {
		t.Errorf("session extension is %d bytes, want 24", got)
	}
}

func TestInternOverflow(t *testing.T) {
	// More distinct values than an intern table holds: the ones past the cap
	// live in the session's extension and must come out unchanged.
	var b evb
	m := newMachine(t)
	const n = internCap + 300
	var spans []Span
	for i := range n {
		p := fmt.Sprintf("p%d", i)
		v := fmt.Sprintf("v%d", i)
		for _, e := range []*S.Event{
			b.ev(S.SessionLogin, p, 0, func(e *S.Event) {
				e.Platform, e.ClientVersion = v, v
				e.Attributes = []S.Attr{{Key: "shard", Value: S.Value{Kind: S.KindString, Str: v}}}
			}),
			b.ev(S.MatchmakingEnter, p, 1, func(e *S.Event) {
				e.GameMode = v
				e.Attributes = []S.Attr{{Key: "queue", Value: S.Value{Kind: S.KindString, Str: v}}}
			}),
			b.ev(S.LoadingStart, p, 1, func(e *S.Event) {
				e.LoadingType = v
				e.Attributes = []S.Attr{{Key: "pack", Value: S.Value{Kind: S.KindString, Str: v}}}
			}),
			b.ev(S.GameEnter, p, 2, func(e *S.Event) {
				e.ServerID, e.Map = v, v
				e.Attributes = []S.Attr{{Key: "seat", Value: S.Value{Kind: S.KindString, Str: v}}}
			}),
		} {
			spans, _ = m.Apply(e, int64(i), spans)
		}
	}
	if len(m.exts) == 0 {
		t.Fatal("no session overflowed into an extension")
	}
	spans = m.CloseAll(EndOfInput, spans)
	checked := 0
	for _, s := range spans {
		v := "v" + strings.TrimPrefix(attr(s, KeyPlayerID).(string), "p")
		var keys []attribute.Key
		switch s.Name {
		case SpanLifecycle:
			keys = []attribute.Key{KeyClientPlatform, KeyClientVersion, "shard"}
		case SpanPhaseMatchmaking:
			keys = []attribute.Key{KeyGameMode, "queue"}
		case SpanPhaseLoading:
			keys = []attribute.Key{KeyLoadingType, "pack"}
		case SpanPhaseInGame:
			keys = []attribute.Key{KeyServerID, KeyGameMap, "seat"}
		}
		for _, k := range keys {
			checked++
			if got := attr(s, k); got != v {
				t.Fatalf("%s of %s: %s = %v, want %s", s.Name, attr(s, KeyPlayerID), k, got, v)
			}
		}
	}
	if checked != 10*n {
		t.Errorf("checked %d values, want %d", checked, 10*n)
	}
	if len(m.exts) != 0 {
		t.Errorf("%d extensions left after CloseAll", len(m.exts))
	}
}

// TestRootAttributesInterned checks that logins sharing a profile and
// attributes share one interned entry, and that each root still gets its
// own login's attributes, whatever their order of arrival.
func TestRootAttributesInterned(t *testing.T) {
	var b evb
	m := newMachine(t)
	region := func(v string, build int64) func(*S.Event) {
		return func(e *S.Event) {
			e.Platform = "pc"
			e.Attributes = []S.Attr{{Key: "region", Value: S.Value{Kind: S.KindString, Str: v}}, {Key: "build", Value: S.Value{Kind: S.KindInt, Int: build}}}
		}
	}
	logins := []struct {
		player, region string
		build          int64
	}{{"a", "eu", 1}, {"b", "us", 1}, {"c", "eu", 1}, {"d", "eu", 2}, {"e", "", 0}}
	var spans []Span
	for i, l := range logins {
		ev := b.ev(S.SessionLogin, l.player, 0, func(e *S.Event) { e.Platform = "pc" })
		if l.region != "" {
			ev = b.ev(S.SessionLogin, l.player, 0, region(l.region, l.build))
		}
		spans, _ = m.Apply(ev, int64(i), spans)
	}
	// pc without attributes, and three attribute sets: (eu,1) twice.
	if got := len(m.profiles.vals) - 1; got != 4 {
		t.Errorf("%d profiles interned, want 4", got)
	}
	if len(m.exts) != 0 {
		t.Errorf("%d extensions for sessions whose attributes were interned", len(m.exts))
	}
	spans = m.CloseAll(EndOfInput, spans[:0])
	for _, s := range spans {
		if !s.IsRoot() {
			continue
		}
		p := attr(s, KeyPlayerID).(string)
		for _, l := range logins {
			if l.player != p {
				continue
			}
			if l.region == "" {
				if attr(s, "region") != nil {
					t.Errorf("%s: region %v, want none", p, attr(s, "region"))
				}
				continue
			}
			if attr(s, "region") != l.region || attr(s, "build") != l.build {
				t.Errorf("%s: region %v build %v, want %s %d", p, attr(s, "region"), attr(s, "build"), l.region, l.build)
			}
		}
	}
}

// TestGameWithoutServerOrAttributes checks the empty in_game entry (no
// server, no attributes: id 0, never interned) before and after others were.
func TestGameWithoutServerOrAttributes(t *testing.T) {
	var b evb
	m := newMachine(t)
	var spans []Span
	for i, e := range []*S.Event{
		b.ev(S.SessionLogin, "a", 0),
		b.ev(S.GameEnter, "a", 1, func(e *S.Event) { e.ServerID, e.Map = "", "dust" }),
		b.ev(S.GameLeave, "a", 2),
		b.ev(S.GameEnter, "a", 3, func(e *S.Event) {
			e.ServerID = "gs-1"
			e.Attributes = []S.Attr{{Key: "region", Value: S.Value{Kind: S.KindString, Str: "eu"}}}
		}),
		b.ev(S.GameLeave, "a", 4),
		b.ev(S.GameEnter, "a", 5, func(e *S.Event) { e.ServerID, e.Map = "", "" }),
		b.ev(S.GameLeave, "a", 6),
	} {
		spans, _ = m.Apply(e, int64(i), spans)
	}
	var games []Span
	for _, s := range spans {
		if s.Name == SpanPhaseInGame {
			games = append(games, s)
		}
	}
	if len(games) != 3 {
		t.Fatalf("%d in_game spans, want 3", len(games))
	}
	for i, want := range []struct{ server, region any }{{"", nil}, {"gs-1", "eu"}, {"", nil}} {
		if got := attr(games[i], KeyServerID); got != want.server {
			t.Errorf("game %d: server.id %v, want %v", i, got, want.server)
		}
		if got := attr(games[i], "region"); got != want.region {
			t.Errorf("game %d: region %v, want %v", i, got, want.region)
		}
	}
}

// TestMatchCounts pins the guide's counting: a match is played once entered
// (session.matches_played, and session.match_number is that count at entry)
// and completed once left (session.matches_completed).
func TestMatchCounts(t *testing.T) {
	type ev struct {
		typ S.Type
		at  float64
	}
	tests := []struct {
		name              string
		events            []ev
		played, completed int64
		matchNumbers      []int64 // of the in_game spans, in the order they end
	}{
		{
			name:   "crash during the first match",
			events: []ev{{S.SessionLogin, 0}, {S.GameEnter, 10}, {S.SessionDisconnect, 20}},
			played: 1, completed: 0, matchNumbers: []int64{1},
		},
		{
			name:   "one match left, crash in the second",
			events: []ev{{S.SessionLogin, 0}, {S.GameEnter, 10}, {S.GameLeave, 20}, {S.GameEnter, 30}, {S.SessionDisconnect, 40}},
			played: 2, completed: 1, matchNumbers: []int64{1, 2},
		},
		{
			name:   "a game entered again without leaving",
			events: []ev{{S.SessionLogin, 0}, {S.GameEnter, 10}, {S.GameEnter, 20}, {S.GameLeave, 30}, {S.SessionDisconnect, 40}},
			played: 2, completed: 1, matchNumbers: []int64{1, 2},
		},
		{
			name:   "no game",
			events: []ev{{S.SessionLogin, 0}, {S.MatchmakingEnter, 10}, {S.SessionDisconnect, 20}},
			played: 0, completed: 0,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b evb
			events := make([]*S.Event, len(tt.events))
			for i, e := range tt.events {
				events[i] = b.ev(e.typ, "p", e.at, withReason("crash"))
			}
			spans, _ := run(t, newMachine(t), events)
			root := find(t, spans, SpanLifecycle)
			if got := attr(root, KeyMatchesPlayed); got != tt.played {
				t.Errorf("session.matches_played = %v, want %d", got, tt.played)
			}
			if got := attr(root, KeyMatchesCompleted); got != tt.completed {
				t.Errorf("session.matches_completed = %v, want %d", got, tt.completed)
			}
			var numbers []int64
			for _, s := range spans {
				if s.Name == SpanPhaseInGame {
					numbers = append(numbers, attr(s, KeyMatchNumber).(int64))
				}
			}
			if !slices.Equal(numbers, tt.matchNumbers) {
				t.Errorf("session.match_number of the in_game spans = %v, want %v", numbers, tt.matchNumbers)
			}
		})
	}
}
