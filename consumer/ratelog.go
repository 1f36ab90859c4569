package consumer

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// rateLog logs at most one line per key per interval, then reports how many
// it suppressed, so a flood of poison records cannot flood the logs.
type rateLog struct {
	log      *slog.Logger
	interval time.Duration
	now      func() time.Time

	mu   sync.Mutex
	keys map[string]*rateKey
}

type rateKey struct {
	last       time.Time
	suppressed int
}

func newRateLog(log *slog.Logger, interval time.Duration) *rateLog {
	return &rateLog{log: log, interval: interval, now: time.Now, keys: map[string]*rateKey{}}
}

func (r *rateLog) warn(key, msg string, args ...any) { r.emit(slog.LevelWarn, key, msg, args) }
func (r *rateLog) info(key, msg string, args ...any) { r.emit(slog.LevelInfo, key, msg, args) }

func (r *rateLog) at(level slog.Level, key, msg string, args ...any) { r.emit(level, key, msg, args) }

func (r *rateLog) emit(level slog.Level, key, msg string, args []any) {
	r.mu.Lock()
	k := r.keys[key]
	if k == nil {
		k = &rateKey{}
		r.keys[key] = k
	}
	now := r.now()
	if !k.last.IsZero() && now.Sub(k.last) < r.interval {
		k.suppressed++
		r.mu.Unlock()
		return
	}
	suppressed := k.suppressed
	k.last, k.suppressed = now, 0
	r.mu.Unlock()
	if suppressed > 0 {
		args = append(args, "suppressed_since_last", suppressed)
	}
	r.log.Log(context.Background(), level, msg, args...)
}
