package simulate

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sessiontrace/sessiontrace/schema"
)

// flushGrace bounds the wait for records already handed to the client once
// ctx is done, so that a stopped publish still reports what was delivered
// but cannot hang on a broker that went away.
const flushGrace = 10 * time.Second

// Publish produces every event of gen to topic, keyed by player ID with the
// event's JSON as value, and returns how many records the broker
// acknowledged. rate is in events per second (0 = as fast as the client
// accepts, which blocks when its buffer is full). Publish stops at the first
// failed record or when ctx is done, returning the error (wrapping
// ctx.Err() in the latter case). Record timestamps are left to the client
// (the time of producing); the simulated time is in each event's ts.
func Publish(ctx context.Context, cl *kgo.Client, topic string, gen *Generator, rate float64) (int, error) {
	if topic == "" {
		return 0, fmt.Errorf("simulate: publish: no topic given")
	}
	var ev schema.Event
	return publish(ctx, cl, topic, rate, func() (*kgo.Record, bool) {
		if !gen.Next(&ev) {
			return nil, false
		}
		value := schema.AppendJSON(make([]byte, 0, 320), &ev)
		// The record's timestamp is the event's (simulated) time, as a game
		// server producing it when it happened would set it: the consumer
		// bounds ts by it.
		return &kgo.Record{Topic: topic, Key: []byte(ev.PlayerID), Value: value, Timestamp: time.Unix(0, ev.TS)}, true
	})
}

// PublishRouted produces the multi-producer stream of rt, each record to
// its service's topic with its service's key (or none), in delivery order,
// and returns how many records the broker acknowledged; rate, errors and
// timestamps are as for Publish.
func PublishRouted(ctx context.Context, cl *kgo.Client, rt *Router, rate float64) (int, error) {
	var r Routed
	return publish(ctx, cl, "the producer topics", rate, func() (*kgo.Record, bool) {
		if !rt.Next(&r) {
			return nil, false
		}
		return &kgo.Record{Topic: r.Topic, Key: r.Key, Value: r.Value, Timestamp: time.Unix(0, r.TS)}, true
	})
}

// publish produces the records next yields until it has none, the first
// failure or ctx's end; what names the destination in errors.
func publish(ctx context.Context, cl *kgo.Client, what string, rate float64, next func() (*kgo.Record, bool)) (int, error) {
	topic := what
	if !(rate >= 0) || math.IsInf(rate, 0) {
		return 0, fmt.Errorf("simulate: publish: rate must be a finite number >= 0, got %v", rate)
	}
	var pace *pacer
	if rate > 0 {
		pace = newPacer(rate, time.Now, sleep)
	}
	var (
		acked    atomic.Int64
		failed   atomic.Bool
		mu       sync.Mutex
		firstErr error // guarded by mu: promises run on the client's goroutines
	)
	promise := func(r *kgo.Record, err error) {
		if err == nil {
			acked.Add(1)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if firstErr == nil {
			firstErr = fmt.Errorf("simulate: publish to %s: record of %q: %w", r.Topic, r.Key, err)
			failed.Store(true)
		}
	}

	var stopErr error
	for !failed.Load() {
		rec, ok := next()
		if !ok {
			break
		}
		if pace != nil {
			if err := pace.take(ctx); err != nil {
				stopErr = err
				break
			}
		}
		if err := ctx.Err(); err != nil {
			stopErr = err
			break
		}
		cl.Produce(ctx, rec, promise)
	}

	flushCtx := ctx
	if ctx.Err() != nil {
		var cancel context.CancelFunc
		flushCtx, cancel = context.WithTimeout(context.WithoutCancel(ctx), flushGrace)
		defer cancel()
	}
	flushErr := cl.Flush(flushCtx)

	var err error
	mu.Lock()
	defer mu.Unlock()
	switch {
	case firstErr != nil:
		err = firstErr
	case stopErr != nil:
		err = fmt.Errorf("simulate: publish to %s: %w", topic, stopErr)
	case flushErr != nil:
		err = fmt.Errorf("simulate: publish to %s: flush: %w", topic, flushErr)
	}
	return int(acked.Load()), err
}

// WriteJSONL writes every event of gen to w, one JSON object per line (the
// JSONL format replay reads), and returns how many it wrote.
func WriteJSONL(w io.Writer, gen *Generator) (int, error) {
	bw := bufio.NewWriterSize(w, 64<<10)
	var ev schema.Event
	buf := make([]byte, 0, 512)
	n := 0
	for gen.Next(&ev) {
		buf = append(schema.AppendJSON(buf[:0], &ev), '\n')
		if _, err := bw.Write(buf); err != nil {
			return n, fmt.Errorf("simulate: write events: %w", err)
		}
		n++
	}
	if err := bw.Flush(); err != nil {
		return n, fmt.Errorf("simulate: write events: %w", err)
	}
	return n, nil
}

// Pacing constants. A sleep shorter than minSleep costs more in timer
// overhead than it gains in smoothness, so the pacer sleeps at least that
// long and lets tokens accumulate; burstWindow is how much unused time may be
// spent at once after a stall, so a slow broker is not followed by a flood.
const (
	minSleep    = 2 * time.Millisecond
	burstWindow = 50 * time.Millisecond
)

// pacer is a token bucket: tokens accrue at rate per second up to burst, and
// each event takes one. It sleeps instead of spinning when the bucket is
// empty.
type pacer struct {
	rate   float64
	burst  float64
	tokens float64
	last   time.Time
	now    func() time.Time
	sleep  func(context.Context, time.Duration) error
}

func newPacer(rate float64, now func() time.Time, sleep func(context.Context, time.Duration) error) *pacer {
	return &pacer{
		rate:   rate,
		burst:  max(1, rate*burstWindow.Seconds()),
		tokens: 1,
		last:   now(),
		now:    now,
		sleep:  sleep,
	}
}

// take waits until a token is available and takes it, or returns ctx's
// error.
func (p *pacer) take(ctx context.Context) error {
	for {
		now := p.now()
		p.tokens = min(p.burst, p.tokens+now.Sub(p.last).Seconds()*p.rate)
		p.last = now
		if p.tokens >= 1 {
			p.tokens--
			return nil
		}
		d := max(time.Duration((1-p.tokens)/p.rate*float64(time.Second)), minSleep)
		if err := p.sleep(ctx, d); err != nil {
			return err
		}
	}
}

// sleep waits for d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
