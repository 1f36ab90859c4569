package simulate

import (
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"go.yaml.in/yaml/v3"
)

func TestDefaultConfigValid(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Config)
		want   []string // substrings of the error; nil for a valid config
	}{
		{"unbounded run is allowed", func(c *Config) { c.Sessions, c.Duration = 0, 0 }, nil},
		{"zero weight is allowed", func(c *Config) { c.Platforms["pc"] = 0 }, nil},
		{"no players", func(c *Config) { c.Players = 0 }, []string{"simulate: players: must be between 1"}},
		{"negative sessions", func(c *Config) { c.Sessions = -1 }, []string{"sessions: must not be negative"}},
		{"negative duration", func(c *Config) { c.Duration = -time.Second }, []string{"duration: must be between 0 and"}},
		{"ten years and a day", func(c *Config) { c.Duration = 10*365*24*time.Hour + 24*time.Hour }, []string{"duration: must be between 0 and"}},
		{"negative rate", func(c *Config) { c.Rate = -1 }, []string{"rate: must be a finite number"}},
		{"infinite rate", func(c *Config) { c.Rate = math.Inf(1) }, []string{"rate:"}},
		{"no start time", func(c *Config) { c.StartTime = time.Time{} }, []string{"start_time: must be set"}},
		{"empty mix", func(c *Config) { c.Platforms = nil }, []string{"platforms: needs at least one value"}},
		{"all weights zero", func(c *Config) { c.GameModes = map[string]float64{"casual": 0} }, []string{"game_modes: weights must not all be 0"}},
		{"negative weight", func(c *Config) { c.AuthMethods["oauth"] = -1 }, []string{`auth_methods: weight of "oauth"`}},
		{"NaN weight", func(c *Config) { c.DisconnectReasons["crash"] = math.NaN() }, []string{`disconnect_reasons: weight of "crash"`}},
		{"empty name", func(c *Config) { c.ClientVersions[""] = 1 }, []string{"client_versions: empty name"}},
		{"long name", func(c *Config) { c.ClientVersions[strings.Repeat("v", 300)] = 1 }, []string{"client_versions: name"}},
		{"median below min", func(c *Config) { c.Loading.Median = time.Second }, []string{"loading: want min <= median <= max"}},
		{"negative min", func(c *Config) { c.MenuTime.Min = -time.Second }, []string{"menu_time: min must not be negative"}},
		{"huge sigma", func(c *Config) { c.MatchLength.Sigma = 9 }, []string{"match_length: sigma"}},
		{"max over a week", func(c *Config) { c.Offline.Max = 8 * 24 * time.Hour }, []string{"offline: max must be at most a week"}},
		{"matches mean above max", func(c *Config) { c.Matches = CountDist{Min: 0, Mean: 5, Max: 4} }, []string{"matches: want 0 <= min <= mean <= max"}},
		{"probability above 1", func(c *Config) { c.AbandonProbability = 1.5 }, []string{"abandon_probability: must be between 0 and 1"}},
		{"every queue cancelled", func(c *Config) { c.CancelProbability = 1 }, []string{"cancel_probability: must be below 1"}},
		{"spike on unknown version", func(c *Config) { c.CrashSpike = CrashSpike{ClientVersion: "9.9.9", Probability: 0.5} },
			[]string{`crash_spike.client_version: "9.9.9" is not one of client_versions`}},
		{"spike disabled needs no version", func(c *Config) { c.CrashSpike = CrashSpike{} }, nil},
		{"every problem is reported", func(c *Config) { c.Players, c.Rate = -5, -1 }, []string{"players:", "rate:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			tt.change(&c)
			err := c.Validate()
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want an error containing %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %q, want it to contain %q", err, w)
				}
			}
			if _, nerr := New(c); nerr == nil {
				t.Error("New accepted a config Validate rejects")
			}
		})
	}
}

// TestConfigYAML loads testdata/config.yaml the way the CLI does: YAML into
// a map, then mapstructure over the defaults with duration and time hooks.
// ZeroFields makes a mix given in the file replace the default mix rather
// than merge into it.
func TestConfigYAML(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("testdata", "config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := yaml.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	got := DefaultConfig()
	dec, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{
		DecodeHook: mapstructure.ComposeDecodeHookFunc(
			mapstructure.StringToTimeDurationHookFunc(),
			mapstructure.StringToTimeHookFunc(time.RFC3339Nano),
		),
		ErrorUnused: true,
		ZeroFields:  true,
		Result:      &got,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := dec.Decode(m); err != nil {
		t.Fatal(err)
	}

	want := DefaultConfig()
	want.Players = 250
	want.Sessions = 0
	want.Duration = 2 * time.Hour
	want.Seed = 42
	want.Rate = 500
	want.StartTime = time.Date(2026, 3, 1, 18, 0, 0, 0, time.UTC)
	want.SessionIDs = true
	want.Platforms = map[string]float64{"pc": 3, "switch": 1}
	want.ClientVersions = map[string]float64{"1.5.0": 0.5, "1.5.1": 0.5}
	want.DisconnectReasons = map[string]float64{"client_quit": 0.9, "crash": 0.1}
	want.MatchLength = DurationDist{Median: 20 * time.Minute, Sigma: 0.3, Min: 5 * time.Minute, Max: time.Hour}
	want.Matches = CountDist{Min: 1, Mean: 2.5, Max: 6}
	want.AbandonProbability = 0.05
	want.CrashSpike = CrashSpike{ClientVersion: "1.5.1", Probability: 0.25, From: time.Date(2026, 3, 1, 19, 0, 0, 0, time.UTC)}
	if !got.StartTime.Equal(want.StartTime) {
		t.Errorf("start_time = %v, want %v", got.StartTime, want.StartTime)
	}
	if !got.CrashSpike.From.Equal(want.CrashSpike.From) {
		t.Errorf("crash_spike.from = %v, want %v", got.CrashSpike.From, want.CrashSpike.From)
	}
	got.StartTime, got.CrashSpike.From = want.StartTime, want.CrashSpike.From
	if !reflect.DeepEqual(got, want) {
		t.Errorf("decoded\n%+v\nwant\n%+v", got, want)
	}
	if err := got.Validate(); err != nil {
		t.Errorf("the sample config does not validate: %v", err)
	}
}
