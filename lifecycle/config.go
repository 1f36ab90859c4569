package lifecycle

import (
	"errors"
	"fmt"
	"time"
)

// Defaults of Config, named so that callers and docs can refer to them.
const (
	// DefaultIdleTimeout is generous because a player is silent for a whole
	// match: a shorter timeout would cut sessions in the middle of a game.
	DefaultIdleTimeout = time.Hour
	// DefaultMaxDuration bounds how long a session can pin its partition's
	// committed offset.
	DefaultMaxDuration = 24 * time.Hour
	// DefaultDedupWindow remembers the IDs of the last 65536 events of a
	// partition, 1.5 MiB per Machine.
	DefaultDedupWindow = 1 << 16
)

// Sentinel errors returned (wrapped) by Config.Validate, for callers that
// branch on which setting is wrong.
var (
	// ErrIdleTimeout reports an idle_timeout that is not positive.
	ErrIdleTimeout = errors.New("lifecycle: idle_timeout must be positive")
	// ErrMaxDuration reports a max_duration that is not positive.
	ErrMaxDuration = errors.New("lifecycle: max_duration must be positive")
	// ErrDedupWindow reports a negative dedup_window.
	ErrDedupWindow = errors.New("lifecycle: dedup_window must not be negative")
)

// Config configures a Machine. All durations are measured in stream time
// (event timestamps), never on the wall clock.
type Config struct {
	// IdleTimeout ends a session as "timeout" when stream time passes the
	// stream time of its last event by more than this (default 1h).
	IdleTimeout time.Duration `mapstructure:"idle_timeout"`
	// MaxDuration ends a session as "max_duration" when stream time passes its
	// start by more than this (default 24h). A long session holds back its
	// partition's committed offset, so this bounds replay after a crash.
	MaxDuration time.Duration `mapstructure:"max_duration"`
	// DedupWindow is how many recent events of the partition have their IDs
	// remembered so that a redelivered event is ignored (default 65536); 0
	// disables deduplication. A duplicate takes a place too, so the window
	// is the last DedupWindow events, whatever came before. Memory is 32-48
	// bytes per remembered event (its hash and offset in a ring, its hash in
	// a set kept at most half full), and a map entry per ID the window holds
	// more than once.
	DedupWindow int `mapstructure:"dedup_window"`
}

// DefaultConfig returns the defaults: IdleTimeout 1h, MaxDuration 24h,
// DedupWindow 65536.
func DefaultConfig() Config {
	return Config{
		IdleTimeout: DefaultIdleTimeout,
		MaxDuration: DefaultMaxDuration,
		DedupWindow: DefaultDedupWindow,
	}
}

// Validate reports every invalid setting as one joined error; each part wraps
// one of the Err* sentinels so errors.Is can tell them apart.
func (c Config) Validate() error {
	var errs []error
	if c.IdleTimeout <= 0 {
		errs = append(errs, fmt.Errorf("%w, got %s", ErrIdleTimeout, c.IdleTimeout))
	}
	if c.MaxDuration <= 0 {
		errs = append(errs, fmt.Errorf("%w, got %s", ErrMaxDuration, c.MaxDuration))
	}
	if c.DedupWindow < 0 {
		errs = append(errs, fmt.Errorf("%w, got %d", ErrDedupWindow, c.DedupWindow))
	}
	return errors.Join(errs...)
}
