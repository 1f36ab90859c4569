// Package sessionmetrics turns finished session spans into the OTel metrics
// that answer the questions teams ask of all sessions at once: how long
// sessions last by platform and client version, how many matches a session
// plays (games entered, as session.matches_played counts them), why sessions
// end, where session time goes, and how long matchmaking takes.
//
// A Recorder observes the spans a lifecycle.Machine finishes, at the moment
// they finish (the consumer calls it where it hands them to the exporter), so
// a session is counted once when its root span ends and each phase when its
// span ends. Durations are the spans' own (event time), never the wall clock.
//
// Every attribute value comes from the producer, so each one is capped: the
// first MaxClientVersions distinct client versions (and MaxValues distinct
// values of every other attribute) are kept as they are, later ones are
// folded into "other" for the life of the Recorder. A bad producer can then
// cost a bounded number of time series, not an unbounded one.
package sessionmetrics

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"

	"github.com/sessiontrace/sessiontrace/lifecycle"
)

// Metric names. Durations are in seconds.
const (
	MetricSessionDuration = "sessiontrace.session.duration"
	MetricSessionMatches  = "sessiontrace.session.matches"
	MetricSessionsEnded   = "sessiontrace.sessions.ended"
	MetricPhaseDuration   = "sessiontrace.phase.duration"
	MetricMatchmakingWait = "sessiontrace.matchmaking.wait"
)

// Attribute keys of the metrics that are not span attribute keys.
const (
	// KeyPhase is the phase of a phase duration: login, matchmaking,
	// loading or in_game.
	KeyPhase = attribute.Key("phase")
)

// Other is the value an attribute is folded into once its cap is reached;
// Unknown is the value of an attribute the span does not carry (a session
// whose login was never seen has no platform or client version).
const (
	Other   = "other"
	Unknown = "unknown"
)

// Defaults of Config.
const (
	// DefaultMaxClientVersions keeps a few months of releases and their
	// hotfixes apart.
	DefaultMaxClientVersions = 50
	// DefaultMaxValues bounds platforms, end reasons, game modes and loading
	// types, which have a handful of values each in a healthy producer.
	DefaultMaxValues = 50
)

// Histogram bucket boundaries. Sessions run from seconds to hours; phases
// from seconds (loading) to tens of minutes (a match).
var (
	sessionBuckets = []float64{10, 30, 60, 120, 300, 600, 900, 1200, 1800, 2700, 3600, 5400, 7200, 10800, 14400, 21600, 43200, 86400}
	matchBuckets   = []float64{0, 1, 2, 3, 4, 5, 7, 10, 15, 20, 30}
	phaseBuckets   = []float64{1, 2, 5, 10, 15, 30, 45, 60, 120, 300, 600, 900, 1200, 1800, 2700, 3600}
	waitBuckets    = []float64{1, 2, 5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 300, 600}
)

// Config bounds the cardinality of the metrics.
type Config struct {
	// MaxClientVersions is how many distinct client.version values are kept
	// before later ones are folded into "other". Default
	// DefaultMaxClientVersions.
	MaxClientVersions int `mapstructure:"max_client_versions"`
	// MaxValues is the same cap for every other attribute taken from events:
	// client.platform, session.end_reason, game.mode and loading.type.
	// Default DefaultMaxValues.
	MaxValues int `mapstructure:"max_values"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{MaxClientVersions: DefaultMaxClientVersions, MaxValues: DefaultMaxValues}
}

// ErrBadCap is returned by Config.Validate for a cap below 1.
var ErrBadCap = errors.New("cap must be at least 1")

// Validate reports settings that cannot work; the message starts with the
// offending key.
func (c Config) Validate() error {
	if c.MaxClientVersions < 1 {
		return fmt.Errorf("max_client_versions %d: %w", c.MaxClientVersions, ErrBadCap)
	}
	if c.MaxValues < 1 {
		return fmt.Errorf("max_values %d: %w", c.MaxValues, ErrBadCap)
	}
	return nil
}

// Recorder records the session metrics. It is safe for concurrent use by
// every partition worker of a process; the caps are process-wide.
type Recorder struct {
	duration metric.Float64Histogram
	matches  metric.Int64Histogram
	ended    metric.Int64Counter
	phase    metric.Float64Histogram
	wait     metric.Float64Histogram

	versions, platforms, reasons, modes, loadingTypes *capped

	// cache holds the options of every distinct attribute tuple seen, so
	// that recording allocates nothing once a tuple was seen. Its size is
	// bounded by the caps.
	cache sync.Map // optKey -> *measureOpts
}

// optKey identifies a cached attribute set: which instrument group it is for
// and its folded values.
type optKey struct {
	kind    uint8
	a, b, c string
}

const (
	kindDuration uint8 = iota
	kindEnded
	kindPhase
	kindWait
)

// New validates cfg and creates the instruments on mp's meter. A nil mp
// records nothing.
func New(mp metric.MeterProvider, cfg Config) (*Recorder, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if mp == nil {
		mp = noop.NewMeterProvider()
	}
	m := mp.Meter("github.com/sessiontrace/sessiontrace/consumer/sessionmetrics")
	r := &Recorder{
		versions:     newCapped(cfg.MaxClientVersions),
		platforms:    newCapped(cfg.MaxValues),
		reasons:      newCapped(cfg.MaxValues),
		modes:        newCapped(cfg.MaxValues),
		loadingTypes: newCapped(cfg.MaxValues),
	}
	var errs []error
	hist := func(name, unit, desc string, buckets []float64) metric.Float64Histogram {
		h, err := m.Float64Histogram(name, metric.WithUnit(unit), metric.WithDescription(desc), metric.WithExplicitBucketBoundaries(buckets...))
		errs = append(errs, err)
		return h
	}
	r.duration = hist(MetricSessionDuration, "s", "Duration of ended sessions, by client.platform, client.version and session.end_type.", sessionBuckets)
	r.phase = hist(MetricPhaseDuration, "s", "Duration of ended phases, by phase, and game.mode (matchmaking) or loading.type (loading).", phaseBuckets)
	r.wait = hist(MetricMatchmakingWait, "s", "Matchmaking wait of found matches (matchmaking.wait_seconds), by game.mode.", waitBuckets)
	var err error
	r.matches, err = m.Int64Histogram(MetricSessionMatches, metric.WithUnit("{match}"),
		metric.WithDescription("Matches played (games entered, session.matches_played) per ended session."), metric.WithExplicitBucketBoundaries(matchBuckets...))
	errs = append(errs, err)
	r.ended, err = m.Int64Counter(MetricSessionsEnded, metric.WithUnit("{session}"),
		metric.WithDescription("Ended sessions, by session.end_reason, session.end_type and session.end_phase."))
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("sessionmetrics: create instruments: %w", err)
	}
	return r, nil
}

// Record records the spans one record finished. Root spans count a session,
// phase spans a phase; other spans are ignored. Record never keeps spans.
func (r *Recorder) Record(ctx context.Context, spans []lifecycle.Span) {
	for i := range spans {
		s := &spans[i]
		if s.IsRoot() {
			r.session(ctx, s)
		} else {
			r.phaseEnded(ctx, s)
		}
	}
}

func (r *Recorder) session(ctx context.Context, s *lifecycle.Span) {
	if s.Name != lifecycle.SpanLifecycle {
		return
	}
	var platform, version, endType, reason, endPhase string
	var matches int64
	for _, kv := range s.Attrs {
		switch kv.Key {
		case lifecycle.KeyClientPlatform:
			platform = kv.Value.AsString()
		case lifecycle.KeyClientVersion:
			version = kv.Value.AsString()
		case lifecycle.KeyEndType:
			endType = kv.Value.AsString()
		case lifecycle.KeyEndReason:
			reason = kv.Value.AsString()
		case lifecycle.KeyEndPhase:
			endPhase = kv.Value.AsString()
		case lifecycle.KeyMatchesPlayed:
			matches = kv.Value.AsInt64()
		}
	}
	platform, version = r.platforms.fold(platform), r.versions.fold(version)
	endType, reason, endPhase = orUnknown(endType), r.reasons.fold(reason), orUnknown(endPhase)

	r.duration.Record(ctx, seconds(s), r.opts(optKey{kind: kindDuration, a: platform, b: version, c: endType}).record...)
	r.matches.Record(ctx, matches)
	r.ended.Add(ctx, 1, r.opts(optKey{kind: kindEnded, a: reason, b: endType, c: endPhase}).add...)
}

func (r *Recorder) phaseEnded(ctx context.Context, s *lifecycle.Span) {
	phase, ok := strings.CutPrefix(s.Name, "session.phase.")
	if !ok {
		return
	}
	var mode, loadingType string
	wait, hasWait := 0.0, false
	for _, kv := range s.Attrs {
		switch kv.Key {
		case lifecycle.KeyGameMode:
			mode = kv.Value.AsString()
		case lifecycle.KeyLoadingType:
			loadingType = kv.Value.AsString()
		case lifecycle.KeyWaitSeconds:
			wait, hasWait = kv.Value.AsFloat64(), kv.Value.Type() == attribute.FLOAT64
		}
	}
	k := optKey{kind: kindPhase, a: phase}
	switch s.Name {
	case lifecycle.SpanPhaseMatchmaking:
		mode = r.modes.fold(mode)
		k.b = mode
	case lifecycle.SpanPhaseLoading:
		k.c = r.loadingTypes.fold(loadingType)
	}
	r.phase.Record(ctx, seconds(s), r.opts(k).record...)
	if s.Name == lifecycle.SpanPhaseMatchmaking && hasWait {
		r.wait.Record(ctx, wait, r.opts(optKey{kind: kindWait, b: mode}).record...)
	}
}

// measureOpts are the options of one attribute set, as the variadic
// arguments of Record and Add: passing a stored slice allocates nothing,
// building one per call would.
type measureOpts struct {
	record []metric.RecordOption
	add    []metric.AddOption
}

// opts returns the cached options of k, building them the first time.
func (r *Recorder) opts(k optKey) *measureOpts {
	if o, ok := r.cache.Load(k); ok {
		return o.(*measureOpts)
	}
	var kv []attribute.KeyValue
	switch k.kind {
	case kindDuration:
		kv = []attribute.KeyValue{lifecycle.KeyClientPlatform.String(k.a), lifecycle.KeyClientVersion.String(k.b), lifecycle.KeyEndType.String(k.c)}
	case kindEnded:
		kv = []attribute.KeyValue{lifecycle.KeyEndReason.String(k.a), lifecycle.KeyEndType.String(k.b), lifecycle.KeyEndPhase.String(k.c)}
	case kindPhase:
		kv = []attribute.KeyValue{KeyPhase.String(k.a)}
		if k.a == lifecycle.PhaseMatchmaking {
			kv = append(kv, lifecycle.KeyGameMode.String(k.b))
		}
		if k.a == lifecycle.PhaseLoading {
			kv = append(kv, lifecycle.KeyLoadingType.String(k.c))
		}
	case kindWait:
		kv = []attribute.KeyValue{lifecycle.KeyGameMode.String(k.b)}
	}
	set := metric.WithAttributeSet(attribute.NewSet(kv...))
	o, _ := r.cache.LoadOrStore(k, &measureOpts{record: []metric.RecordOption{set}, add: []metric.AddOption{set}})
	return o.(*measureOpts)
}

// seconds is the span's duration in seconds, from its exact timestamps
// rather than the rounded session.duration_seconds attribute.
func seconds(s *lifecycle.Span) float64 { return float64(s.End-s.Start) / 1e9 }

func orUnknown(v string) string {
	if v == "" {
		return Unknown
	}
	return v
}

// capped keeps the first max distinct values of one attribute and folds the
// rest into Other.
type capped struct {
	mu   sync.RWMutex
	seen map[string]struct{}
	max  int
}

func newCapped(max int) *capped { return &capped{seen: make(map[string]struct{}), max: max} }

func (c *capped) fold(v string) string {
	if v == "" {
		return Unknown
	}
	c.mu.RLock()
	_, ok := c.seen[v]
	n := len(c.seen)
	c.mu.RUnlock()
	if ok {
		return v
	}
	if n >= c.max {
		return Other
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.seen[v]; ok {
		return v
	}
	if len(c.seen) >= c.max {
		return Other
	}
	// Clone: v may point into a decoder buffer that is reused.
	c.seen[strings.Clone(v)] = struct{}{}
	return v
}
