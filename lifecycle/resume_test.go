package lifecycle

import (
	"testing"
	"time"

	"github.com/sessiontrace/sessiontrace/schema"
)

// TestOutOfPhaseRestartsTheIdleTimer: a game.leave with no game open changes
// no phase, but the player is there, so the session times out an idle
// timeout after it, not after the login. A new owner that meets the tail of
// this session as a fragment starts the fragment at the game.leave, and the
// two must time out at the same record.
func TestOutOfPhaseRestartsTheIdleTimer(t *testing.T) {
	m := newMachine(t, func(c *Config) { c.IdleTimeout = time.Minute })
	var b evb
	spans, outs := run(t, m, []*schema.Event{
		b.ev(schema.SessionLogin, "a", 0),
		b.ev(schema.GameLeave, "a", 50),         // out of phase: dropped, but a sign of life
		b.ev(schema.SessionLogin, "other", 100), // 100 s after the login, 50 s after the leave
	})
	if !outs[1].Dropped() {
		t.Fatalf("game.leave outcome %v, want dropped as out of phase", outs[1])
	}
	for _, s := range spans {
		if s.Name == SpanLifecycle && attrs(s)[KeyPlayerID].AsString() == "a" {
			t.Fatalf("session of a ended (%v) 50 s after its last event, under a 1 min idle timeout", attrs(s)[KeyEndReason].AsString())
		}
	}
}

// TestResumeRemember checks the API a new owner resumes with: Remember fills
// the dedup window as Apply would (and WindowStart says from where), and
// Resume sets stream time, so that expiry and duplicates are decided as by a
// Machine that saw every event.
func TestResumeRemember(t *testing.T) {
	cfg := func(c *Config) { c.IdleTimeout = time.Minute; c.DedupWindow = 2 }
	var b evb
	events := []*schema.Event{
		b.ev(schema.SessionLogin, "a", 0),
		b.ev(schema.SessionLogin, "b", 90), // stream time 90: a times out here
		b.ev(schema.MatchmakingEnter, "b", 95),
		b.ev(schema.MatchmakingEnter, "b", 96, withID("e0002")), // a redelivery of the login of b
	}
	whole := newMachine(t, cfg)
	_, wantOuts := run(t, whole, events)

	m := newMachine(t, cfg)
	if _, ok := m.WindowStart(); ok {
		t.Fatal("a new machine has a window start")
	}
	m.Remember(events[0].EventID, 0)
	m.Remember(events[1].EventID, 1)
	if ws, ok := m.WindowStart(); !ok || ws != 0 {
		t.Fatalf("WindowStart = %d, %t; want 0, true", ws, ok)
	}
	m.Resume(sec(90))
	for i := 2; i < len(events); i++ {
		_, out := m.Apply(events[i], int64(i), nil)
		if out.Has(Duplicate) != wantOuts[i].Has(Duplicate) {
			t.Errorf("event %d: outcome %v, want %v", i, out, wantOuts[i])
		}
	}
	if m.StreamTime() != whole.StreamTime() {
		t.Errorf("stream time %d, want %d", m.StreamTime(), whole.StreamTime())
	}
	if ws, ok := m.WindowStart(); !ok || ws != 2 {
		t.Errorf("WindowStart = %d, %t; want 2 (the window holds the last two events)", ws, ok)
	}
}
