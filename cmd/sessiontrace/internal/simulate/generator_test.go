package simulate

import (
	"bytes"
	"flag"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/sessiontrace/sessiontrace/schema"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

// smallConfig is the default mix with fewer players and sessions, so a test
// sees thousands of complete sessions in milliseconds.
func smallConfig(players, sessions int) Config {
	c := DefaultConfig()
	c.Players = players
	c.Sessions = sessions
	return c
}

// generate returns every event of cfg, each with its own Attributes.
func generate(t testing.TB, cfg Config) []schema.Event {
	t.Helper()
	g, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var out []schema.Event
	var ev schema.Event
	for g.Next(&ev) {
		e := ev
		e.Attributes = slices.Clone(ev.Attributes)
		out = append(out, e)
	}
	return out
}

func jsonl(t *testing.T, cfg Config) []byte {
	t.Helper()
	g, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := WriteJSONL(&buf, g); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// session is one player's session as the events show it.
type session struct {
	player string
	events []schema.Event
}

func (s session) first() schema.Event { return s.events[0] }
func (s session) last() schema.Event  { return s.events[len(s.events)-1] }

// eachSession generates cfg's events and calls fn with every session once it
// is over: at its disconnect, at the player's next login (an abandoned
// session) or at the end of the stream. It fails the test when a timestamp
// goes back or an event comes outside a session. Memory stays bounded by the
// players online, so tests can look at tens of thousands of sessions.
func eachSession(t *testing.T, cfg Config, fn func(session)) {
	t.Helper()
	g, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	open := make(map[string]*session)
	var ev schema.Event
	var last int64
	for g.Next(&ev) {
		if ev.TS < last {
			t.Fatalf("event %s at %d is before the previous event at %d", ev.EventID, ev.TS, last)
		}
		last = ev.TS
		s := open[ev.PlayerID]
		if ev.Type == schema.SessionLogin {
			if s != nil {
				fn(*s)
			}
			s = &session{player: ev.PlayerID}
			open[ev.PlayerID] = s
		}
		if s == nil {
			t.Fatalf("event %s of %s outside a session", ev.EventID, ev.PlayerID)
		}
		e := ev
		e.Attributes = slices.Clone(ev.Attributes)
		s.events = append(s.events, e)
		if ev.Type == schema.SessionDisconnect {
			fn(*s)
			delete(open, ev.PlayerID)
		}
	}
	for _, player := range slices.Sorted(maps.Keys(open)) {
		fn(*open[player])
	}
}

func TestDeterminism(t *testing.T) {
	spike := smallConfig(50, 300)
	spike.CrashSpike = CrashSpike{ClientVersion: "1.5.0", Probability: 0.5}
	ids := smallConfig(50, 300)
	ids.SessionIDs = true
	abandon := smallConfig(50, 300)
	abandon.AbandonProbability = 0.2
	tests := []struct {
		name string
		cfg  Config
	}{
		{"default mix", smallConfig(50, 300)},
		{"crash spike", spike},
		{"session ids", ids},
		{"abandoned sessions", abandon},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := jsonl(t, tt.cfg), jsonl(t, tt.cfg)
			if len(a) == 0 || !bytes.Equal(a, b) {
				t.Fatalf("two runs with seed %d differ (%d and %d bytes)", tt.cfg.Seed, len(a), len(b))
			}
			other := tt.cfg
			other.Seed++
			if bytes.Equal(a, jsonl(t, other)) {
				t.Errorf("seeds %d and %d give the same events", tt.cfg.Seed, other.Seed)
			}
		})
	}
}

func TestGolden(t *testing.T) {
	cfg := smallConfig(3, 6)
	cfg.SessionIDs = true
	cfg.CrashSpike = CrashSpike{ClientVersion: "1.5.0", Probability: 1}
	got := jsonl(t, cfg)
	path := filepath.Join("testdata", "three-players.jsonl")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test -update writes it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from %s (go test -update rewrites it):\n%s", path, got)
	}
}

// TestEventsDecodeAndValidate: every event passes Validate, and the decoder
// reads its encoding back, keyed by player ID as Publish keys it, to an equal
// event.
func TestEventsDecodeAndValidate(t *testing.T) {
	cfg := smallConfig(200, 2000)
	cfg.SessionIDs = true
	cfg.AbandonProbability = 0.1
	cfg.CrashSpike = CrashSpike{ClientVersion: "1.4.2", Probability: 0.2}
	dec, err := schema.NewDecoder(schema.DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	events := generate(t, cfg)
	seen := make(map[string]bool, len(events))
	var back schema.Event
	for i := range events {
		ev := &events[i]
		if err := ev.Validate(schema.DefaultLimits()); err != nil {
			t.Fatalf("event %d %+v: %v", i, ev, err)
		}
		wire := schema.AppendJSON(nil, ev)
		if err := dec.Decode([]byte(ev.PlayerID), wire, &back); err != nil {
			t.Fatalf("event %d %s: decode: %v", i, wire, err)
		}
		if !back.Equal(ev) {
			t.Fatalf("event %d: decoded %+v, generated %+v", i, back, *ev)
		}
		if seen[ev.EventID] {
			t.Fatalf("event ID %s repeats", ev.EventID)
		}
		seen[ev.EventID] = true
	}
}

// next lists what may follow each event type inside one session; a
// disconnect may follow anything.
var next = map[schema.Type][]schema.Type{
	schema.SessionLogin:        {schema.LoadingStart, schema.MatchmakingEnter},
	schema.LoadingStart:        {schema.LoadingFinish},
	schema.LoadingFinish:       {schema.MatchmakingEnter, schema.GameEnter},
	schema.MatchmakingEnter:    {schema.MatchmakingComplete, schema.MatchmakingCancel},
	schema.MatchmakingCancel:   {schema.MatchmakingEnter},
	schema.MatchmakingComplete: {schema.LoadingStart},
	schema.GameEnter:           {schema.GameLeave},
	schema.GameLeave:           {schema.MatchmakingEnter},
}

// TestJourneys checks the order of the stream and the shape of every
// session: timestamps never go back (eachSession checks), each session
// follows the journey and, unless abandoned, ends with exactly one
// disconnect.
func TestJourneys(t *testing.T) {
	abandonAll := smallConfig(100, 1000)
	abandonAll.AbandonProbability = 1
	abandonSome := smallConfig(100, 3000)
	abandonSome.AbandonProbability = 0.3
	noMatches := smallConfig(20, 200)
	noMatches.Matches = CountDist{}
	cancelMost := smallConfig(20, 200)
	cancelMost.CancelProbability = 0.9
	tests := []struct {
		name            string
		cfg             Config
		wantEndedShare  float64 // share of sessions ending with a disconnect
		tolerance       float64
		wantMaxSessions int
	}{
		{"default", smallConfig(200, 3000), 1, 0, 3000},
		{"all abandoned", abandonAll, 0, 0, 1000},
		{"30% abandoned", abandonSome, 0.7, 0.03, 3000},
		{"no matches", noMatches, 1, 0, 200},
		{"most queues cancelled", cancelMost, 1, 0, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, ended := 0, 0
			eachSession(t, tt.cfg, func(s session) {
				n++
				for i, ev := range s.events[1:] {
					prev := s.events[i].Type
					if prev == schema.SessionDisconnect {
						t.Fatalf("%s: event %s after the disconnect", s.player, ev.EventID)
					}
					if ev.Type != schema.SessionDisconnect && !slices.Contains(next[prev], ev.Type) {
						t.Fatalf("%s: %s follows %s (event %s)", s.player, ev.Type, prev, ev.EventID)
					}
				}
				if s.last().Type == schema.SessionDisconnect {
					ended++
				}
			})
			if n != tt.wantMaxSessions {
				t.Errorf("%d sessions, want %d", n, tt.wantMaxSessions)
			}
			share := float64(ended) / float64(n)
			if math.Abs(share-tt.wantEndedShare) > tt.tolerance {
				t.Errorf("%.3f of sessions end with a disconnect, want %.2f ± %.2f", share, tt.wantEndedShare, tt.tolerance)
			}
		})
	}
}

// summary is what the statistical tests need of a session.
type summary struct {
	platform, version, auth string
	reason                  string // "" when abandoned
	endPhase                string
	modes                   []string // game_mode of every queue
	crashInGame             bool     // ended by a crash while in a game
}

func summarize(t *testing.T, cfg Config) []summary {
	t.Helper()
	var out []summary
	eachSession(t, cfg, func(s session) {
		first, last := s.first(), s.last()
		sum := summary{platform: first.Platform, version: first.ClientVersion, auth: first.AuthMethod}
		for _, ev := range s.events {
			if ev.Type == schema.MatchmakingEnter {
				sum.modes = append(sum.modes, ev.GameMode)
			}
		}
		if last.Type == schema.SessionDisconnect {
			sum.reason = last.Reason
			sum.endPhase = endPhase(s.events)
			sum.crashInGame = last.Reason == "crash" && sum.endPhase == "in_game"
		}
		out = append(out, sum)
	})
	return out
}

// TestMixProportions: over many sessions every configured mix is met within
// a tolerance of about five standard deviations.
func TestMixProportions(t *testing.T) {
	cfg := smallConfig(500, 20000)
	sessions := summarize(t, cfg)
	if len(sessions) != cfg.Sessions {
		t.Fatalf("%d sessions, want %d", len(sessions), cfg.Sessions)
	}
	var modes []string
	for _, s := range sessions {
		modes = append(modes, s.modes...)
	}
	tests := []struct {
		name  string
		mix   map[string]float64
		items int
		value func(i int) string
	}{
		{"platforms", cfg.Platforms, len(sessions), func(i int) string { return sessions[i].platform }},
		{"client versions", cfg.ClientVersions, len(sessions), func(i int) string { return sessions[i].version }},
		{"auth methods", cfg.AuthMethods, len(sessions), func(i int) string { return sessions[i].auth }},
		{"disconnect reasons", cfg.DisconnectReasons, len(sessions), func(i int) string { return sessions[i].reason }},
		{"game modes", cfg.GameModes, len(modes), func(i int) string { return modes[i] }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			counts := make(map[string]int)
			for i := range tt.items {
				counts[tt.value(i)]++
			}
			total := 0.0
			for _, w := range tt.mix {
				total += w
			}
			for name := range counts {
				if _, ok := tt.mix[name]; !ok {
					t.Errorf("value %q is not in the mix", name)
				}
			}
			for name, w := range tt.mix {
				want := w / total
				got := float64(counts[name]) / float64(tt.items)
				sd := math.Sqrt(want * (1 - want) / float64(tt.items))
				if math.Abs(got-want) > 5*sd+0.002 {
					t.Errorf("%s: share %.4f, want %.4f ± %.4f", name, got, want, 5*sd+0.002)
				}
			}
		})
	}

	// Graceful reasons leave from the menu, the login screen, or after a
	// cancelled queue; the others strike in every phase.
	abrupt := make(map[string]int)
	for _, s := range sessions {
		switch s.reason {
		case "client_quit", "logout":
			if s.endPhase != "menu" && s.endPhase != "login" && s.endPhase != "matchmaking" {
				t.Errorf("%s in phase %s, want menu, login or matchmaking", s.reason, s.endPhase)
			}
		default:
			abrupt[s.endPhase]++
		}
	}
	for _, ph := range []string{"login", "matchmaking", "loading", "in_game", "menu"} {
		if abrupt[ph] == 0 {
			t.Errorf("no abrupt disconnect in phase %s (by phase: %v)", ph, abrupt)
		}
	}
}

// endPhase walks a session as lifecycle's package doc defines session.end_phase: the
// last phase entered, loading while a loading screen is open, menu after a
// game.
func endPhase(events []schema.Event) string {
	phase, beforeLoading := "login", "login"
	for _, ev := range events {
		switch ev.Type {
		case schema.MatchmakingEnter:
			phase = "matchmaking"
		case schema.LoadingStart:
			beforeLoading, phase = phase, "loading"
		case schema.LoadingFinish:
			phase = beforeLoading
		case schema.GameEnter:
			phase = "in_game"
		case schema.GameLeave:
			phase = "menu"
		}
	}
	return phase
}

func TestCrashSpike(t *testing.T) {
	crashShare := func(t *testing.T, cfg Config) (map[string]float64, map[string]float64) {
		t.Helper()
		crashes, total, inGame := map[string]int{}, map[string]int{}, map[string]int{}
		for _, s := range summarize(t, cfg) {
			total[s.version]++
			if s.reason == "crash" {
				crashes[s.version]++
			}
			if s.crashInGame {
				inGame[s.version]++
			}
		}
		share, inGameShare := map[string]float64{}, map[string]float64{}
		for v, n := range total {
			share[v] = float64(crashes[v]) / float64(n)
			inGameShare[v] = float64(inGame[v]) / float64(max(crashes[v], 1))
		}
		return share, inGameShare
	}
	base := smallConfig(500, 20000)
	spike := base
	spike.CrashSpike = CrashSpike{ClientVersion: "1.5.0", Probability: 0.4}

	baseShare, _ := crashShare(t, base)
	share, inGame := crashShare(t, spike)
	// Without a spike both versions crash at the mix's 3%.
	for v, s := range baseShare {
		if math.Abs(s-0.03) > 0.01 {
			t.Errorf("no spike: version %s crashes in %.3f of sessions, want 0.03", v, s)
		}
	}
	// With it, 1.5.0 crashes in 40% plus the base 3% of the rest; 1.4.2
	// is unaffected.
	if want := 0.4 + 0.6*0.03; math.Abs(share["1.5.0"]-want) > 0.03 {
		t.Errorf("spike: 1.5.0 crashes in %.3f of sessions, want %.3f", share["1.5.0"], want)
	}
	if math.Abs(share["1.4.2"]-0.03) > 0.01 {
		t.Errorf("spike: 1.4.2 crashes in %.3f of sessions, want 0.03", share["1.4.2"])
	}
	// Spike crashes happen inside a game.
	if inGame["1.5.0"] < 0.9 {
		t.Errorf("spike: %.3f of 1.5.0 crashes are in a game, want >= 0.9", inGame["1.5.0"])
	}
}

func TestLimits(t *testing.T) {
	byDuration := smallConfig(300, 0)
	byDuration.Duration = 20 * time.Minute
	both := smallConfig(300, 50)
	both.Duration = time.Hour
	tests := []struct {
		name         string
		cfg          Config
		wantSessions int // -1: only bounded by duration
	}{
		{"sessions", smallConfig(10, 123), 123},
		{"fewer sessions than players", smallConfig(100, 7), 7},
		{"duration", byDuration, -1},
		{"sessions before duration", both, 50},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, err := New(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			deadline := tt.cfg.StartTime.Add(tt.cfg.Duration).UnixNano()
			logins, disconnects := 0, 0
			var ev schema.Event
			for g.Next(&ev) {
				switch ev.Type {
				case schema.SessionLogin:
					logins++
					if tt.cfg.Duration > 0 && ev.TS >= deadline {
						t.Fatalf("login at %s, after the %s of simulated time", time.Unix(0, ev.TS).UTC(), tt.cfg.Duration)
					}
				case schema.SessionDisconnect:
					disconnects++
				}
			}
			if tt.wantSessions >= 0 && logins != tt.wantSessions {
				t.Errorf("%d sessions, want %d", logins, tt.wantSessions)
			}
			if logins == 0 || disconnects != logins || g.SessionsStarted() != logins {
				t.Errorf("%d logins, %d disconnects, SessionsStarted %d: want equal and > 0", logins, disconnects, g.SessionsStarted())
			}
		})
	}
}

func BenchmarkGenerator(b *testing.B) {
	for _, players := range []int{1000, 100_000} {
		b.Run("players="+strconv.Itoa(players), func(b *testing.B) {
			cfg := DefaultConfig()
			cfg.Players = players
			cfg.Sessions = 0
			g, err := New(cfg)
			if err != nil {
				b.Fatal(err)
			}
			var ev schema.Event
			b.ReportAllocs()
			for b.Loop() {
				if !g.Next(&ev) {
					b.Fatal("generator ended")
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

func BenchmarkWriteJSONL(b *testing.B) {
	cfg := DefaultConfig()
	cfg.Sessions = 2000
	b.ReportAllocs()
	events := 0
	for b.Loop() {
		b.StopTimer()
		g, err := New(cfg)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		n, err := WriteJSONL(discard{}, g)
		if err != nil {
			b.Fatal(err)
		}
		events += n
	}
	b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// TestCrashSpikeFrom: a spike that begins at a known time strikes only the
// sessions that log in from then on.
func TestCrashSpikeFrom(t *testing.T) {
	cfg := smallConfig(300, 0)
	cfg.Duration = 6 * time.Hour
	from := cfg.StartTime.Add(3 * time.Hour)
	cfg.CrashSpike = CrashSpike{ClientVersion: "1.5.0", Probability: 0.5, From: from}
	type tally struct{ sessions, crashes int }
	var before, after tally
	eachSession(t, cfg, func(s session) {
		first, last := s.first(), s.last()
		if first.ClientVersion != "1.5.0" {
			return
		}
		side := &before
		if first.TS >= from.UnixNano() {
			side = &after
		}
		side.sessions++
		if last.Type == schema.SessionDisconnect && last.Reason == "crash" {
			side.crashes++
		}
	})
	if before.sessions < 300 || after.sessions < 300 {
		t.Fatalf("too few sessions of 1.5.0 to tell: %d before the spike, %d after", before.sessions, after.sessions)
	}
	// Before: the mix's 3% (sd about 1% at 300 sessions). After: 50% plus
	// 3% of the other half, 51.5%.
	if got := float64(before.crashes) / float64(before.sessions); math.Abs(got-0.03) > 0.02 {
		t.Errorf("before the spike 1.5.0 crashes in %.3f of %d sessions, want 0.03", got, before.sessions)
	}
	if got := float64(after.crashes) / float64(after.sessions); math.Abs(got-0.515) > 0.08 {
		t.Errorf("after the spike 1.5.0 crashes in %.3f of %d sessions, want 0.515", got, after.sessions)
	}
}
