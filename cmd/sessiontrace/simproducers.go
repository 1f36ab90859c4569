package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/pflag"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sessiontrace/sessiontrace/cmd/sessiontrace/internal/kafkacheck"
	"github.com/sessiontrace/sessiontrace/cmd/sessiontrace/internal/simulate"
)

// producerFlags switch simulate to a multi-producer backend.
type producerFlags struct {
	topics []string
	keys   string
	jitter time.Duration
}

func (f *producerFlags) register(fs *pflag.FlagSet) {
	fs.StringSliceVar(&f.topics, "producer-topics", nil,
		"publish as three services instead, to these topics in this order: auth (logins, disconnects), matchmaking, match (game servers); e.g. auth-events,matchmaking-events,match-events")
	fs.StringVar(&f.keys, "producer-keys", simulate.KeyNone,
		"with --producer-topics: none (unkeyed), entity (matchmaking by lobby or queue, match by server, auth unkeyed) or player (every record by player ID: topics of one partition count are co-partitioned, for consume --topics)")
	fs.DurationVar(&f.jitter, "jitter", simulate.DefaultJitter,
		"with --producer-topics: each service delays each record by up to this much (simulated time), so one player's events reach Kafka out of order")
}

// on reports whether the multi-producer mode was asked for.
func (f *producerFlags) on() bool { return len(f.topics) > 0 }

func (f *producerFlags) config(seed int64) (simulate.Producers, error) {
	if len(f.topics) != 3 {
		return simulate.Producers{}, fmt.Errorf("%w: --producer-topics: want three topics (auth, matchmaking, match), got %d", errUsage, len(f.topics))
	}
	p := simulate.Producers{
		Topics: map[string]string{
			simulate.ServiceAuth: f.topics[0], simulate.ServiceMatchmaking: f.topics[1], simulate.ServiceMatch: f.topics[2],
		},
		Keys: f.keys, Jitter: f.jitter, Seed: seed,
	}
	if err := p.Validate(); err != nil {
		return p, fmt.Errorf("%w: %w", errUsage, err)
	}
	return p, nil
}

// simulateProducers publishes gen as a multi-producer backend.
func simulateProducers(ctx context.Context, k kafkaConfig, gen *simulate.Generator, p simulate.Producers, rate float64) (int, error) {
	rt, err := simulate.NewRouter(gen, p)
	if err != nil {
		return 0, fmt.Errorf("%w: %w", errUsage, err)
	}
	var check kafkacheck.Checker
	cl, err := k.kafkaClient(kgo.AllowAutoTopicCreation(), kgo.WithHooks(&check))
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	for _, s := range []string{simulate.ServiceAuth, simulate.ServiceMatchmaking, simulate.ServiceMatch} {
		if err := check.Topic(ctx, cl, p.Topics[s], true); err != nil {
			return 0, fmt.Errorf("simulate: publish to %s: %w", p.Topics[s], err)
		}
	}
	return simulate.PublishRouted(ctx, cl, rt, rate)
}
