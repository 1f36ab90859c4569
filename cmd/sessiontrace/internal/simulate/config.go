// Package simulate generates seeded, realistic game-server traffic: the v1
// lifecycle events of many players' sessions, in timestamp order, for the
// simulate subcommand, the demo and the tests.
//
// Every player runs one session at a time: login, optionally a loading screen,
// time in the menu, then matches (matchmaking, loading, the game) until the
// session ends with a disconnect. Graceful reasons (client_quit, logout) end
// a session from the menu after its planned matches; the others strike at a
// random point of the journey, in whatever phase the player is in. A crash
// spike makes sessions on one client version crash inside a game.
//
// The same Config (Seed included) always yields the same events, byte for
// byte.
package simulate

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// Defaults of Config. DefaultStartTime is fixed so that two runs with the same
// seed produce identical timestamps.
const (
	DefaultPlayers   = 1000
	DefaultSessions  = 10000
	DefaultSeed      = 1
	DefaultAbandon   = 0.0
	DefaultCancel    = 0.08
	DefaultLoginLoad = 0.3
)

// DefaultStartTime is the simulated clock's default start, 2026-01-01T00:00:00Z.
var DefaultStartTime = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// DurationDist is a log-normal distribution of durations: Median scaled by
// exp(Sigma·N(0,1)), clamped to [Min, Max]. Durations are rounded to
// milliseconds, as game servers stamp events.
type DurationDist struct {
	// Median is the typical duration; it must lie within [Min, Max].
	Median time.Duration `mapstructure:"median"`
	// Sigma is the spread (the standard deviation of the log); 0 always
	// gives Median. Values around 0.5–1 look like real player behaviour.
	Sigma float64 `mapstructure:"sigma"`
	// Min is the shortest duration drawn.
	Min time.Duration `mapstructure:"min"`
	// Max is the longest duration drawn.
	Max time.Duration `mapstructure:"max"`
}

// CountDist is the distribution of matches per session: Min plus a
// geometric number with the mean Mean−Min, capped at Max.
type CountDist struct {
	// Min is the fewest matches; 0 lets players log in and leave from the
	// menu.
	Min int `mapstructure:"min"`
	// Mean is the average before the cap; it must lie within [Min, Max].
	Mean float64 `mapstructure:"mean"`
	// Max is the most matches in one session.
	Max int `mapstructure:"max"`
}

// CrashSpike is the "bad build" scenario: sessions on ClientVersion crash in
// the middle of a game with Probability, on top of the crashes the
// disconnect mix already has.
type CrashSpike struct {
	// ClientVersion is the affected version; it must be one of
	// ClientVersions when Probability is above 0.
	ClientVersion string `mapstructure:"client_version"`
	// Probability is the share of that version's sessions that crash in a
	// game (0 disables the spike).
	Probability float64 `mapstructure:"probability"`
	// From is when the spike begins, in simulated time: only sessions that
	// log in at or after From can crash from it (a bad build rolled out at
	// a known hour). The zero time, the default, means from the start.
	From time.Time `mapstructure:"from"`
}

// Config says what traffic to generate. Mixes are maps from a value to its
// weight; weights need not sum to 1. Start from DefaultConfig.
//
// Decoded with mapstructure over DefaultConfig, it needs the hooks
// StringToTimeDurationHookFunc (durations such as "90s") and
// StringToTimeHookFunc(time.RFC3339Nano) (start_time from an environment
// variable or flag), and ZeroFields, so that a mix given in the
// configuration replaces the default mix instead of merging into it;
// testdata/config.yaml is decoded that way in the tests.
type Config struct {
	// Players is the simulated population (default 1000, at most ten
	// million; each costs about 300 bytes). Each player plays one session at
	// a time and is offline for Offline between sessions, so with the
	// defaults nearly all of them are online at once.
	Players int `mapstructure:"players"`
	// Sessions is how many sessions to generate in total (default 10000); 0
	// means no limit.
	Sessions int `mapstructure:"sessions"`
	// Duration is how much simulated time may see new sessions start (0, the
	// default, means no limit). Sessions already running still finish, so
	// every generated session is complete. With Sessions and Duration both
	// 0 the generator never ends.
	Duration time.Duration `mapstructure:"duration"`
	// Seed makes a run repeatable (default 1).
	Seed int64 `mapstructure:"seed"`
	// Rate is the pace in events per second when publishing live; 0 (the
	// default) publishes as fast as the broker accepts.
	Rate float64 `mapstructure:"rate"`
	// StartTime is the simulated clock's start (default DefaultStartTime).
	// Events are stamped in simulated time, not wall-clock time.
	StartTime time.Time `mapstructure:"start_time"`
	// SessionIDs sets session_id on every event (default false, so sessions
	// are told apart by login events alone).
	SessionIDs bool `mapstructure:"session_ids"`

	// Platforms is the mix of client platforms.
	Platforms map[string]float64 `mapstructure:"platforms"`
	// ClientVersions is the mix of client versions.
	ClientVersions map[string]float64 `mapstructure:"client_versions"`
	// AuthMethods is the mix of login methods.
	AuthMethods map[string]float64 `mapstructure:"auth_methods"`
	// GameModes is the mix of modes players queue for.
	GameModes map[string]float64 `mapstructure:"game_modes"`
	// DisconnectReasons is the mix of session end reasons. client_quit and
	// logout end a session from the menu once its matches are played; any
	// other reason strikes at a uniformly chosen event of the journey.
	DisconnectReasons map[string]float64 `mapstructure:"disconnect_reasons"`

	// LoginGap is the time from login (or the login loading screen) to the
	// first queue.
	LoginGap DurationDist `mapstructure:"login_gap"`
	// MatchmakingWait is the time in the queue before a match is found.
	MatchmakingWait DurationDist `mapstructure:"matchmaking_wait"`
	// Loading is the length of a loading screen.
	Loading DurationDist `mapstructure:"loading"`
	// MatchLength is the length of a game.
	MatchLength DurationDist `mapstructure:"match_length"`
	// MenuTime is the time in the menu after a game or a cancelled queue.
	MenuTime DurationDist `mapstructure:"menu_time"`
	// Offline is the time a player stays away between two sessions, and
	// spreads the first logins.
	Offline DurationDist `mapstructure:"offline"`
	// Matches is the number of matches a session plans to play.
	Matches CountDist `mapstructure:"matches"`

	// CancelProbability is the chance that a queue is cancelled rather than
	// completed (default 0.08); the player then returns to the menu and
	// queues again.
	CancelProbability float64 `mapstructure:"cancel_probability"`
	// LoginLoadingProbability is the chance of a loading screen right after
	// login (default 0.3).
	LoginLoadingProbability float64 `mapstructure:"login_loading_probability"`
	// AbandonProbability is the share of sessions that end without any
	// session.disconnect, as when a client vanishes (default 0): the
	// consumer's idle timeout has to end them.
	AbandonProbability float64 `mapstructure:"abandon_probability"`
	// CrashSpike optionally makes one client version crash in games.
	CrashSpike CrashSpike `mapstructure:"crash_spike"`
}

// DefaultConfig returns a working configuration: 1000 players, 10000
// sessions, the platform and version mixes of a live game, and phase
// durations of a typical competitive title.
func DefaultConfig() Config {
	return Config{
		Players:   DefaultPlayers,
		Sessions:  DefaultSessions,
		Seed:      DefaultSeed,
		StartTime: DefaultStartTime,
		Platforms: map[string]float64{
			"pc": 0.40, "ps5": 0.20, "xbox": 0.15, "switch": 0.10, "ios": 0.08, "android": 0.07,
		},
		ClientVersions: map[string]float64{"1.4.2": 0.7, "1.5.0": 0.3},
		AuthMethods:    map[string]float64{"password": 0.35, "oauth": 0.45, "token": 0.20},
		GameModes:      map[string]float64{"casual": 0.5, "ranked": 0.4, "tournament": 0.1},
		DisconnectReasons: map[string]float64{
			"client_quit": 0.55, "logout": 0.25, "timeout": 0.06, "connection_lost": 0.08,
			"kicked": 0.02, "banned": 0.01, "crash": 0.03,
		},
		LoginGap:                DurationDist{Median: 30 * time.Second, Sigma: 0.8, Min: 2 * time.Second, Max: 10 * time.Minute},
		MatchmakingWait:         DurationDist{Median: 45 * time.Second, Sigma: 0.7, Min: 3 * time.Second, Max: 10 * time.Minute},
		Loading:                 DurationDist{Median: 12 * time.Second, Sigma: 0.5, Min: 2 * time.Second, Max: 3 * time.Minute},
		MatchLength:             DurationDist{Median: 12 * time.Minute, Sigma: 0.4, Min: 2 * time.Minute, Max: 45 * time.Minute},
		MenuTime:                DurationDist{Median: 20 * time.Second, Sigma: 0.8, Min: 2 * time.Second, Max: 10 * time.Minute},
		Offline:                 DurationDist{Median: 30 * time.Second, Sigma: 1, Min: 1 * time.Second, Max: 30 * time.Minute},
		Matches:                 CountDist{Min: 0, Mean: 3, Max: 20},
		CancelProbability:       DefaultCancel,
		LoginLoadingProbability: DefaultLoginLoad,
		AbandonProbability:      DefaultAbandon,
	}
}

// maxFieldLen keeps generated strings within the schema's default limit.
const maxFieldLen = 256

// maxDuration keeps simulated time, which starts by 2200 at the latest, well
// inside the instants the schema can carry (until 2262).
const maxDuration = 10 * 365 * 24 * time.Hour

// maxPlayers bounds the population: a player costs about 300 bytes, so ten
// million take about 3 GB.
const maxPlayers = 10_000_000

// Validate reports every invalid setting, each naming its key, as one joined
// error.
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("simulate: %s: "+format, append([]any{key}, args...)...))
	}
	if c.Players <= 0 || c.Players > maxPlayers {
		bad("players", "must be between 1 and %d, got %d", maxPlayers, c.Players)
	}
	if c.Sessions < 0 {
		bad("sessions", "must not be negative, got %d", c.Sessions)
	}
	if c.Duration < 0 || c.Duration > maxDuration {
		bad("duration", "must be between 0 and %s, got %s", maxDuration, c.Duration)
	}
	if c.Rate < 0 || math.IsNaN(c.Rate) || math.IsInf(c.Rate, 0) {
		bad("rate", "must be a finite number >= 0 (0 = as fast as possible), got %v", c.Rate)
	}
	if c.StartTime.IsZero() {
		bad("start_time", "must be set (an RFC 3339 time)")
	} else if y := c.StartTime.Year(); y < 1970 || y > 2200 {
		bad("start_time", "must be between 1970 and 2200, got %s", c.StartTime.Format(time.RFC3339))
	}
	for _, m := range []struct {
		key string
		mix map[string]float64
	}{
		{"platforms", c.Platforms},
		{"client_versions", c.ClientVersions},
		{"auth_methods", c.AuthMethods},
		{"game_modes", c.GameModes},
		{"disconnect_reasons", c.DisconnectReasons},
	} {
		if err := validateMix(m.mix); err != nil {
			bad(m.key, "%v", err)
		}
	}
	for _, d := range []struct {
		key string
		d   DurationDist
	}{
		{"login_gap", c.LoginGap},
		{"matchmaking_wait", c.MatchmakingWait},
		{"loading", c.Loading},
		{"match_length", c.MatchLength},
		{"menu_time", c.MenuTime},
		{"offline", c.Offline},
	} {
		if err := d.d.validate(); err != nil {
			bad(d.key, "%v", err)
		}
	}
	if m := c.Matches; m.Min < 0 || m.Max < m.Min || m.Max > 10_000 || !(m.Mean >= float64(m.Min) && m.Mean <= float64(m.Max)) {
		bad("matches", "want 0 <= min <= mean <= max <= 10000, got min %d, mean %v, max %d", m.Min, m.Mean, m.Max)
	}
	for _, p := range []struct {
		key string
		p   float64
	}{
		{"cancel_probability", c.CancelProbability},
		{"login_loading_probability", c.LoginLoadingProbability},
		{"abandon_probability", c.AbandonProbability},
		{"crash_spike.probability", c.CrashSpike.Probability},
	} {
		if !(p.p >= 0 && p.p <= 1) {
			bad(p.key, "must be between 0 and 1, got %v", p.p)
		}
	}
	if c.CancelProbability == 1 {
		// Every queue would be cancelled and no session would ever reach a
		// game or its end.
		bad("cancel_probability", "must be below 1")
	}
	if c.CrashSpike.Probability > 0 {
		if _, ok := c.ClientVersions[c.CrashSpike.ClientVersion]; !ok {
			bad("crash_spike.client_version", "%q is not one of client_versions, so the spike would never happen",
				c.CrashSpike.ClientVersion)
		}
	}
	return errors.Join(errs...)
}

func validateMix(m map[string]float64) error {
	if len(m) == 0 {
		return errors.New("needs at least one value")
	}
	total := 0.0
	for name, w := range m {
		switch {
		case name == "":
			return errors.New("empty name")
		case len(name) > maxFieldLen:
			return fmt.Errorf("name %.20q… longer than %d bytes", name, maxFieldLen)
		case !(w >= 0) || math.IsInf(w, 0):
			return fmt.Errorf("weight of %q must be a finite number >= 0, got %v", name, w)
		}
		total += w
	}
	if !(total > 0) || math.IsInf(total, 0) {
		return errors.New("weights must not all be 0")
	}
	return nil
}

func (d DurationDist) validate() error {
	switch {
	case d.Min < 0:
		return fmt.Errorf("min must not be negative, got %s", d.Min)
	case !(d.Min <= d.Median && d.Median <= d.Max):
		return fmt.Errorf("want min <= median <= max, got %s <= %s <= %s", d.Min, d.Median, d.Max)
	case d.Max > 7*24*time.Hour:
		return fmt.Errorf("max must be at most a week, got %s", d.Max)
	case !(d.Sigma >= 0 && d.Sigma <= 5):
		return fmt.Errorf("sigma must be between 0 and 5, got %v", d.Sigma)
	}
	return nil
}
