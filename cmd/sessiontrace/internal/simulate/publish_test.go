package simulate

import (
	"bytes"
	"context"
	"errors"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sessiontrace/sessiontrace/cmd/sessiontrace/internal/recordio"
	"github.com/sessiontrace/sessiontrace/consumer/kafkatest"
	"github.com/sessiontrace/sessiontrace/schema"
)

// fakeClock stands in for time.Now and the sleeping of a pacer.
type fakeClock struct {
	now    time.Time
	sleeps []time.Duration
}

func (c *fakeClock) Now() time.Time { return c.now }

func (c *fakeClock) Sleep(_ context.Context, d time.Duration) error {
	c.sleeps = append(c.sleeps, d)
	c.now = c.now.Add(d)
	return nil
}

func TestPacer(t *testing.T) {
	tests := []struct {
		name   string
		rate   float64
		events int
	}{
		{"slow", 0.5, 4},
		{"100 per second", 100, 1000},
		{"fast", 1e6, 200_000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := &fakeClock{now: time.Unix(1000, 0)}
			p := newPacer(tt.rate, clk.Now, clk.Sleep)
			start := clk.now
			for range tt.events {
				if err := p.take(t.Context()); err != nil {
					t.Fatal(err)
				}
			}
			elapsed := clk.now.Sub(start)
			// The first event goes at once; each later one needs a token.
			want := time.Duration(float64(tt.events-1) / tt.rate * float64(time.Second))
			if diff := elapsed - want; diff < 0 || diff > minSleep {
				t.Errorf("%d events took %v of clock time, want %v (+ at most %v)", tt.events, elapsed, want, minSleep)
			}
			// No busy loop: every sleep is at least minSleep, so there are
			// no more sleeps than the elapsed time allows.
			for _, d := range clk.sleeps {
				if d < minSleep {
					t.Fatalf("slept %v, below the %v minimum", d, minSleep)
				}
			}
			if limit := int(elapsed/minSleep) + 1; len(clk.sleeps) > limit {
				t.Errorf("%d sleeps in %v, want at most %d", len(clk.sleeps), elapsed, limit)
			}
		})
	}
}

// TestPacerBurst: after a stall the pacer lets through at most one burst
// window's worth of events before pacing again.
func TestPacerBurst(t *testing.T) {
	clk := &fakeClock{now: time.Unix(1000, 0)}
	const rate = 10_000
	p := newPacer(rate, clk.Now, clk.Sleep)
	clk.now = clk.now.Add(time.Minute)
	free := 0
	for len(clk.sleeps) == 0 {
		if err := p.take(t.Context()); err != nil {
			t.Fatal(err)
		}
		free++
	}
	// The take that slept is not free.
	if want := int(rate*burstWindow.Seconds()) + 1; free-1 > want {
		t.Errorf("%d events went through without pacing after a stall, want at most %d", free-1, want)
	}
}

func TestPacerCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	p := newPacer(1, time.Now, sleep)
	if err := p.take(ctx); err != nil {
		t.Fatalf("first take = %v, want a free token", err)
	}
	if err := p.take(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("take = %v, want context.Canceled", err)
	}
}

func TestMain(m *testing.M) { kafkatest.Main(m) }

// eachBroker runs fn against every broker backend of the shared harness (a
// real Kafka in CI, kfake everywhere) with a fresh three-partition topic and
// a producing client.
func eachBroker(t *testing.T, fn func(t *testing.T, cl *kgo.Client, opts []kgo.Opt, topic string)) {
	t.Helper()
	kafkatest.Each(t, func(t *testing.T, brokers []string) {
		topic := kafkatest.Topic(t, brokers, 3)
		fn(t, kafkatest.Client(t, brokers), []kgo.Opt{kgo.SeedBrokers(brokers...)}, topic)
	})
}

func deadline(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}

// TestPublish: what Publish produces is exactly what WriteJSONL writes for
// the same config, keyed by player, each player's events in order.
func TestPublish(t *testing.T) { eachBroker(t, testPublish) }

func testPublish(t *testing.T, cl *kgo.Client, opts []kgo.Opt, topic string) {
	cfg := smallConfig(20, 60)
	gen, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	n, err := Publish(deadline(t, 30*time.Second), cl, topic, gen, 0)
	if err != nil {
		t.Fatal(err)
	}
	// WriteJSONL's lines, grouped by player in generation order.
	var want []string
	wantPerPlayer := make(map[string][]string)
	for _, ev := range generate(t, cfg) {
		line := string(schema.AppendJSON(nil, &ev))
		want = append(want, line)
		wantPerPlayer[ev.PlayerID] = append(wantPerPlayer[ev.PlayerID], line)
	}
	if lines := bytes.Count(jsonl(t, cfg), []byte("\n")); lines != len(want) {
		t.Fatalf("WriteJSONL wrote %d lines, the generator has %d events", lines, len(want))
	}
	if n != len(want) || n == 0 {
		t.Fatalf("Publish acknowledged %d records, WriteJSONL writes %d", n, len(want))
	}

	perPlayer := make(map[string][]string) // in partition order
	var got []string
	err = recordio.ReadTopic(deadline(t, 30*time.Second), opts, topic, recordio.Start(), recordio.End(), func(r recordio.Record) error {
		got = append(got, string(r.Value))
		perPlayer[string(r.Key)] = append(perPlayer[string(r.Key)], string(r.Value))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(want))) {
		t.Fatalf("the topic holds %d records that differ from the %d generated", len(got), len(want))
	}
	for player, vals := range wantPerPlayer {
		if !slices.Equal(perPlayer[player], vals) {
			t.Errorf("%s: events out of order or misplaced: got %d, want %d", player, len(perPlayer[player]), len(vals))
		}
	}
}

func TestPublishRate(t *testing.T) { eachBroker(t, testPublishRate) }

func testPublishRate(t *testing.T, cl *kgo.Client, _ []kgo.Opt, topic string) {
	const rate = 2000.0
	gen, err := New(smallConfig(50, 30))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	n, err := Publish(deadline(t, 30*time.Second), cl, topic, gen, rate)
	if err != nil {
		t.Fatal(err)
	}
	// A lower bound only: pacing may never be faster than the rate allows
	// beyond the first burst; a loaded machine may be slower.
	burst := rate * burstWindow.Seconds()
	if least := time.Duration((float64(n) - 1 - burst) / rate * float64(time.Second)); time.Since(start) < least {
		t.Errorf("%d events at %v/s took %v, want at least %v", n, rate, time.Since(start), least)
	}
}

func TestPublishStops(t *testing.T) { eachBroker(t, testPublishStops) }

func testPublishStops(t *testing.T, cl *kgo.Client, _ []kgo.Opt, topic string) {
	cancelled := func(t *testing.T) context.Context {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		return ctx
	}
	endless := func(t *testing.T) context.Context { return deadline(t, time.Second) }
	plain := func(t *testing.T) context.Context { return t.Context() }
	tests := []struct {
		name    string
		ctx     func(*testing.T) context.Context
		topic   string
		rate    float64
		check   func(error) bool
		wantAny bool // some records were published before the stop
	}{
		{"cancelled before the start", cancelled, topic, 0, func(err error) bool { return errors.Is(err, context.Canceled) }, false},
		{"endless run ends at the deadline", endless, topic, 1000,
			func(err error) bool { return errors.Is(err, context.DeadlineExceeded) }, true},
		{"no topic", plain, "", 0, func(err error) bool { return err != nil }, false},
		{"negative rate", plain, topic, -1, func(err error) bool { return err != nil }, false},
		{"NaN rate", plain, topic, math.NaN(), func(err error) bool { return err != nil }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gen, err := New(smallConfig(100, 0)) // never ends by itself
			if err != nil {
				t.Fatal(err)
			}
			n, err := Publish(tt.ctx(t), cl, tt.topic, gen, tt.rate)
			if !tt.check(err) {
				t.Fatalf("Publish() error = %v", err)
			}
			if (n > 0) != tt.wantAny {
				t.Errorf("Publish() = %d records, want some: %v", n, tt.wantAny)
			}
		})
	}
}
